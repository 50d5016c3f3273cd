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
#include <memory>
#include <string_view>
#include <vector>

#include "gateway/config.hpp"
#include "gateway/http_server.hpp"
#include "gateway/metrics.hpp"
#include "gateway/output_pump.hpp"
#include "gateway/tenant_links.hpp"
#include "gateway/tenant_slots.hpp"
#include "gateway/token_store.hpp"

namespace corral::gateway {

class api {
 public:
  // One request in flight (gateway/call.hpp).
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
  [[nodiscard]] bool nats_connected() { return links_.nats_connected(); }
  // Tenants with a NATS link (connected or being connected).
  [[nodiscard]] std::size_t tenant_links() { return links_.size(); }

 private:
  using call_ptr = std::shared_ptr<call>;
  // The routes of /v1 (docs/openapi.yaml), matched by method and path segments after /v1; "*"
  // matches one segment (a sandbox or exec id, checked before any route runs). `name` is the
  // route's label in the metrics.
  struct route_entry {
    http::verb method;
    std::vector<std::string_view> path;
    const char* name;
    void (api::*run)(const call_ptr& c);
  };
  static const std::vector<route_entry>& routes();
  void route(const call_ptr& c);

  // gateway/routes_sandboxes.cpp
  void usage(const call_ptr& c);
  void sandbox_create(const call_ptr& c);
  void sandbox_list(const call_ptr& c);
  void sandbox_info(const call_ptr& c);
  void sandbox_terminate(const call_ptr& c);
  void sandbox_wait(const call_ptr& c);
  void sandbox_tags(const call_ptr& c);
  // gateway/routes_execs.cpp
  void exec_start(const call_ptr& c);
  void exec_status(const call_ptr& c);
  void exec_output(const call_ptr& c);
  void exec_websocket(const call_ptr& c);
  void exec_stdin(const call_ptr& c);
  void exec_signal(const call_ptr& c);
  // gateway/routes_files.cpp
  void file_read(const call_ptr& c);
  void file_write(const call_ptr& c);
  void file_remove(const call_ptr& c);
  void file_list(const call_ptr& c);
  void file_mkdir(const call_ptr& c);
  // gateway/routes_run.cpp
  void run(const call_ptr& c);
  // gateway/routes_health.cpp
  void answer_health(const std::shared_ptr<responder>& res, unsigned version, bool keep_alive);
  void answer_metrics(const std::shared_ptr<responder>& res, unsigned version, bool keep_alive);

  // Makes sure the call holds a stream slot (admit() takes one for requests known to last);
  // false (and 429 answered) when full.
  bool take_stream(const call_ptr& c);
  void stream_output(const call_ptr& c, pump_target target);
  void stream_websocket(const call_ptr& c, pump_target target);
  void run_pump(const call_ptr& c, const std::shared_ptr<std::shared_ptr<stream_channel>>& ch,
                pump_target target, output_pump::sink s);
  [[nodiscard]] pump_limits limits() const;

  const gateway_config& cfg_;
  token_store& tokens_;
  metrics& metrics_;
  tenant_slots slots_;
  tenant_link_pool links_;
};

}  // namespace corral::gateway
