#include "gateway/tenant_slots.hpp"

namespace corral::gateway {

std::shared_ptr<tenant_slots::slot> tenant_slots::take(const std::string& tenant, kind k,
                                                       std::size_t limit, bool* all_full) {
  if (all_full != nullptr) *all_full = false;
  std::lock_guard<std::mutex> lock(state_->mu);
  auto& c = state_->by_tenant[tenant];
  auto& mine = k == kind::stream ? c.streams : c.inflight;
  auto& all = k == kind::stream ? state_->streams : state_->inflight;
  if (k == kind::stream && all >= max_streams_total_) {
    if (all_full != nullptr) *all_full = true;
    if (c.streams == 0 && c.inflight == 0) state_->by_tenant.erase(tenant);
    return nullptr;
  }
  if (mine >= limit) return nullptr;
  ++mine;
  ++all;
  return std::make_shared<slot>([st = state_, tenant, k] {
    std::lock_guard<std::mutex> lock(st->mu);
    auto it = st->by_tenant.find(tenant);
    if (it == st->by_tenant.end()) return;
    auto& n = k == kind::stream ? it->second.streams : it->second.inflight;
    --n;
    --(k == kind::stream ? st->streams : st->inflight);
    if (it->second.streams == 0 && it->second.inflight == 0) st->by_tenant.erase(it);
  });
}

std::size_t tenant_slots::held(const std::string& tenant, kind k) {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->by_tenant.find(tenant);
  if (it == state_->by_tenant.end()) return 0;
  return k == kind::stream ? it->second.streams : it->second.inflight;
}

std::size_t tenant_slots::total(kind k) {
  std::lock_guard<std::mutex> lock(state_->mu);
  return k == kind::stream ? state_->streams : state_->inflight;
}

}  // namespace corral::gateway
