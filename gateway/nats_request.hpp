#pragma once
// One NATS request answered without a waiting thread (docs/security.md, "A tenant vs. the
// gateway"): published through a client::reply_router, every reply posted onto an executor (the client
// connection's strand), ended by its last reply, its deadline or cancel().
//
// Threads: start() and cancel() must be called on the executor; every callback runs there.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/errors.hpp"
#include "client/reply_router.hpp"

namespace corral::gateway {

class nats_request : public std::enable_shared_from_this<nats_request> {
 public:
  enum class end {
    done,           // on_reply said that was the last reply
    timed_out,      // the deadline passed first (a gather's normal end)
    no_responders,  // nobody subscribes to the subject (the server's empty reply)
    failed,         // the publish failed (detail says why)
  };
  // Each reply (never the empty no-responders one); returns true when it was the last.
  using reply_fn = std::function<bool(bus::message&&)>;
  // Once, unless cancel() came first.
  using end_fn = std::function<void(end, const std::string& detail)>;

  // The request holds itself (through the router and its timer) until it ends.
  [[nodiscard]] static std::shared_ptr<nats_request> start(client::reply_router& router,
                                                           boost::asio::any_io_executor ex,
                                                           const std::string& subject,
                                                           const std::vector<uint8_t>& payload,
                                                           int64_t timeout_ms, reply_fn on_reply,
                                                           end_fn on_end);
  // How an end other than done failed, for client::wire_error.
  [[nodiscard]] static client::transport_failure failure_of(end e);
  // Ends it without calling anything; later replies are dropped. Idempotent.
  void cancel();
  ~nats_request();

 private:
  nats_request(client::reply_router& router, boost::asio::any_io_executor ex, reply_fn on_reply, end_fn on_end);
  void on_message(bus::message&& m);
  void finish(end e, const std::string& detail);
  // No more replies are routed here and the timer stops; false when the request had ended.
  bool stop();

  client::reply_router& router_;
  boost::asio::any_io_executor ex_;
  boost::asio::steady_timer timer_;
  reply_fn on_reply_;
  end_fn on_end_;
  uint64_t ticket_ = 0;
  bool ended_ = false;
};

}  // namespace corral::gateway
