#pragma once
// The output of one exec, sent to one client in sequence order and gap-free, without a
// thread: replayed from the executor's store (corral.v1.{t}.sbx.{sb}.replay), then, with follow,
// live from corral.v1.{t}.sbx.{sb}.out.{ex} until the exit frame.
//
// Threads: every method must be called on the pump's executor (a strand: the client
// connection's), and every sink callback runs there. NATS callbacks only post onto it.
//
// Back-pressure. The process is never held up by a client: it keeps writing into the
// executor's bounded log. The gateway holds, per stream, at most
//   - max_queued_bytes of live output (queued for the client plus posted and not yet handled);
//     live frames past that are dropped here and fetched again from the executor's store once
//     the client has taken what is queued, and
//   - one replay batch (the executor's replay_batch_bytes): the next batch is asked for only
//     once the client has taken everything queued.
// A client that takes nothing for the write deadline is disconnected by its channel (stop()).
//
// Order of operations: the live subscription is made before the first replay request, on the
// same connection, so the server sees it first; the executor stores each frame before
// publishing it, so a frame missed live is in the store by the time the replay is handled.
// Frames lost live later (a NATS reconnect, a slow consumer) show as a sequence gap, which is
// filled by a replay; a stream quiet for a while asks the store too (1 s, doubling to 8 s), in
// case the lost frames were the last ones.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "bus/connection.hpp"
#include "client/output_sequencer.hpp"
#include "client/reply_router.hpp"
#include "schemas/codec.hpp"

namespace corral::gateway {

struct pump_target {
  std::string tenant, sandbox, exec_id;
  bool want_stdout = true, want_stderr = true;
  uint64_t offset = 0;  // per stream: bytes before it are skipped
  bool follow = false;  // false: what is stored now, then the end
};

struct pump_limits {
  std::size_t max_queued_bytes = 4 * 1024 * 1024;
  int64_t request_timeout_ms = 30'000;  // for each replay answer
};

class output_pump : public std::enable_shared_from_this<output_pump> {
 public:
  // What the pump drives; all called on the executor. After exit, error or end, nothing more
  // is called but closed.
  struct sink {
    // The first answer of the executor showed the exec exists: begin the response (or the
    // WebSocket handshake), then call opened() (at once or later).
    std::function<void(const std::shared_ptr<output_pump>&)> open;
    std::function<void(wire::Stream, uint64_t offset, const uint8_t* data, std::size_t n)> data;
    std::function<void(const wire::ExitStatus* status)> exit;  // the last frame
    // Before open (opened == false): nothing was sent yet, answer with a status code.
    std::function<void(const status& e, bool opened)> error;
    std::function<void()> end;                 // no follow: the stored output is all sent
    std::function<std::size_t()> queued_bytes; // what the client has not taken yet
    std::function<void()> closed;              // once, whatever the way the pump ended
  };

  [[nodiscard]] static std::shared_ptr<output_pump> create(boost::asio::any_io_executor ex,
                                                           bus::connection& conn,
                                                           client::reply_router& router, pump_target target,
                                                           pump_limits limits, sink s);
  ~output_pump();

  void start();
  // The sink is ready for output (after open).
  void opened();
  // The client has taken everything queued.
  void drained();
  // The client is gone: stop without calling the sink (but closed). True if the output had
  // not been sent entirely.
  bool stop();

 private:
  output_pump(boost::asio::any_io_executor ex, bus::connection& conn, client::reply_router& router,
              pump_target target, pump_limits limits, sink s);
  void subscribe_live();
  void request_replay();
  void replay_when_drained();
  void on_replay(uint64_t ticket, bus::message&& m);
  // The executor answered: asks the sink to open (once); true once it is open.
  bool ensure_open();
  void replay_done(bool more);
  void on_live(bus::message&& m);
  void on_live_dropped();
  void settle();
  // A frame the sequencer hands on, in order.
  void deliver(const client::output_frame& f);
  void arm_quiet_timer();
  void fail(status e);
  void finish();
  void release();
  void update_queued();

  boost::asio::any_io_executor ex_;
  bus::connection& conn_;
  client::reply_router& router_;
  pump_target target_;
  pump_limits limits_;
  sink sink_;

  // The order of the frames: held until the sink is open, or ahead of a gap (at most
  // max_queued_bytes; past it a frame is dropped and fetched again from the store).
  client::output_sequencer seq_;
  client::output_sequencer::emit_fn emit_;
  bool opening_ = false, opened_ = false, ended_ = false, stopped_ = false;
  std::unique_ptr<bus::subscription> live_;
  uint64_t replay_ticket_ = 0;  // the replay in flight, 0 = none
  bool replay_wanted_ = false;  // as soon as the client has taken what is queued
  std::optional<bool> replay_more_;  // a replay finished before the sink opened
  std::optional<status> pending_error_;
  boost::asio::steady_timer replay_timer_, quiet_timer_;
  int64_t quiet_ms_ = 1000;
  bool quiet_armed_ = false;
  uint64_t live_seen_ = 0;  // live frames since the quiet timer was armed
  // Shared with the NATS callback: live bytes posted and not yet handled, the client's queue.
  std::atomic<std::size_t> live_in_flight_{0};
  std::atomic<std::size_t> queued_{0};
  std::atomic<bool> live_dropped_{false};
};

}  // namespace corral::gateway
