#pragma once
// The operator's per-tenant quota overrides (docs/operations.md, "Tenants and quotas"): a text
// file, one tenant a line, `#` comments:
//
//   # tenant    key=value ...
//   *           sandboxes=8                     # every tenant's default (over the flags)
//   acme        sandboxes=32 memory_mib=65536 stored_output_mib=4096
//
// Keys (actors/quota.hpp): sandboxes, cpu_millis, memory_mib, stored_output_mib,
// sandbox_stored_output_mib, sandbox_exec_record_mib, execs_per_second, exec_burst. Keys this executor does not know
// (another component's, e.g. the gateway's) are ignored; a known key with a bad value makes the
// whole line ignored (said once on stderr). The file is read again when it changes (checked at
// most once per second), so adding or changing a tenant needs no restart.
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <sys/types.h>

#include "actors/quota.hpp"

namespace corral {

class tenants_file final : public quota_source {
 public:
  // `defaults`: the executor's flags. An empty path: every tenant gets the defaults.
  tenants_file(std::string path, tenant_quota defaults);
  [[nodiscard]] tenant_quota quota_of(const std::string& tenant) const override;

  // Parses one line's settings over `q`; false with *why on a bad value.
  static bool apply(const std::string& settings, tenant_quota& q, std::string* why);

 private:
  void reload_if_changed_locked() const;

  const std::string path_;
  const tenant_quota defaults_;
  mutable std::mutex mu_;
  mutable tenant_quota star_;
  mutable std::map<std::string, tenant_quota> by_tenant_;
  mutable std::chrono::steady_clock::time_point last_check_{};
  mutable struct timespec mtime_ {};
  mutable off_t size_ = -1;
  mutable ino_t inode_ = 0;
};

}  // namespace corral
