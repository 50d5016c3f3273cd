#include "gateway/http_server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <cstdio>
#include <deque>
#include <optional>
#include <thread>
#include <vector>

namespace corral::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

http_response plain_error(http::status status, const std::string& code, const std::string& message) {
  http_response res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = R"({"error":{"code":")" + code + R"(","message":")" + message + "\"}}";
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

// Calls the channel's on_closed once and drops every handler (they may hold the channel's
// owner, which holds the channel: the cycle ends here).
void fire_closed(stream_channel::handlers& h) {
  auto gone = std::move(h);
  h = {};
  if (gone.on_closed) gone.on_closed();
}

// The WebSocket a session became. Everything on the strand of the TCP stream it took over.
class websocket_channel : public stream_channel,
                          public std::enable_shared_from_this<websocket_channel> {
 public:
  websocket_channel(beast::tcp_stream&& s, const gateway_config& cfg)
      : ws_(std::move(s)), cfg_(cfg), write_timer_(ws_.get_executor()) {}

  void accept(const http_request& req, std::function<void(std::shared_ptr<stream_channel>)> done) {
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::milliseconds(cfg_.read_timeout_ms);
    t.idle_timeout = std::chrono::milliseconds(cfg_.write_timeout_ms);
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.read_message_max(cfg_.max_body_bytes);
    ws_.async_accept(req, [self = shared_from_this(), done = std::move(done)](beast::error_code ec) {
      if (ec) {
        self->closed_ = true;
        return done(nullptr);
      }
      done(self);
    });
  }

  asio::any_io_executor executor() override { return ws_.get_executor(); }
  void set_handlers(handlers h) override { h_ = std::move(h); }

  void send(bool binary, std::string data) override {
    if (closed_ || finishing_) return;
    queued_ += data.size();
    q_.push_back({binary, std::move(data)});
    kick();
  }
  std::size_t queued_bytes() const override { return queued_; }

  void read_next() override {
    if (closed_ || reading_) return;
    reading_ = true;
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->reading_ = false;
      if (ec) return self->close_now();
      message m{self->ws_.got_binary(), beast::buffers_to_string(self->in_.data())};
      self->in_.consume(self->in_.size());
      if (self->h_.on_message) self->h_.on_message(std::move(m));
    });
  }

  void finish() override {
    if (closed_) return;
    finishing_ = true;
    kick();
  }
  void abort() override {
    if (closed_) return;
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).close();
    close_now();
  }
  bool closed() const override { return closed_; }

 private:
  void kick() {
    if (writing_ || closed_) return;
    if (q_.empty()) {
      if (!finishing_) return;
      writing_ = true;
      arm_write_timer();
      ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {
        self->writing_ = false;
        self->write_timer_.cancel();
        self->close_now();
      });
      return;
    }
    writing_ = true;
    arm_write_timer();
    ws_.binary(q_.front().binary);
    ws_.async_write(asio::buffer(q_.front().data),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->writing_ = false;
                      self->write_timer_.cancel();
                      if (ec) return self->abort();
                      self->queued_ -= self->q_.front().data.size();
                      self->q_.pop_front();
                      if (self->q_.empty() && self->h_.on_drained) self->h_.on_drained();
                      self->kick();
                    });
  }
  // A client that takes no message for write_timeout_ms is cut off.
  void arm_write_timer() {
    write_timer_.expires_after(std::chrono::milliseconds(cfg_.write_timeout_ms));
    write_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && self->writing_) self->abort();
    });
  }
  void close_now() {
    if (closed_) return;
    closed_ = true;
    q_.clear();
    queued_ = 0;
    fire_closed(h_);
  }

  websocket::stream<beast::tcp_stream> ws_;
  const gateway_config& cfg_;
  asio::steady_timer write_timer_;
  beast::flat_buffer in_;
  std::deque<message> q_;
  std::size_t queued_ = 0;
  bool writing_ = false, reading_ = false, finishing_ = false, closed_ = false;
  handlers h_;
};

class session;

// The chunked response of a session's current request.
class http_stream_channel : public stream_channel,
                            public std::enable_shared_from_this<http_stream_channel> {
 public:
  http_stream_channel(std::shared_ptr<session> s, std::string head, bool keep_alive);
  void start();  // sends the head, watches for the client leaving
  asio::any_io_executor executor() override;
  void set_handlers(handlers h) override { h_ = std::move(h); }
  void send(bool, std::string data) override {
    if (closed_ || finishing_ || data.empty()) return;
    char size[32];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string piece;
    piece.reserve(static_cast<std::size_t>(n) + data.size() + 2);
    piece.append(size, static_cast<std::size_t>(n));
    piece.append(data);
    piece.append("\r\n");
    push(std::move(piece));
  }
  std::size_t queued_bytes() const override { return queued_; }
  void read_next() override {}
  void finish() override {
    if (closed_ || finishing_) return;
    push("0\r\n\r\n");
    finishing_ = true;
  }
  void abort() override;
  bool closed() const override { return closed_; }

 private:
  void push(std::string piece) {
    queued_ += piece.size();
    q_.push_back(std::move(piece));
    kick();
  }
  void kick();
  void watch_client();
  void close_now();

  std::shared_ptr<session> s_;
  bool keep_alive_;
  std::deque<std::string> q_;
  std::size_t queued_ = 0;
  std::size_t in_write_ = 0;  // pieces at the front of q_ being written
  bool finishing_ = false, closed_ = false, watching_ = false;
  handlers h_;
};

class session : public responder, public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket&& socket, const gateway_config& cfg, asio::thread_pool& workers,
          const request_handler& handler)
      : stream_(std::move(socket)), cfg_(cfg), workers_(workers), handler_(handler) {}

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_next(); });
  }

  void reply(http_response res) override {
    auto r = std::make_shared<http_response>(std::move(res));
    asio::post(stream_.get_executor(), [self = shared_from_this(), r] {
      self->stream_.expires_after(std::chrono::milliseconds(self->cfg_.write_timeout_ms));
      http::async_write(self->stream_, *r, [self, r](beast::error_code ec, std::size_t) {
        if (ec || !r->keep_alive()) return self->shutdown();
        self->read_next();
      });
    });
  }

  asio::any_io_executor executor() override { return stream_.get_executor(); }

  std::shared_ptr<stream_channel> begin_stream(http::status status,
                                               std::string_view content_type) override {
    std::string head = "HTTP/1.1 " + std::to_string(static_cast<unsigned>(status)) + " " +
                       std::string(http::obsolete_reason(status)) +
                       "\r\nContent-Type: " + std::string(content_type) +
                       "\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache\r\nConnection: " +
                       (keep_alive_ ? "keep-alive" : "close") + "\r\n\r\n";
    auto ch = std::make_shared<http_stream_channel>(shared_from_this(), std::move(head), keep_alive_);
    ch->start();
    return ch;
  }

  bool closed() const override { return closed_.load(); }

  void accept_websocket(const http_request& req,
                        std::function<void(std::shared_ptr<stream_channel>)> done) override {
    if (!websocket::is_upgrade(req) || closed_) return done(nullptr);
    // The TCP stream moves into the WebSocket, on the same strand; this session is done.
    closed_ = true;
    std::make_shared<websocket_channel>(std::move(stream_), cfg_)->accept(req, std::move(done));
  }

 private:
  friend class http_stream_channel;

  void read_next() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(cfg_.max_header_bytes));
    parser_->body_limit(cfg_.max_body_bytes);
    // The first request of a connection gets the read deadline; later ones the idle one too.
    stream_.expires_after(std::chrono::milliseconds(
        requests_ == 0 ? cfg_.read_timeout_ms : std::max(cfg_.read_timeout_ms, cfg_.idle_timeout_ms)));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit)
      return reply(plain_error(http::status::payload_too_large, "too_large",
                               "request body over the limit"));
    if (ec == http::error::header_limit)
      return reply(plain_error(http::status::request_header_fields_too_large, "too_large",
                               "request headers over the limit"));
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset)
      return shutdown();
    if (ec) return reply(plain_error(http::status::bad_request, "invalid_argument", "bad request"));
    ++requests_;
    stream_.expires_never();
    auto req = std::make_shared<http_request>(parser_->release());
    keep_alive_ = req->keep_alive();
    asio::post(workers_, [self = shared_from_this(), req] {
      self->handler_(std::move(*req), self);
    });
  }

  void shutdown() {
    if (closed_.exchange(true)) return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const gateway_config& cfg_;
  asio::thread_pool& workers_;
  const request_handler& handler_;
  std::atomic<bool> closed_{false};
  bool keep_alive_ = false;  // of the request being answered
  uint64_t requests_ = 0;
};

http_stream_channel::http_stream_channel(std::shared_ptr<session> s, std::string head, bool keep_alive)
    : s_(std::move(s)), keep_alive_(keep_alive) {
  queued_ = head.size();
  q_.push_back(std::move(head));
}

asio::any_io_executor http_stream_channel::executor() { return s_->stream_.get_executor(); }

void http_stream_channel::start() {
  kick();
  watch_client();
}

// While the stream lasts the client has nothing to send (HTTP/1.1): a readable socket with no
// byte waiting is the client's FIN, which ends the stream at once instead of at the next write.
void http_stream_channel::watch_client() {
  if (closed_ || watching_) return;
  watching_ = true;
  s_->stream_.socket().async_wait(tcp::socket::wait_read,
                                  [self = shared_from_this()](beast::error_code ec) {
                                    self->watching_ = false;
                                    if (ec || self->closed_) return;
                                    beast::error_code aec;
                                    const auto n = self->s_->stream_.socket().available(aec);
                                    if (aec || n == 0) self->abort();
                                    // else: a pipelined request waits for its turn
                                  });
}

void http_stream_channel::kick() {
  if (in_write_ > 0 || closed_ || q_.empty()) return;
  std::vector<asio::const_buffer> bufs;
  for (const auto& piece : q_) {
    bufs.emplace_back(asio::buffer(piece));
    if (bufs.size() == 64) break;
  }
  in_write_ = bufs.size();
  s_->stream_.expires_after(std::chrono::milliseconds(s_->cfg_.write_timeout_ms));
  asio::async_write(s_->stream_, bufs, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (self->closed_) return;
    if (ec) return self->abort();
    for (; self->in_write_ > 0; --self->in_write_) {
      self->queued_ -= self->q_.front().size();
      self->q_.pop_front();
    }
    if (!self->q_.empty()) return self->kick();
    self->s_->stream_.expires_never();
    if (!self->finishing_) {
      if (self->h_.on_drained) self->h_.on_drained();
      return;
    }
    // The last chunk is out: the connection goes on with the next request, or ends.
    self->closed_ = true;
    beast::error_code cec;
    self->s_->stream_.socket().cancel(cec);  // the client watch
    if (self->keep_alive_) self->s_->read_next();
    else self->s_->shutdown();
    fire_closed(self->h_);
  });
}

void http_stream_channel::abort() {
  if (closed_) return;
  s_->shutdown();
  close_now();
}

void http_stream_channel::close_now() {
  if (closed_) return;
  closed_ = true;
  q_.clear();
  queued_ = 0;
  in_write_ = 0;
  fire_closed(h_);
}

}  // namespace

struct http_server::impl {
  impl(const gateway_config& c, request_handler h)
      : cfg(c), handler(std::move(h)), workers(static_cast<std::size_t>(c.worker_threads)) {}
  gateway_config cfg;
  request_handler handler;
  asio::io_context ioc;
  asio::thread_pool workers;
  std::optional<tcp::acceptor> acceptor;
  uint16_t port = 0;

  void accept() {
    acceptor->async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        beast::error_code nec;
        s.set_option(tcp::no_delay(true), nec);  // best effort
        std::make_shared<session>(std::move(s), cfg, workers, handler)->start();
      }
      accept();
    });
  }
};

http_server::http_server(const gateway_config& cfg, request_handler handler)
    : impl_(std::make_unique<impl>(cfg, std::move(handler))) {}

http_server::~http_server() {
  stop();
  impl_->workers.join();
}

bool http_server::start(std::string* why) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(impl_->cfg.listen_host, ec);
  if (ec) {
    if (why) *why = "bad listen address: " + impl_->cfg.listen_host;
    return false;
  }
  tcp::endpoint ep(addr, impl_->cfg.listen_port);
  impl_->acceptor.emplace(impl_->ioc);
  impl_->acceptor->open(ep.protocol(), ec);
  if (!ec) impl_->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor->bind(ep, ec);
  if (!ec) impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    if (why) *why = "listen on " + impl_->cfg.listen_host + ": " + ec.message();
    return false;
  }
  impl_->port = impl_->acceptor->local_endpoint().port();
  impl_->accept();
  return true;
}

uint16_t http_server::port() const { return impl_->port; }

void http_server::run() {
  std::vector<std::thread> threads;
  for (int i = 1; i < impl_->cfg.io_threads; ++i) threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : threads) t.join();
}

void http_server::stop() {
  asio::post(impl_->ioc, [this] {
    beast::error_code ec;
    if (impl_->acceptor) impl_->acceptor->close(ec);
  });
  impl_->ioc.stop();
}

}  // namespace corral::gateway
