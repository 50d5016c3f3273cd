#pragma once
// The stored (replayable) output of one executor, counted per sandbox and per tenant against
// their quotas (actors/quota.hpp). Past a cap the oldest stored chunks go first: they are
// dropped from the store, and a replay that asks for them answers `expired` (docs/promises.md P4:
// never silently cut). Live output is never held back or dropped by this.
//
// Thread-safe: process actors record chunks from their own threads. The store calls it makes
// (dropping chunks) happen under its lock; they are rare and short (a range delete).
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "actors/quota.hpp"
#include "storage/store.hpp"

namespace corral {

class output_ledger {
 public:
  output_ledger(storage::store& store, const quota_source& quotas)
      : store_(store), quotas_(quotas) {}

  // A chunk of `bytes` was stored under (sandbox, exec, seq): counts it, then drops the oldest
  // stored chunks while the sandbox or its tenant is over quota.
  void stored(const std::string& tenant, const std::string& sandbox, const std::string& exec,
              uint64_t seq, uint64_t bytes);
  // The sandbox's stored output is gone (deleted, retention): it no longer counts.
  void forget(const std::string& sandbox);

  // The exec's frames below this seq were dropped for a quota (0: none), running execs
  // included: a replay from below it must answer expired, not start past the gap.
  [[nodiscard]] uint64_t dropped_before(const std::string& sandbox, const std::string& exec) const;

  [[nodiscard]] uint64_t tenant_bytes(const std::string& tenant) const;
  [[nodiscard]] uint64_t sandbox_bytes(const std::string& sandbox) const;
  [[nodiscard]] uint64_t dropped_bytes() const;  // dropped for quotas since start

 private:
  struct chunk {
    std::string exec;
    uint64_t seq = 0;
    uint64_t bytes = 0;
    uint64_t stamp = 0;  // arrival order across the node
  };
  struct books {
    std::string tenant;
    std::deque<chunk> chunks;  // oldest first
    uint64_t total = 0;
    std::unordered_map<std::string, uint64_t> dropped_before;  // by exec
  };
  // Drops the oldest stored chunks of one sandbox until `free` bytes went (or none is left).
  void drop_oldest_locked(const std::string& sandbox, books& b, uint64_t free);

  storage::store& store_;
  const quota_source& quotas_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, books> sandboxes_;
  std::unordered_map<std::string, uint64_t> tenant_total_;
  std::unordered_map<std::string, std::unordered_set<std::string>> tenant_sandboxes_;
  uint64_t next_stamp_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace corral
