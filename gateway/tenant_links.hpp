#pragma once
// The gateway's NATS connections: one per tenant seen (its requests and output streams share
// it), and one of the gateway's own for /healthz and /metrics, which is no tenant's.
//
// A tenant's connection is made once, under that tenant's own mutex, outside the mutex of the
// map: a slow or failing connect holds up only requests of the same tenant. Thread-safe.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "bus/connection.hpp"
#include "client/reply_router.hpp"
#include "gateway/config.hpp"

namespace corral::gateway {

class tenant_link_pool {
 public:
  // One tenant's connection and the router of its asynchronous requests.
  struct link {
    std::mutex connecting;
    std::atomic<bool> up{false};  // conn and router are set, and stay so
    std::unique_ptr<bus::connection> conn;
    std::unique_ptr<client::reply_router> router;  // uses conn: destroyed first
  };

  explicit tenant_link_pool(const gateway_config& cfg) : cfg_(cfg) {}
  // The tenant's link, connected; null (with *why) when the connection cannot be made now (the
  // tenant's next request tries again). Valid for the pool's life.
  [[nodiscard]] link* get(const std::string& tenant, std::string* why);
  // Tenants with a link (connected or being connected).
  [[nodiscard]] std::size_t size();
  // Whether the gateway's own connection (made on first use) is up.
  [[nodiscard]] bool nats_connected();

 private:
  [[nodiscard]] bus::options nats_options() const;

  const gateway_config& cfg_;
  std::mutex mu_;  // links_ (the map only: never held while connecting)
  std::map<std::string, std::shared_ptr<link>> links_;
  std::mutex health_mu_;  // health_conn_
  std::unique_ptr<bus::connection> health_conn_;
};

}  // namespace corral::gateway
