#include "gateway/nats_request.hpp"

#include <boost/asio/post.hpp>

namespace corral::gateway {

namespace asio = boost::asio;

nats_request::nats_request(client::reply_router& router, asio::any_io_executor ex, reply_fn on_reply,
                           end_fn on_end)
    : router_(router), ex_(ex), timer_(ex), on_reply_(std::move(on_reply)), on_end_(std::move(on_end)) {}

nats_request::~nats_request() { router_.close(ticket_); }

std::shared_ptr<nats_request> nats_request::start(client::reply_router& router, asio::any_io_executor ex,
                                                  const std::string& subject,
                                                  const std::vector<uint8_t>& payload,
                                                  int64_t timeout_ms, reply_fn on_reply,
                                                  end_fn on_end) {
  std::shared_ptr<nats_request> r(new nats_request(router, ex, std::move(on_reply), std::move(on_end)));
  // The router's handler holds the request until close(ticket_) (at its end).
  auto t = router.open([r](uint64_t, bus::message&& m) {
    asio::post(r->ex_, [r, m = std::move(m)]() mutable { r->on_message(std::move(m)); });
  });
  r->ticket_ = t.id;
  if (auto st = router.publish(subject, t, payload); !st) {
    asio::post(ex, [r, detail = st.error().message] { r->finish(end::failed, detail); });
    return r;
  }
  r->timer_.expires_after(std::chrono::milliseconds(timeout_ms));
  r->timer_.async_wait([r](const boost::system::error_code& ec) {
    if (!ec) r->finish(end::timed_out, "no answer in time");
  });
  return r;
}

void nats_request::on_message(bus::message&& m) {
  if (ended_) return;
  // The server's no-responders status: executors never answer with an empty payload.
  if (m.data.empty()) return finish(end::no_responders, "no responders");
  if (on_reply_ && on_reply_(std::move(m))) finish(end::done, {});
}

bool nats_request::stop() {
  if (ended_) return false;
  ended_ = true;
  router_.close(ticket_);
  ticket_ = 0;
  timer_.cancel();
  on_reply_ = nullptr;
  return true;
}

void nats_request::finish(end e, const std::string& detail) {
  auto f = std::move(on_end_);
  on_end_ = nullptr;
  if (stop() && f) f(e, detail);
}

void nats_request::cancel() {
  (void)stop();
  on_end_ = nullptr;
}

client::transport_failure nats_request::failure_of(end e) {
  switch (e) {
    case end::no_responders: return client::transport_failure::no_responders;
    case end::timed_out: return client::transport_failure::timed_out;
    default: return client::transport_failure::failed;
  }
}

}  // namespace corral::gateway
