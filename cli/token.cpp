#include "cli/token.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

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
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  const std::string line = hash + " " + tenant + "\n";
  if (fd < 0 || ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    *error = "cannot append to " + file + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return std::nullopt;
  }
  ::close(fd);
  return token;
}

std::optional<std::size_t> remove_tokens(const std::string& tenant, const std::string& file,
                                         std::string* error) {
  std::ifstream in(file);
  if (!in) return std::size_t{0};
  std::string line, kept;
  std::size_t removed = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string hash, who;
    if (fields >> hash >> who && who == tenant && hash[0] != '#') {
      ++removed;
      continue;
    }
    kept += line + "\n";
  }
  const std::string tmp = file + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || ::write(fd, kept.data(), kept.size()) != static_cast<ssize_t>(kept.size()) ||
      ::fsync(fd) != 0 || ::rename(tmp.c_str(), file.c_str()) != 0) {
    *error = "cannot rewrite " + file + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return std::nullopt;
  }
  ::close(fd);
  return removed;
}

}  // namespace corral::cli
