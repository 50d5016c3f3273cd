#pragma once
// corral-gateway's HTTP API (docs/openapi.yaml): routes, bearer-token auth, per-tenant limits,
// and the translation to NATS requests: one NATS connection per tenant seen (its requests and
// output streams share it), made outside any lock other tenants wait on, and one more of the
// gateway's own for /healthz and /metrics, which is no tenant's.
// Stateless: everything a request needs is in the request or asked from the executors.
//
// Threads (docs/security.md, "A tenant vs. the gateway"): admit() runs on an Asio thread with
// the request's headers only; handle() on the server's worker pool, where it parses and routes,
// and starts the request's NATS calls. No thread ever waits for an executor: every NATS request
// is asynchronous (nats_request), its answer handled on the client connection's strand, and so
// are output streams (output_pump), stdin, long-polls (wait, terminate?wait, run) and file reads.
// A client that leaves cancels what its request was waiting for and frees its slots at once.
//
// Limits: per tenant, streams (output streams, WebSockets, long-polls) and other requests in
// flight (from their headers on), each answered 429 with Retry-After beyond; streams also for all
// tenants together (max_open_streams).
#include <atomic>
#include <map>
#include <memory>
#include <mutex>

#include "bus/connection.hpp"
#include "gateway/config.hpp"
#include "gateway/http_server.hpp"
#include "gateway/metrics.hpp"
#include "gateway/output_pump.hpp"
#include "client/reply_router.hpp"
#include "gateway/tenant_slots.hpp"
#include "gateway/token_store.hpp"

namespace corral::gateway {

class api {
 public:
  // One request in flight (api.cpp).
  struct call;

  api(const gateway_config& cfg, token_store& tokens, metrics& m);
  // The header_check of the main listener: 401 without a tenant's token (/v1) or an operator's
  // (/metrics), 429 for a tenant at its limit of requests in flight, 404 for unknown paths, and
  // no body read for any of them.
  [[nodiscard]] admission admit(const http::request_header<>& head);
  void handle(http_request&& req, std::shared_ptr<responder> res, std::shared_ptr<void> hold);
  // The metrics listener: /metrics and /healthz without a token, nothing else.
  [[nodiscard]] admission admit_metrics_listener(const http::request_header<>& head);
  void handle_metrics_listener(http_request&& req, std::shared_ptr<responder> res);
  [[nodiscard]] bool nats_connected();
  // Tenants with a link (connected or being connected).
  [[nodiscard]] std::size_t tenant_links();

 private:
  // Per tenant seen: one NATS connection (subscriptions served by a shared delivery pool, not a
  // thread each) and the router of its asynchronous requests. Made once, under the link's own
  // mutex: a slow connect holds up only requests of the same tenant.
  struct tenant_link {
    std::mutex connecting;
    std::atomic<bool> up{false};  // conn and router are set, and stay so
    std::unique_ptr<bus::connection> conn;
    std::unique_ptr<client::reply_router> router;  // uses conn: destroyed first
  };
  // The tenant's link, connected; null (with *why) when the connection cannot be made now.
  tenant_link* link_for(const std::string& tenant, std::string* why);
  [[nodiscard]] bus::options nats_options() const;
  void route(const std::shared_ptr<call>& c);
  // Makes sure the call holds a stream slot (admit() takes one for requests known to last);
  // false (and 429 answered) when full.
  bool take_stream(const std::shared_ptr<call>& c);
  void stream_output(const std::shared_ptr<call>& c, pump_target target);
  void stream_websocket(const std::shared_ptr<call>& c, pump_target target);
  void run_pump(const std::shared_ptr<call>& c,
                const std::shared_ptr<std::shared_ptr<stream_channel>>& ch, pump_target target,
                output_pump::sink s);
  [[nodiscard]] pump_limits limits() const;
  void answer_health(const std::shared_ptr<responder>& res, unsigned version, bool keep_alive);
  void answer_metrics(const std::shared_ptr<responder>& res, unsigned version, bool keep_alive);

  const gateway_config& cfg_;
  token_store& tokens_;
  metrics& metrics_;
  tenant_slots slots_;
  std::mutex mu_;  // links_ (the map only: never held while connecting)
  std::map<std::string, std::shared_ptr<tenant_link>> links_;
  std::mutex health_mu_;  // health_conn_
  std::unique_ptr<bus::connection> health_conn_;
};

}  // namespace corral::gateway
