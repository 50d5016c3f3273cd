#include "actors/output_ledger.hpp"

#include <algorithm>
#include <iostream>

namespace corral {

void output_ledger::stored(const std::string& tenant, const std::string& sandbox,
                           const std::string& exec, uint64_t seq, uint64_t bytes) {
  const tenant_quota q = quotas_.quota_of(tenant);
  std::lock_guard<std::mutex> lock(mu_);
  auto& b = sandboxes_[sandbox];
  b.tenant = tenant;
  b.chunks.push_back({exec, seq, bytes, next_stamp_++});
  b.total += bytes;
  uint64_t& tenant_total = tenant_total_[tenant];
  tenant_total += bytes;
  tenant_sandboxes_[tenant].insert(sandbox);

  if (b.total > q.sandbox_stored_output_bytes)
    drop_oldest_locked(sandbox, b, b.total - q.sandbox_stored_output_bytes);
  // Over the tenant's cap: the oldest chunk of all its sandboxes goes first.
  while (tenant_total > q.stored_output_bytes) {
    books* oldest = nullptr;
    std::string oldest_id;
    for (const auto& id : tenant_sandboxes_[tenant]) {
      auto it = sandboxes_.find(id);
      if (it == sandboxes_.end() || it->second.chunks.empty()) continue;
      if (oldest == nullptr || it->second.chunks.front().stamp < oldest->chunks.front().stamp) {
        oldest = &it->second;
        oldest_id = id;
      }
    }
    if (oldest == nullptr) break;
    drop_oldest_locked(oldest_id, *oldest, tenant_total - q.stored_output_bytes);
  }
}

void output_ledger::drop_oldest_locked(const std::string& sandbox, books& b, uint64_t free) {
  uint64_t freed = 0;
  // Consecutive chunks of one exec go in one range delete.
  while (freed < free && !b.chunks.empty()) {
    const std::string exec = b.chunks.front().exec;
    uint64_t before = 0;
    while (freed < free && !b.chunks.empty() && b.chunks.front().exec == exec) {
      freed += b.chunks.front().bytes;
      before = b.chunks.front().seq + 1;
      b.total -= b.chunks.front().bytes;
      b.chunks.pop_front();
    }
    uint64_t& low = b.dropped_before[exec];
    low = std::max(low, before);
    if (auto st = store_.drop_output_before(sandbox, exec, before); !st.ok())
      std::cerr << "corral-executor: dropping the oldest output of " << sandbox << "/" << exec
                << " failed: " << st.message << "\n";
  }
  tenant_total_[b.tenant] -= freed;
  dropped_ += freed;
}

void output_ledger::forget(const std::string& sandbox) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sandboxes_.find(sandbox);
  if (it == sandboxes_.end()) return;
  tenant_total_[it->second.tenant] -= it->second.total;
  tenant_sandboxes_[it->second.tenant].erase(sandbox);
  sandboxes_.erase(it);
}

uint64_t output_ledger::dropped_before(const std::string& sandbox, const std::string& exec) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sandboxes_.find(sandbox);
  if (it == sandboxes_.end()) return 0;
  auto e = it->second.dropped_before.find(exec);
  return e == it->second.dropped_before.end() ? 0 : e->second;
}

uint64_t output_ledger::tenant_bytes(const std::string& tenant) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tenant_total_.find(tenant);
  return it == tenant_total_.end() ? 0 : it->second;
}

uint64_t output_ledger::sandbox_bytes(const std::string& sandbox) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sandboxes_.find(sandbox);
  return it == sandboxes_.end() ? 0 : it->second.total;
}

uint64_t output_ledger::dropped_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

}  // namespace corral
