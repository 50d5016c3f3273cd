#include "gateway/tenant_links.hpp"

#include "schemas/subjects.hpp"

namespace corral::gateway {

bus::options tenant_link_pool::nats_options() const {
  bus::options o;
  o.urls = {cfg_.nats_url};
  o.name = "corral-gateway";
  o.nkey_seed_file = cfg_.nats_creds;
  o.tls_ca_file = cfg_.nats_ca;
  o.inbox_prefix = std::string(wire::subjects::gateway_inbox_prefix);
  o.delivery_pool_threads = cfg_.nats_delivery_threads;
  return o;
}

tenant_link_pool::link* tenant_link_pool::get(const std::string& tenant, std::string* why) {
  std::shared_ptr<link> l;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = links_[tenant];
    if (!slot) slot = std::make_shared<link>();
    l = slot;
  }
  // The map keeps every link: the pointer returned stays valid for the pool's life.
  if (l->up.load(std::memory_order_acquire)) return l.get();
  std::lock_guard<std::mutex> connecting(l->connecting);
  if (l->up.load(std::memory_order_acquire)) return l.get();  // made while this one waited
  auto conn = bus::connection::connect(nats_options(), why);
  if (!conn) return nullptr;
  auto router = client::reply_router::create(*conn, why);
  if (!router) return nullptr;
  l->conn = std::move(conn);
  l->router = std::move(router);
  l->up.store(true, std::memory_order_release);
  return l.get();
}

std::size_t tenant_link_pool::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return links_.size();
}

bool tenant_link_pool::nats_connected() {
  std::lock_guard<std::mutex> lock(health_mu_);
  if (!health_conn_) {
    auto o = nats_options();
    o.name = "corral-gateway-health";
    std::string why;
    health_conn_ = bus::connection::connect(o, &why);
    if (!health_conn_) return false;
  }
  return health_conn_->is_connected();
}

}  // namespace corral::gateway
