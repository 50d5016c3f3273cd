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

std::string metrics::render(const sampled& now) {
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
      << "corral_gateway_open_streams " << now.open_streams << "\n"
      << "# HELP corral_gateway_inflight_requests Requests admitted and not yet answered.\n"
         "# TYPE corral_gateway_inflight_requests gauge\n"
      << "corral_gateway_inflight_requests " << now.inflight << "\n"
      << "# HELP corral_gateway_tenant_limited_total Requests refused with 429 for a tenant's limit.\n"
         "# TYPE corral_gateway_tenant_limited_total counter\n"
      << "corral_gateway_tenant_limited_total " << tenant_limited.load() << "\n"
      << "# HELP corral_gateway_connections Client connections open now.\n"
         "# TYPE corral_gateway_connections gauge\n"
      << "corral_gateway_connections " << connections.open.load() << "\n"
      << "# HELP corral_gateway_connections_refused_total Connections refused over a connection limit.\n"
         "# TYPE corral_gateway_connections_refused_total counter\n"
      << "corral_gateway_connections_refused_total " << connections.refused.load() << "\n"
      << "# HELP corral_gateway_accept_pauses_total Pauses of accepting for want of descriptors.\n"
         "# TYPE corral_gateway_accept_pauses_total counter\n"
      << "corral_gateway_accept_pauses_total " << connections.accept_pauses.load() << "\n"
      << "# HELP corral_gateway_nats_connected 1 when connected to NATS.\n"
         "# TYPE corral_gateway_nats_connected gauge\n"
      << "corral_gateway_nats_connected " << (now.nats_connected ? 1 : 0) << "\n";
  return out.str();
}

}  // namespace corral::gateway
