#pragma once
// Per-tenant quotas on one executor (docs/security.md, "Fair share"): what one tenant may hold of
// a node, so that no tenant takes every slot, all the memory, or fills the store. The operator
// sets the defaults (executor flags) and per-tenant overrides (a tenants file, reloaded when it
// changes: executor/tenants_file.hpp). Quotas are per executor: a tenant may hold a quota's worth
// on each executor of a pool.
#include <cstdint>
#include <string>

namespace corral {

struct tenant_quota {
  uint32_t sandboxes = 24;             // live sandboxes (creating, running or waiting)
  uint64_t cpu_millis = 0;             // sum of their cpu limits; 0 = no quota
  uint64_t memory_mib = 0;             // sum of their memory requests; 0 = no quota
  // Stored output (replayable): over either cap the oldest stored output goes first, and a
  // replay of it answers `expired`. Live output is never held back.
  uint64_t stored_output_bytes = 1ULL << 30;         // all the tenant's sandboxes on this node
  uint64_t sandbox_stored_output_bytes = 256ULL << 20;  // one sandbox
  // What a sandbox's exec records hold (their argv and env, kept as long as the sandbox's
  // records): past it, new execs are refused.
  uint64_t sandbox_exec_record_bytes = 64ULL << 20;
  // New execs per sandbox: a token bucket (re-attaches are free).
  double execs_per_second = 100;
  uint32_t exec_burst = 200;

  // Empty when valid, else "field: reason".
  [[nodiscard]] std::string validate() const;
};

// Where the actors get a tenant's quota. Thread-safe; cheap (called on every create and exec).
class quota_source {
 public:
  virtual ~quota_source() = default;
  [[nodiscard]] virtual tenant_quota quota_of(const std::string& tenant) const = 0;
};

// The same quota for every tenant (tests, and the executor without a tenants file).
class fixed_quotas final : public quota_source {
 public:
  explicit fixed_quotas(tenant_quota q = {}) : q_(q) {}
  [[nodiscard]] tenant_quota quota_of(const std::string&) const override { return q_; }

 private:
  tenant_quota q_;
};

}  // namespace corral
