#pragma once
// Prometheus counters of corral-gateway: requests by route and status, a latency histogram,
// open streams, requests in flight, connections, NATS state. Gateway-wide only: no tenant's name
// or figures appear. Served to an operator's token or on the metrics listener only
// (docs/operations.md, "The gateway"). Thread-safe.
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gateway/http_server.hpp"

namespace corral::gateway {

class metrics {
 public:
  void observe(const std::string& route, unsigned status, double seconds);
  // The HTTP server's gauges (the main listener's).
  connection_counters connections;
  // Refusals of a tenant at one of its limits (429).
  std::atomic<uint64_t> tenant_limited{0};
  struct sampled {
    bool nats_connected = false;
    std::size_t open_streams = 0, inflight = 0;
  };
  // The text exposition format; `now` is sampled by the caller.
  [[nodiscard]] std::string render(const sampled& now);

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, unsigned>, uint64_t> requests_;
  std::vector<double> bounds_{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  std::vector<uint64_t> buckets_ = std::vector<uint64_t>(12, 0);
  uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace corral::gateway
