#pragma once
// Prometheus counters of corral-gateway: requests by route and status, a latency histogram,
// open streams, NATS state. Thread-safe.
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace corral::gateway {

class metrics {
 public:
  void observe(const std::string& route, unsigned status, double seconds);
  std::atomic<int64_t> open_streams{0};
  // The text exposition format; nats_connected is sampled by the caller.
  [[nodiscard]] std::string render(bool nats_connected);

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, unsigned>, uint64_t> requests_;
  std::vector<double> bounds_{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  std::vector<uint64_t> buckets_ = std::vector<uint64_t>(12, 0);
  uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace corral::gateway
