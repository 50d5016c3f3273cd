#include "schemas/ids.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace corral::wire {

namespace {
constexpr char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
}

std::string new_id(std::string_view prefix) {
  unsigned char raw[16];
  std::size_t got = 0;
  while (got < sizeof raw) {
    ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::abort();  // no entropy source: an id must never be guessable
    }
    got += static_cast<std::size_t>(n);
  }
  // 128-bit value as two halves; repeated division by 62 yields 22 digits.
  unsigned __int128 v = 0;
  for (unsigned char b : raw) v = (v << 8) | b;
  std::string out(prefix);
  out.resize(prefix.size() + id_random_chars);
  for (std::size_t i = 0; i < id_random_chars; ++i) {
    out[prefix.size() + id_random_chars - 1 - i] = base62[static_cast<int>(v % 62)];
    v /= 62;
  }
  return out;
}

std::string new_exec_id() { return new_id("ex-"); }

bool valid_token(std::string_view s, std::size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool valid_id(std::string_view id, std::string_view prefix) {
  if (id.size() != prefix.size() + id_random_chars || id.substr(0, prefix.size()) != prefix)
    return false;
  for (char c : id.substr(prefix.size())) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

}  // namespace corral::wire
