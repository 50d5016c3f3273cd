#pragma once
// Writing a whole buffer to a file descriptor, across short writes and EINTR.
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace corral::client {

// False when the descriptor refused (EPIPE when the reader went away, ENOSPC, ...): errno says.
inline bool write_all(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace corral::client
