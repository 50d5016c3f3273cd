#include "gateway/token_store.hpp"

#include <openssl/evp.h>
#include <sys/stat.h>

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
    tenant_by_hash_.clear();
    size_ = -1;
    return;
  }
  if (st.st_size == size_ && st.st_ino == inode_ && st.st_mtim.tv_sec == mtime_.tv_sec &&
      st.st_mtim.tv_nsec == mtime_.tv_nsec)
    return;
  std::ifstream in(path_);
  if (!in) return;  // keep what we had
  std::map<std::string, std::string> fresh;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string hash, tenant;
    if (!(fields >> hash >> tenant)) continue;
    if (hash.size() != 64 || !wire::valid_token(tenant)) continue;  // a bad line is skipped
    fresh[hash] = tenant;
  }
  tenant_by_hash_ = std::move(fresh);
  size_ = st.st_size;
  inode_ = st.st_ino;
  mtime_ = st.st_mtim;
}

std::optional<std::string> token_store::tenant_of(const std::string& token) {
  if (token.empty() || token.size() > 512) return std::nullopt;
  const auto hash = sha256_hex(token);
  std::lock_guard<std::mutex> lock(mu_);
  reload_if_changed_locked();
  auto it = tenant_by_hash_.find(hash);
  if (it == tenant_by_hash_.end()) return std::nullopt;
  return it->second;
}

std::size_t token_store::size() {
  std::lock_guard<std::mutex> lock(mu_);
  reload_if_changed_locked();
  return tenant_by_hash_.size();
}

}  // namespace corral::gateway
