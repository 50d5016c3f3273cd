#pragma once
// The stdin of an exec followed over a WebSocket (GET …/execs/{eid}/ws).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "client/reply_router.hpp"
#include "client/requests.hpp"
#include "gateway/http_server.hpp"

namespace corral::gateway {

// A WebSocket's incoming frames are the exec's stdin: binary frames are bytes, the text frame
// "eof" closes it. One StdinWrite in flight at a time (each at most max_stdin_chunk_bytes); the
// next frame is read only once it is acknowledged, so a client that sends faster than the
// process reads is held back by TCP, not buffered here. On the channel's strand.
class websocket_stdin : public std::enable_shared_from_this<websocket_stdin> {
 public:
  websocket_stdin(std::shared_ptr<stream_channel> ch, client::reply_router& router, std::string subject,
                  std::string exec_id, std::size_t chunk_max, int64_t timeout_ms)
      : ch_(std::move(ch)), router_(router), subject_(std::move(subject)),
        exec_id_(std::move(exec_id)), chunk_max_(chunk_max), timeout_ms_(timeout_ms),
        timer_(ch_->executor()) {}
  ~websocket_stdin() { router_.close(ticket_); }

  void on_message(stream_channel::message&& m) {
    if (stopped_) return;
    const bool eof = !m.binary && m.data == "eof";
    if ((!m.binary && !eof) || eof_sent_) return ch_->read_next();
    data_ = eof ? std::string() : std::move(m.data);
    at_ = 0;
    eof_ = eof;
    send_next();
  }
  void stop() {
    stopped_ = true;
    router_.close(ticket_);
    ticket_ = 0;
    timer_.cancel();
    ch_.reset();
  }

 private:
  void send_next() {
    n_ = std::min(chunk_max_, data_.size() - at_);
    const bool last = at_ + n_ >= data_.size();
    std::weak_ptr<websocket_stdin> weak = shared_from_this();
    auto ex = ch_->executor();
    auto t = router_.open([weak, ex](uint64_t id, bus::message&&) {
      boost::asio::post(ex, [weak, id] {
        if (auto s = weak.lock()) s->on_answer(id);
      });
    });
    ticket_ = t.id;
    // A refused write (the exec ended) or one that fails is dropped, as the process would
    // not read it anyway; the stream goes on.
    if (!router_.publish(subject_, t,
                         client::stdin_write_bytes(
                             exec_id_, reinterpret_cast<const uint8_t*>(data_.data()) + at_, n_,
                             eof_ && last))) return on_answer(t.id);
    timer_.expires_after(std::chrono::milliseconds(timeout_ms_));
    timer_.async_wait([weak, id = t.id](const boost::system::error_code& ec) {
      if (auto s = weak.lock(); s && !ec) s->on_answer(id);
    });
  }
  void on_answer(uint64_t id) {
    if (stopped_ || id != ticket_) return;
    router_.close(ticket_);
    ticket_ = 0;
    timer_.cancel();
    at_ += n_;
    if (at_ < data_.size()) return send_next();
    eof_sent_ = eof_;
    data_.clear();
    ch_->read_next();
  }

  std::shared_ptr<stream_channel> ch_;
  client::reply_router& router_;
  std::string subject_, exec_id_;
  std::size_t chunk_max_;
  int64_t timeout_ms_;
  boost::asio::steady_timer timer_;
  std::string data_;
  std::size_t at_ = 0, n_ = 0;
  bool eof_ = false, eof_sent_ = false, stopped_ = false;
  uint64_t ticket_ = 0;
};

}  // namespace corral::gateway
