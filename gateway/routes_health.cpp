// /healthz and /metrics: on the main listener (metrics with an operator's token) and on the
// metrics listener of their own.
#include "gateway/call.hpp"

namespace corral::gateway {

admission api::admit_metrics_listener(const http::request_header<>& head) {
  admission a;
  const std::string_view target = sv(head.target());
  const std::string_view path = target.substr(0, target.find('?'));
  if (head.method() != http::verb::get || (path != "/metrics" && path != "/healthz"))
    a.refuse = error_response(http::status::not_found, head.version(), "not_found",
                              route_unknown(std::string(head.method_string()), target));
  else if (announces_body(head))
    a.refuse = error_response(http::status::bad_request, head.version(), "invalid_argument",
                              "no body expected");
  return a;
}

void api::answer_health(const std::shared_ptr<responder>& res, unsigned version, bool keep_alive) {
  const auto started = clock_type::now();
  const bool up = nats_connected();
  const auto st = up ? http::status::ok : http::status::service_unavailable;
  metrics_.observe("/healthz", static_cast<unsigned>(st),
                   std::chrono::duration<double>(clock_type::now() - started).count());
  res->reply(json_response(st, version, keep_alive, json{{"status", up ? "ok" : "nats_unavailable"}}));
}

void api::answer_metrics(const std::shared_ptr<responder>& res, unsigned version, bool keep_alive) {
  metrics::sampled now;
  now.nats_connected = nats_connected();
  now.open_streams = slots_.total(tenant_slots::kind::stream);
  now.inflight = slots_.total(tenant_slots::kind::inflight);
  metrics_.observe("/metrics", 200, 0);
  http_response r{http::status::ok, version};
  r.set(http::field::content_type, "text/plain; version=0.0.4");
  r.keep_alive(keep_alive);
  r.body() = metrics_.render(now);
  r.prepare_payload();
  res->reply(std::move(r));
}

void api::handle_metrics_listener(http_request&& req, std::shared_ptr<responder> res) {
  const std::string_view target = sv(req.target());
  if (target.substr(0, target.find('?')) == "/metrics")
    return answer_metrics(res, req.version(), req.keep_alive());
  answer_health(res, req.version(), req.keep_alive());
}

}  // namespace corral::gateway
