#include "cli/token.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <openssl/evp.h>

namespace corral::cli {

std::optional<std::string> create_token(const std::string& tenant, const std::string& file,
                                        std::string* error) {
  unsigned char raw[32];
  if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
    *error = std::string("getrandom: ") + std::strerror(errno);
    return std::nullopt;
  }
  static const char* hex = "0123456789abcdef";
  std::string token = "corral_";
  for (unsigned char b : raw) token += {hex[b >> 4], hex[b & 0xf]};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(token.data(), token.size(), digest, &n, EVP_sha256(), nullptr);
  std::string hash;
  for (unsigned int i = 0; i < n; ++i) hash += {hex[digest[i] >> 4], hex[digest[i] & 0xf]};
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const std::string line = hash + " " + tenant + "\n";
  if (fd < 0 || ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    *error = "cannot append to " + file + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return std::nullopt;
  }
  ::close(fd);
  return token;
}

}  // namespace corral::cli
