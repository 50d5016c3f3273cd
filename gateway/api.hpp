#pragma once
// corral-gateway's HTTP API (docs/openapi.yaml): routes, bearer-token auth, and the translation
// to NATS requests through corral_client (one client, one NATS connection, per tenant seen).
// Stateless: everything a request needs is in the request or asked from the executors.
//
// Threads: handle() runs on the server's worker pool and may block on NATS. Requests that can
// last long (output streams, waits, runs) move to a thread of their own, at most
// max_open_streams at once (429 beyond), so they never starve the pool.
#include <map>
#include <memory>
#include <mutex>

#include "cli/client.hpp"
#include "gateway/config.hpp"
#include "gateway/http_server.hpp"
#include "gateway/metrics.hpp"
#include "gateway/token_store.hpp"

namespace corral::gateway {

class api {
 public:
  api(const gateway_config& cfg, token_store& tokens, metrics& m);
  void handle(http_request&& req, std::shared_ptr<responder> res);
  [[nodiscard]] bool nats_connected();

 private:
  struct call;
  cli::client* client_for(const std::string& tenant, std::string* why);
  void dispatch(const std::shared_ptr<call>& c);
  void stream_output(call& c, const std::string& sb, const std::string& eid,
                     const std::string& which, uint64_t offset, bool follow);
  void stream_websocket(call& c, const std::string& sb, const std::string& eid, uint64_t offset);
  void start_long(const std::shared_ptr<call>& c, std::function<void(call&)> fn);

  const gateway_config& cfg_;
  token_store& tokens_;
  metrics& metrics_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<cli::client>> clients_;
};

}  // namespace corral::gateway
