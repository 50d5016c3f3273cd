#include "gateway/token_store.hpp"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "schemas/ids.hpp"

namespace corral::gateway {

std::string sha256_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), digest, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 0xf]);
  }
  return out;
}

std::optional<std::pair<std::string, token_entry>> parse_token_line(const std::string& line,
                                                                   std::string* ignored) {
  if (line.empty() || line[0] == '#') return std::nullopt;
  std::istringstream fields(line);
  std::string hash;
  token_entry e;
  if (!(fields >> hash >> e.tenant)) return std::nullopt;
  if (hash.size() != 64 || !wire::valid_token(e.tenant)) return std::nullopt;
  std::string kv;
  while (fields >> kv) {
    if (kv[0] == '#') break;  // a comment at the end of the line
    const auto eq = kv.find('=');
    const std::string key = kv.substr(0, eq);
    const std::string value = eq == std::string::npos ? std::string() : kv.substr(eq + 1);
    if (key == "role") {
      if (value == "admin") e.admin = true;
      else if (value != "tenant") return std::nullopt;  // an unknown role lets nobody in
      continue;
    }
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    const bool number = ec == std::errc() && end == value.data() + value.size() && !value.empty() &&
                        n >= 1 && n <= 1'000'000;
    if (key == "max_streams" && number) e.max_streams = n;
    else if (key == "max_inflight" && number) e.max_inflight = n;
    else if (ignored != nullptr) *ignored += (ignored->empty() ? "" : " ") + kv;
  }
  return std::make_pair(std::move(hash), std::move(e));
}

token_store::token_store(std::string path, std::chrono::milliseconds check_interval)
    : path_(std::move(path)), check_interval_(check_interval) {}

void token_store::reload_if_changed_locked() {
  const auto now = std::chrono::steady_clock::now();
  if (check_interval_.count() > 0 && last_check_ != std::chrono::steady_clock::time_point{} &&
      now - last_check_ < check_interval_)
    return;
  last_check_ = now;
  struct stat st {};
  if (path_.empty() || ::stat(path_.c_str(), &st) != 0) {
    by_hash_.clear();
    size_ = -1;
    return;
  }
  if (st.st_size == size_ && st.st_ino == inode_ && st.st_mtim.tv_sec == mtime_.tv_sec &&
      st.st_mtim.tv_nsec == mtime_.tv_nsec)
    return;
  std::ifstream in(path_);
  if (!in) return;  // keep what we had
  std::map<std::string, token_entry> fresh;
  std::string line;
  while (std::getline(in, line)) {
    std::string ignored;
    auto parsed = parse_token_line(line, &ignored);  // a bad line is skipped
    if (!parsed) continue;
    if (!ignored.empty())
      std::fprintf(stderr, "corral-gateway: tokens file: tenant %s: ignored %s\n",
                   parsed->second.tenant.c_str(), ignored.c_str());
    fresh[parsed->first] = std::move(parsed->second);
  }
  by_hash_ = std::move(fresh);
  size_ = st.st_size;
  inode_ = st.st_ino;
  mtime_ = st.st_mtim;
}

std::optional<token_entry> token_store::lookup(const std::string& token) {
  if (token.empty() || token.size() > 512) return std::nullopt;
  const auto hash = sha256_hex(token);
  std::lock_guard<std::mutex> lock(mu_);
  reload_if_changed_locked();
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> token_store::tenant_of(const std::string& token) {
  auto e = lookup(token);
  if (!e || e->admin) return std::nullopt;
  return e->tenant;
}

std::size_t token_store::size() {
  std::lock_guard<std::mutex> lock(mu_);
  reload_if_changed_locked();
  return by_hash_.size();
}

}  // namespace corral::gateway
