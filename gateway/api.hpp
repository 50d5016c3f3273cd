#pragma once
// corral-gateway's HTTP API (docs/openapi.yaml): routes, bearer-token auth, and the translation
// to NATS requests through corral_client (one client, one NATS connection, per tenant seen).
// Stateless: everything a request needs is in the request or asked from the executors.
//
// Threads: handle() runs on the server's worker pool and may block on NATS. Output streams
// (NDJSON and WebSocket) hold no thread: an output_pump per stream runs on the connection's
// strand, fed by NATS callbacks. Long-polls (wait, terminate?wait, run) move to a thread of
// their own so they never starve the pool. Both count against max_open_streams (429 beyond).
#include <map>
#include <memory>
#include <mutex>

#include "cli/client.hpp"
#include "gateway/config.hpp"
#include "gateway/http_server.hpp"
#include "gateway/metrics.hpp"
#include "gateway/output_pump.hpp"
#include "gateway/reply_router.hpp"
#include "gateway/token_store.hpp"

namespace corral::gateway {

class api {
 public:
  api(const gateway_config& cfg, token_store& tokens, metrics& m);
  void handle(http_request&& req, std::shared_ptr<responder> res);
  [[nodiscard]] bool nats_connected();

 private:
  struct call;
  // Per tenant seen: the client of ordinary requests, and a connection of its own for output
  // streams (subscriptions served by a shared delivery pool, not a thread each) with the router
  // of its asynchronous requests.
  struct tenant_link {
    std::unique_ptr<cli::client> client;
    std::unique_ptr<bus::connection> streams;
    std::unique_ptr<reply_router> router;
  };
  tenant_link* link_for(const std::string& tenant, std::string* why);
  void dispatch(const std::shared_ptr<call>& c);
  // Counts a stream against max_open_streams; false (and 429 answered) when full.
  bool reserve_stream(const std::shared_ptr<call>& c);
  void stream_output(const std::shared_ptr<call>& c, pump_target target);
  void stream_websocket(const std::shared_ptr<call>& c, pump_target target);
  void run_pump(const std::shared_ptr<call>& c,
                const std::shared_ptr<std::shared_ptr<stream_channel>>& ch, pump_target target,
                output_pump::sink s);
  void start_long(const std::shared_ptr<call>& c, std::function<void(call&)> fn);
  [[nodiscard]] pump_limits limits() const;

  const gateway_config& cfg_;
  token_store& tokens_;
  metrics& metrics_;
  std::mutex mu_;
  std::map<std::string, tenant_link> links_;
};

}  // namespace corral::gateway
