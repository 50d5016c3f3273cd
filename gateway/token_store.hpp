#pragma once
// Bearer tokens → tenants. The file holds one line per token (only hashes are stored; '#' starts
// a comment):
//
//   SHA256HEX TENANT [key=value ...]
//
// Keys (docs/operations.md, "The gateway"): max_streams=N and max_inflight=N override the
// gateway's per-tenant limits for requests made with this token; role=admin makes it an
// operator's token, good for /metrics only (never for /v1). A line with an unknown role is
// skipped; an unknown key or a bad number is ignored (the line stays good with the defaults) and
// said on stderr. It is re-read when its modification time or size changes, at most once per
// check interval (0, the default: checked, by one stat(), on every lookup). Thread-safe.
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>

namespace corral::gateway {

// Lower-case hex SHA-256 of `data`.
[[nodiscard]] std::string sha256_hex(const std::string& data);

struct token_entry {
  std::string tenant;
  std::optional<std::size_t> max_streams, max_inflight;  // unset: the gateway's defaults
  bool admin = false;                                    // role=admin
};

// One line of the file; nullopt for a comment, a blank or a bad line. Fields that are ignored
// are named in *ignored (when not null).
[[nodiscard]] std::optional<std::pair<std::string, token_entry>> parse_token_line(
    const std::string& line, std::string* ignored = nullptr);

class token_store {
 public:
  explicit token_store(std::string path,
                       std::chrono::milliseconds check_interval = std::chrono::milliseconds(0));
  // The entry of `token`, or nullopt for an unknown token (or no tokens file).
  [[nodiscard]] std::optional<token_entry> lookup(const std::string& token);
  // The tenant of a tenant's token (not an operator's), or nullopt.
  [[nodiscard]] std::optional<std::string> tenant_of(const std::string& token);
  // Tokens loaded now (after a reload check).
  [[nodiscard]] std::size_t size();

 private:
  void reload_if_changed_locked();

  std::string path_;
  std::chrono::milliseconds check_interval_;
  std::mutex mu_;
  std::map<std::string, token_entry> by_hash_;
  std::chrono::steady_clock::time_point last_check_{};
  struct timespec mtime_ {};
  off_t size_ = -1;
  ino_t inode_ = 0;
};

}  // namespace corral::gateway
