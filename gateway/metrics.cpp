#include "gateway/metrics.hpp"

#include <sstream>

namespace corral::gateway {

void metrics::observe(const std::string& route, unsigned status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
  for (std::size_t i = 0; i < bounds_.size(); ++i)
    if (seconds <= bounds_[i]) ++buckets_[i];
  ++count_;
  sum_ += seconds;
}

std::string metrics::render(bool nats_connected) {
  std::ostringstream out;
  std::lock_guard<std::mutex> lock(mu_);
  out << "# HELP corral_gateway_requests_total HTTP requests by route and status.\n"
         "# TYPE corral_gateway_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out << "corral_gateway_requests_total{route=\"" << key.first << "\",status=\"" << key.second
        << "\"} " << n << "\n";
  out << "# HELP corral_gateway_request_seconds Request latency (streams: until the header).\n"
         "# TYPE corral_gateway_request_seconds histogram\n";
  for (std::size_t i = 0; i < bounds_.size(); ++i)
    out << "corral_gateway_request_seconds_bucket{le=\"" << bounds_[i] << "\"} " << buckets_[i] << "\n";
  out << "corral_gateway_request_seconds_bucket{le=\"+Inf\"} " << count_ << "\n"
      << "corral_gateway_request_seconds_sum " << sum_ << "\n"
      << "corral_gateway_request_seconds_count " << count_ << "\n"
      << "# HELP corral_gateway_open_streams Output streams open now.\n"
         "# TYPE corral_gateway_open_streams gauge\n"
      << "corral_gateway_open_streams " << open_streams.load() << "\n"
      << "# HELP corral_gateway_nats_connected 1 when connected to NATS.\n"
         "# TYPE corral_gateway_nats_connected gauge\n"
      << "corral_gateway_nats_connected " << (nats_connected ? 1 : 0) << "\n";
  return out.str();
}

}  // namespace corral::gateway
