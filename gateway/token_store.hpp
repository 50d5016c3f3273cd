#pragma once
// Bearer tokens → tenants. The file holds one "SHA256HEX TENANT" per line (only hashes are
// stored; '#' starts a comment). It is re-read when its modification time or size changes, at
// most once per check interval (0, the default: checked, by one stat(), on every lookup).
// Thread-safe.
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>

namespace corral::gateway {

// Lower-case hex SHA-256 of `data`.
[[nodiscard]] std::string sha256_hex(const std::string& data);

class token_store {
 public:
  explicit token_store(std::string path,
                       std::chrono::milliseconds check_interval = std::chrono::milliseconds(0));
  // The tenant of `token`, or nullopt for an unknown token (or no tokens file).
  [[nodiscard]] std::optional<std::string> tenant_of(const std::string& token);
  // Tokens loaded now (after a reload check).
  [[nodiscard]] std::size_t size();

 private:
  void reload_if_changed_locked();

  std::string path_;
  std::chrono::milliseconds check_interval_;
  std::mutex mu_;
  std::map<std::string, std::string> tenant_by_hash_;
  std::chrono::steady_clock::time_point last_check_{};
  struct timespec mtime_ {};
  off_t size_ = -1;
  ino_t inode_ = 0;
};

}  // namespace corral::gateway
