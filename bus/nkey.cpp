#include "bus/nkey.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include <openssl/evp.h>

namespace corral::bus {
namespace {

// nkeys' prefix bytes (the first base32 character of the text form).
constexpr uint8_t prefix_seed = 18 << 3;  // 'S'
constexpr uint8_t prefix_user = 20 << 3;  // 'U'
constexpr std::size_t ed25519_key_bytes = 32;

constexpr char base32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

std::string base32_encode(const std::vector<uint8_t>& in) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t b : in) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += base32_alphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += base32_alphabet[(buffer << (5 - bits)) & 31];
  return out;
}

std::optional<std::vector<uint8_t>> base32_decode(std::string_view in) {
  std::vector<uint8_t> out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= '2' && c <= '7') v = c - '2' + 26;
    else return std::nullopt;
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<uint8_t>(buffer >> (bits - 8)));
      bits -= 8;
    }
  }
  return out;
}

// CRC-16/XMODEM (polynomial 0x1021, initial 0), stored little-endian after the payload.
uint16_t crc16(const uint8_t* data, std::size_t n) {
  uint16_t crc = 0;
  for (std::size_t i = 0; i < n; ++i) {
    crc = static_cast<uint16_t>(crc ^ (static_cast<uint16_t>(data[i]) << 8));
    for (int k = 0; k < 8; ++k)
      crc = static_cast<uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc;
}

void append_crc(std::vector<uint8_t>& raw) {
  const uint16_t crc = crc16(raw.data(), raw.size());
  raw.push_back(static_cast<uint8_t>(crc & 0xff));
  raw.push_back(static_cast<uint8_t>(crc >> 8));
}

// Decodes and checks the checksum; returns the bytes before it.
std::optional<std::vector<uint8_t>> decode_checked(std::string_view text) {
  auto raw = base32_decode(text);
  if (!raw || raw->size() < 4) return std::nullopt;
  const std::size_t n = raw->size() - 2;
  const uint16_t stored = static_cast<uint16_t>((*raw)[n] | ((*raw)[n + 1] << 8));
  if (crc16(raw->data(), n) != stored) return std::nullopt;
  raw->resize(n);
  return raw;
}

std::string encode_public(const uint8_t* key) {
  std::vector<uint8_t> raw{prefix_user};
  raw.insert(raw.end(), key, key + ed25519_key_bytes);
  append_crc(raw);
  return base32_encode(raw);
}

std::string encode_seed(const uint8_t* seed) {
  std::vector<uint8_t> raw{static_cast<uint8_t>(prefix_seed | (prefix_user >> 5)),
                           static_cast<uint8_t>((prefix_user & 31) << 3)};
  raw.insert(raw.end(), seed, seed + ed25519_key_bytes);
  append_crc(raw);
  return base32_encode(raw);
}

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// The Ed25519 public key of a 32-byte seed (RFC 8032's private key).
bool public_of(const uint8_t* seed, std::array<uint8_t, ed25519_key_bytes>& out) {
  std::unique_ptr<EVP_PKEY, pkey_free> k(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, ed25519_key_bytes));
  if (!k) return false;
  std::size_t len = out.size();
  return EVP_PKEY_get_raw_public_key(k.get(), out.data(), &len) == 1 && len == out.size();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::strchr(" \t\r\n", s.front()) != nullptr) s.remove_prefix(1);
  while (!s.empty() && std::strchr(" \t\r\n", s.back()) != nullptr) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<user_nkey> user_nkey_from_seed(std::string_view seed, std::string* error) {
  auto fail = [error](const char* why) -> std::optional<user_nkey> {
    if (error != nullptr) *error = why;
    return std::nullopt;
  };
  seed = trim(seed);
  auto raw = decode_checked(seed);
  if (!raw || raw->size() != 2 + ed25519_key_bytes) return fail("not an nkey seed");
  const uint8_t kind = static_cast<uint8_t>((*raw)[0] & 0xf8);
  const uint8_t role = static_cast<uint8_t>((((*raw)[0] & 7) << 5) | (((*raw)[1] & 0xf8) >> 3));
  if (kind != prefix_seed) return fail("not an nkey seed");
  if (role != prefix_user) return fail("an nkey seed, but not a user's");
  std::array<uint8_t, ed25519_key_bytes> pub{};
  if (!public_of(raw->data() + 2, pub)) return fail("cannot derive the public key");
  user_nkey k;
  k.seed = std::string(seed);
  k.public_key = encode_public(pub.data());
  return k;
}

bool sign_with_seed(std::string_view seed, std::string_view message,
                    std::vector<uint8_t>* signature) {
  auto raw = decode_checked(trim(seed));
  if (!raw || raw->size() != 2 + ed25519_key_bytes) return false;
  std::unique_ptr<EVP_PKEY, pkey_free> k(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, raw->data() + 2, ed25519_key_bytes));
  std::fill(raw->begin(), raw->end(), 0);
  if (!k) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1) return false;
  std::size_t len = 64;
  signature->assign(len, 0);
  if (EVP_DigestSign(ctx.get(), signature->data(), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != 64)
    return false;
  return true;
}

bool valid_user_public_key(std::string_view key) {
  auto raw = decode_checked(key);
  return raw && raw->size() == 1 + ed25519_key_bytes && (*raw)[0] == prefix_user;
}

std::optional<user_nkey> generate_user_nkey(std::string* error) {
  std::array<uint8_t, ed25519_key_bytes> seed{};
  if (::getrandom(seed.data(), seed.size(), 0) != static_cast<ssize_t>(seed.size())) {
    if (error != nullptr) *error = std::string("getrandom: ") + std::strerror(errno);
    return std::nullopt;
  }
  std::array<uint8_t, ed25519_key_bytes> pub{};
  if (!public_of(seed.data(), pub)) {
    if (error != nullptr) *error = "cannot derive an Ed25519 public key";
    return std::nullopt;
  }
  user_nkey k;
  k.seed = encode_seed(seed.data());
  k.public_key = encode_public(pub.data());
  return k;
}

std::optional<user_nkey> read_user_nkey_file(const std::string& path, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<user_nkey> {
    if (error != nullptr) *error = path + ": " + why;
    return std::nullopt;
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return fail(std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return fail("may be read by others than its owner (chmod 600 it)");
  }
  if (st.st_uid != ::geteuid()) {
    ::close(fd);
    return fail("belongs to another user");
  }
  std::string text;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || text.size() > 4096) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line = trim(std::string_view(text).substr(start, end - start));
    if (!line.empty()) {
      std::string why;
      auto k = user_nkey_from_seed(line, &why);
      if (!k) return fail(why);
      return k;
    }
    start = end + 1;
  }
  return fail("holds no seed");
}

bool write_user_nkey_file(const std::string& path, const user_nkey& key, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error != nullptr) *error = path + ": " + why;
    return false;
  };
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail(std::string("create: ") + std::strerror(errno));
  const std::string line = key.seed + "\n";
  const bool written = ::fchmod(fd, 0600) == 0 &&
                       ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                       ::fsync(fd) == 0;
  const int write_errno = errno;
  ::close(fd);
  if (!written) {
    ::unlink(tmp.c_str());
    return fail(std::string("write: ") + std::strerror(write_errno));
  }
  // link() refuses an existing target: a key is never replaced behind a client's back.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return fail(e == EEXIST ? std::string("exists already") : std::strerror(e));
  }
  ::unlink(tmp.c_str());
  const std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  const int dfd = ::open(dir.empty() ? "/" : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

}  // namespace corral::bus
