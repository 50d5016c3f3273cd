#include "gateway/output_pump.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <chrono>

#include "client/errors.hpp"
#include "client/requests.hpp"
#include "schemas/subjects.hpp"

namespace corral::gateway {

namespace asio = boost::asio;

namespace {

constexpr int64_t first_quiet_ms = 1000;
constexpr int64_t max_quiet_ms = 8000;

}  // namespace

std::shared_ptr<output_pump> output_pump::create(asio::any_io_executor ex, bus::connection& conn,
                                                 client::reply_router& router, pump_target target,
                                                 pump_limits limits, sink s) {
  return std::shared_ptr<output_pump>(
      new output_pump(std::move(ex), conn, router, std::move(target), limits, std::move(s)));
}

output_pump::output_pump(asio::any_io_executor ex, bus::connection& conn, client::reply_router& router,
                         pump_target target, pump_limits limits, sink s)
    : ex_(ex),
      conn_(conn),
      router_(router),
      target_(std::move(target)),
      limits_(limits),
      sink_(std::move(s)),
      seq_(client::output_sequencer::options{limits.max_queued_bytes, target_.offset}),
      emit_([this](const client::output_frame& f) { deliver(f); }),
      replay_timer_(ex),
      quiet_timer_(ex),
      quiet_ms_(first_quiet_ms) {}

output_pump::~output_pump() {
  live_.reset();
  router_.close(replay_ticket_);
}

void output_pump::start() {
  if (target_.follow) subscribe_live();
  request_replay();
}

void output_pump::subscribe_live() {
  std::weak_ptr<output_pump> weak = shared_from_this();
  const std::size_t max = limits_.max_queued_bytes;
  auto s = conn_.subscribe(
      wire::subjects::output(target_.tenant, target_.sandbox, target_.exec_id), "",
      [weak, max](bus::message&& m) {
        auto p = weak.lock();
        if (!p) return;
        const std::size_t n = m.data.size();
        if (p->live_in_flight_.load() + p->queued_.load() + n > max) {
          // The client is behind: the executor's store keeps this frame for a later replay.
          if (!p->live_dropped_.exchange(true)) asio::post(p->ex_, [p] { p->on_live_dropped(); });
          return;
        }
        p->live_in_flight_ += n;
        asio::post(p->ex_, [p, m = std::move(m)]() mutable {
          p->live_in_flight_ -= m.data.size();
          p->on_live(std::move(m));
        });
      });
  if (!s) return fail({wire::ErrorCode::unavailable, "NATS: subscribe: " + s.error().message});
  live_ = std::move(s).value();
}

void output_pump::request_replay() {
  if (stopped_ || ended_ || replay_ticket_ != 0) return;
  replay_wanted_ = false;
  seq_.replay_asked();  // this replay covers every frame stored so far
  // The request holds the pump until it is answered, timed out or abandoned (release()).
  auto self = shared_from_this();
  std::weak_ptr<output_pump> weak = self;
  auto t = router_.open([self](uint64_t id, bus::message&& m) {
    asio::post(self->ex_, [p = self, id, m = std::move(m)]() mutable { p->on_replay(id, std::move(m)); });
  });
  replay_ticket_ = t.id;
  const auto payload = client::replay_request_bytes(target_.exec_id, seq_.next());
  if (auto st = router_.publish(wire::subjects::sandbox_op(target_.tenant, target_.sandbox, "replay"),
                                t, payload);
      !st)
    return fail({wire::ErrorCode::unavailable, "NATS: " + st.error().message});
  replay_timer_.expires_after(std::chrono::milliseconds(limits_.request_timeout_ms));
  replay_timer_.async_wait([weak, ticket = t.id](const boost::system::error_code& ec) {
    auto p = weak.lock();
    if (ec || !p || p->replay_ticket_ != ticket) return;
    p->fail({wire::ErrorCode::deadline_exceeded, "no replay answer in time"});
  });
}

void output_pump::replay_when_drained() {
  if (stopped_ || ended_ || replay_ticket_ != 0) return;
  if (sink_.queued_bytes && sink_.queued_bytes() > 0) {
    replay_wanted_ = true;  // drained() asks
    return;
  }
  request_replay();
}

void output_pump::on_replay(uint64_t ticket, bus::message&& m) {
  if (stopped_ || ticket != replay_ticket_) return;
  if (m.data.empty())  // nobody answers (client/reply_router.hpp)
    return fail(client::wire_error(client::request_kind::sandbox,
                                   client::transport_failure::no_responders, target_.sandbox));
  if (auto e = client::error_in(m)) return fail(std::move(*e));
  if (auto end = wire::page_end_of(m.data.data(), m.data.size())) {
    const bool more = end->more;
    router_.close(replay_ticket_);
    replay_ticket_ = 0;
    replay_timer_.cancel();
    return replay_done(more);
  }
  if (!ensure_open()) {
    if (!stopped_) (void)seq_.offer(std::move(m.data), {});  // held until the sink is open
    return;
  }
  (void)seq_.offer(std::move(m.data), emit_);
}

bool output_pump::ensure_open() {
  if (opened_) return true;
  if (!opening_) {
    opening_ = true;
    if (sink_.open) sink_.open(shared_from_this());
  }
  return opened_ && !stopped_;
}

void output_pump::replay_done(bool more) {
  if (!ensure_open()) {
    if (!stopped_) replay_more_ = more;  // goes on in opened()
    return;
  }
  if (stopped_ || ended_) return;
  if (more) return replay_when_drained();
  settle();
}

void output_pump::opened() {
  if (opened_) return;
  opened_ = true;
  if (pending_error_) {
    auto e = std::move(*pending_error_);
    pending_error_.reset();
    auto s = std::move(sink_);
    sink_ = {};
    if (s.error) s.error(e, true);
    if (s.closed) s.closed();
    return;
  }
  if (stopped_) return;
  // Frames the replay brought while the sink was opening, in order.
  seq_.flush(emit_);
  if (stopped_ || ended_ || !replay_more_) return;
  const bool more = *replay_more_;
  replay_more_.reset();
  replay_done(more);
}

void output_pump::drained() {
  update_queued();
  if (replay_wanted_ && replay_ticket_ == 0) request_replay();
}

// The store has been read to its end: without follow, the output is all sent; with it, wait for
// more (and ask the store again for what is still missing).
void output_pump::settle() {
  if (stopped_ || ended_) return;
  if (!target_.follow) {
    if (sink_.end) sink_.end();
    return finish();
  }
  // Frames missing before a held one, or dropped live: the store has them by now.
  if (seq_.needs_replay()) replay_when_drained();
  arm_quiet_timer();
}

void output_pump::on_live(bus::message&& m) {
  if (stopped_ || ended_) return;
  ++live_seen_;
  // Held before the sink opened, or ahead of a gap; a frame past the cap is fetched from the
  // store instead. A replay in flight brings what is missing; otherwise one is asked for.
  (void)seq_.offer(std::move(m.data), opened_ ? emit_ : client::output_sequencer::emit_fn());
  if (opened_ && replay_ticket_ == 0 && !stopped_ && !ended_ && seq_.needs_replay())
    replay_when_drained();
}

void output_pump::on_live_dropped() {
  live_dropped_ = false;
  if (stopped_ || ended_) return;
  seq_.lost();
  if (opened_) replay_when_drained();
}

void output_pump::deliver(const client::output_frame& f) {
  if (f.exit != nullptr) {
    ended_ = true;
    if (sink_.exit) sink_.exit(f.exit->status());
    return finish();
  }
  const bool is_out = f.stream == wire::Stream::stdout;
  if ((is_out && !target_.want_stdout) || (!is_out && !target_.want_stderr)) return;
  if (sink_.data) sink_.data(f.stream, f.offset, f.data, f.size);
  update_queued();
}

void output_pump::arm_quiet_timer() {
  if (!target_.follow || stopped_ || ended_ || quiet_armed_) return;
  quiet_armed_ = true;
  live_seen_ = 0;
  quiet_timer_.expires_after(std::chrono::milliseconds(quiet_ms_));
  std::weak_ptr<output_pump> weak = shared_from_this();
  quiet_timer_.async_wait([weak](const boost::system::error_code& ec) {
    auto p = weak.lock();
    if (!p) return;
    p->quiet_armed_ = false;
    if (ec || p->stopped_ || p->ended_) return;
    if (p->live_seen_ > 0) {
      p->quiet_ms_ = first_quiet_ms;
    } else {
      // Quiet: the last frames may have been lost live; the store has them.
      p->quiet_ms_ = std::min(p->quiet_ms_ * 2, max_quiet_ms);
      p->replay_when_drained();
    }
    p->arm_quiet_timer();
  });
}

void output_pump::release() {
  live_.reset();  // no live handler runs after this
  router_.close(replay_ticket_);
  replay_ticket_ = 0;
  replay_timer_.cancel();
  quiet_timer_.cancel();
}

void output_pump::fail(status e) {
  if (stopped_) return;
  stopped_ = true;
  release();
  if (opening_ && !opened_) {
    pending_error_ = std::move(e);  // told once the sink is open
    return;
  }
  auto s = std::move(sink_);
  sink_ = {};
  if (s.error) s.error(e, opened_);
  if (s.closed) s.closed();
}

void output_pump::finish() {
  if (stopped_) return;
  stopped_ = true;
  release();
  auto s = std::move(sink_);
  sink_ = {};
  if (s.closed) s.closed();
}

bool output_pump::stop() {
  if (stopped_ && !pending_error_) return false;
  const bool unfinished = !ended_;
  stopped_ = true;
  pending_error_.reset();
  release();
  auto s = std::move(sink_);
  sink_ = {};
  if (s.closed) s.closed();
  return unfinished;
}

void output_pump::update_queued() {
  queued_ = sink_.queued_bytes ? sink_.queued_bytes() : 0;
}

}  // namespace corral::gateway
