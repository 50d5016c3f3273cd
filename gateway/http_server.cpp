#include "gateway/http_server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
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

// What a socket that woke a wait_read says, while its client has nothing to send (HTTP/1.1, a
// request pending): its FIN or an error (gone), bytes (a pipelined request), or nothing at all
// (quiet: the wakeup was stale, which edge-triggered epoll allows; wait again).
enum class peer_state { gone, sent, quiet };
peer_state peek(tcp::socket& s) {
  char c = 0;
  const ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return peer_state::sent;
  if (n == 0) return peer_state::gone;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? peer_state::quiet
                                                                   : peer_state::gone;
}

// One accepted connection counted against the server's limits; released (once) when its socket
// is closed, or at the latest when the last owner drops it.
class conn_slot {
 public:
  using release_fn = std::function<void()>;
  explicit conn_slot(release_fn f) : release_(std::move(f)) {}
  ~conn_slot() { release(); }
  conn_slot(const conn_slot&) = delete;
  conn_slot& operator=(const conn_slot&) = delete;
  void release() {
    if (auto f = std::exchange(release_, nullptr)) f();
  }

 private:
  release_fn release_;
};

// The WebSocket a session became. Everything on the strand of the TCP stream it took over.
class websocket_channel : public stream_channel,
                          public std::enable_shared_from_this<websocket_channel> {
 public:
  websocket_channel(beast::tcp_stream&& s, const gateway_config& cfg, std::shared_ptr<conn_slot> slot)
      : ws_(std::move(s)), cfg_(cfg), write_timer_(ws_.get_executor()), slot_(std::move(slot)) {}

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
        beast::error_code cec;
        beast::get_lowest_layer(self->ws_).socket().close(cec);
        if (self->slot_) self->slot_->release();
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
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
    if (slot_) slot_->release();
    fire_closed(h_);
  }

  websocket::stream<beast::tcp_stream> ws_;
  const gateway_config& cfg_;
  asio::steady_timer write_timer_;
  std::shared_ptr<conn_slot> slot_;
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
          const request_handler& handler, const header_check& check, std::shared_ptr<conn_slot> slot)
      : stream_(std::move(socket)), ex_(stream_.get_executor()), cfg_(cfg), workers_(workers),
        handler_(handler), check_(check), slot_(std::move(slot)) {}

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_next(); });
  }

  void reply(http_response res) override {
    auto r = std::make_shared<http_response>(std::move(res));
    asio::post(ex_, [self = shared_from_this(), r] {
      self->answer_begun();
      self->stream_.expires_after(std::chrono::milliseconds(self->cfg_.write_timeout_ms));
      http::async_write(self->stream_, *r, [self, r](beast::error_code ec, std::size_t) {
        if (ec) return self->shutdown();
        if (!r->keep_alive()) return self->linger_close();
        self->read_next();
      });
    });
  }

  asio::any_io_executor executor() override { return ex_; }

  std::shared_ptr<stream_channel> begin_stream(http::status status,
                                               std::string_view content_type) override {
    answer_begun();
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
    answer_begun();
    if (!websocket::is_upgrade(req) || closed_) return done(nullptr);
    // The TCP stream moves into the WebSocket, on the same strand; this session is done.
    closed_ = true;
    std::make_shared<websocket_channel>(std::move(stream_), cfg_, std::move(slot_))
        ->accept(req, std::move(done));
  }

  void on_client_gone(std::function<void()> f) override {
    asio::dispatch(ex_, [self = shared_from_this(), f = std::move(f)]() mutable {
      if (self->gone_) return asio::post(self->ex_, std::move(f));
      if (self->answering_) return;
      self->gone_handlers_.push_back(std::move(f));
    });
  }

 private:
  friend class http_stream_channel;

  void read_next() {
    if (closed_) return;
    answering_ = false;
    gone_handlers_.clear();
    hold_.reset();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(cfg_.max_header_bytes));
    parser_->body_limit(cfg_.max_body_bytes);
    // The first request of a connection gets the read deadline; later ones the idle one too.
    stream_.expires_after(std::chrono::milliseconds(
        requests_ == 0 ? cfg_.read_timeout_ms : std::max(cfg_.read_timeout_ms, cfg_.idle_timeout_ms)));
    // Headers first: the header_check decides before any of the body is read.
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->on_header(ec);
                            });
  }

  // An error of reading a request: answered, or the connection just ends.
  bool read_failed(beast::error_code ec) {
    if (!ec) return false;
    answering_ = true;
    if (ec == http::error::body_limit)
      reply(plain_error(http::status::payload_too_large, "too_large", "request body over the limit"));
    else if (ec == http::error::header_limit)
      reply(plain_error(http::status::request_header_fields_too_large, "too_large",
                        "request headers over the limit"));
    else if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
             ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
             ec == asio::error::eof)
      shutdown();
    else
      reply(plain_error(http::status::bad_request, "invalid_argument", "bad request"));
    return true;
  }

  void on_header(beast::error_code ec) {
    if (read_failed(ec)) return;
    if (check_) {
      admission a = check_(parser_->get().base());
      if (a.refuse) {
        // The body stays unread: the connection cannot carry another request after it.
        answering_ = true;
        a.refuse->keep_alive(false);
        return reply(std::move(*a.refuse));
      }
      hold_ = std::move(a.hold);
    }
    if (parser_->is_done()) return on_read({});
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (read_failed(ec)) return;
    ++requests_;
    stream_.expires_never();
    auto req = std::make_shared<http_request>(parser_->release());
    keep_alive_ = req->keep_alive();
    asio::post(workers_, [self = shared_from_this(), req, hold = std::move(hold_)]() mutable {
      self->handler_(std::move(*req), self, std::move(hold));
    });
    watch_client();
  }

  // While a request is pending the client has nothing to send (HTTP/1.1): a readable socket
  // with no byte waiting is its FIN (or a reset), and what was started for it can stop now.
  void watch_client() {
    if (closed_ || answering_ || watching_) return;
    watching_ = true;
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      self->watching_ = false;
      if (ec || self->closed_ || self->answering_) return;
      switch (peek(self->stream_.socket())) {
        case peer_state::gone: return self->client_gone();
        case peer_state::quiet: return self->watch_client();
        case peer_state::sent: return;  // a pipelined request: it waits for its turn
      }
    });
  }

  void client_gone() {
    gone_ = true;
    shutdown();
    auto handlers = std::move(gone_handlers_);
    gone_handlers_.clear();
    for (auto& f : handlers) f();
  }

  // On the strand: the answer begins; the client watch ends (the stream watches for itself).
  void answer_begun() {
    answering_ = true;
    gone_handlers_.clear();
    if (watching_) {
      beast::error_code ec;
      stream_.socket().cancel(ec);
    }
  }

  void shutdown() {
    if (closed_.exchange(true)) return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    hold_.reset();
    if (slot_) slot_->release();
  }

  // After an answer that ends the connection: the client may still be sending a body nobody
  // reads; closing at once would reset the connection and could destroy the answer before the
  // client read it. Send our FIN, then read (into a small buffer, dropped) until the client's
  // FIN, at most linger_ms.
  void linger_close() {
    if (closed_) return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    hold_.reset();
    stream_.expires_after(std::chrono::milliseconds(linger_ms));
    drain_some();
  }
  void drain_some() {
    auto buf = std::make_shared<std::array<char, 4096>>();
    stream_.async_read_some(asio::buffer(*buf), [self = shared_from_this(), buf](beast::error_code ec,
                                                                                  std::size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > linger_max_bytes) return self->shutdown();
      self->drain_some();
    });
  }
  static constexpr int64_t linger_ms = 1000;
  static constexpr std::size_t linger_max_bytes = 16 * 1024 * 1024;

  beast::tcp_stream stream_;
  // The strand, kept: stream_ moves into a WebSocket while others may still post here.
  asio::any_io_executor ex_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const gateway_config& cfg_;
  asio::thread_pool& workers_;
  const request_handler& handler_;
  const header_check& check_;
  std::shared_ptr<conn_slot> slot_;
  std::shared_ptr<void> hold_;  // the admission of the request being read
  std::atomic<bool> closed_{false};
  bool keep_alive_ = false;  // of the request being answered
  bool answering_ = false;   // the current request's answer has begun
  bool watching_ = false, gone_ = false;
  std::vector<std::function<void()>> gone_handlers_;
  std::size_t lingered_ = 0;
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
                                    switch (peek(self->s_->stream_.socket())) {
                                      case peer_state::gone: return self->abort();
                                      case peer_state::quiet: return self->watch_client();
                                      case peer_state::sent: return;  // a pipelined request waits
                                    }
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
  impl(const gateway_config& c, request_handler h, header_check chk, connection_counters* k)
      : cfg(c), handler(std::move(h)), check(std::move(chk)),
        workers(static_cast<std::size_t>(c.worker_threads)), counters(k != nullptr ? k : &own_counters),
        accept_timer(ioc) {}
  gateway_config cfg;
  request_handler handler;
  header_check check;
  // Before ioc: sessions destroyed with it release their slots here.
  std::mutex mu;
  std::size_t connections = 0;
  std::map<asio::ip::address, std::size_t> by_address;
  connection_counters own_counters;
  asio::io_context ioc;
  asio::thread_pool workers;
  connection_counters* counters;
  std::optional<tcp::acceptor> acceptor;
  asio::steady_timer accept_timer;
  int64_t accept_backoff_ms = 0;  // 0: accepting normally
  uint16_t port = 0;
  std::size_t max_connections = 0;

  static constexpr int64_t first_backoff_ms = 50;
  static constexpr int64_t max_backoff_ms = 1000;

  // Out of descriptors (or kernel memory): the listening socket stays readable, so accepting
  // again at once would spin. Pause, doubling, until an accept succeeds.
  static bool out_of_resources(const beast::error_code& ec) {
    return ec == asio::error::no_descriptors || ec.value() == ENFILE || ec.value() == EMFILE ||
           ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
  }

  void accept() {
    acceptor->async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      if (out_of_resources(ec)) {
        if (accept_backoff_ms == 0)
          std::fprintf(stderr, "corral-gateway: accept: %s; pausing\n", ec.message().c_str());
        accept_backoff_ms = accept_backoff_ms == 0 ? first_backoff_ms
                                                   : std::min(accept_backoff_ms * 2, max_backoff_ms);
        ++counters->accept_pauses;
        accept_timer.expires_after(std::chrono::milliseconds(accept_backoff_ms));
        accept_timer.async_wait([this](beast::error_code tec) {
          if (!tec) accept();
        });
        return;
      }
      accept_backoff_ms = 0;
      if (!ec) admit(std::move(s));
      accept();
    });
  }

  void admit(tcp::socket s) {
    beast::error_code ec;
    const auto peer = s.remote_endpoint(ec).address();
    if (ec) return;  // already gone
    {
      std::lock_guard<std::mutex> lock(mu);
      const bool full = max_connections != 0 && connections >= max_connections;
      const bool address_full = cfg.max_connections_per_address != 0 &&
                                by_address[peer] >= cfg.max_connections_per_address;
      if (full || address_full) {
        if (by_address[peer] == 0) by_address.erase(peer);
        ++counters->refused;
        return refuse(std::move(s), full);
      }
      ++connections;
      ++by_address[peer];
    }
    ++counters->open;
    auto slot = std::make_shared<conn_slot>([this, peer] {
      std::lock_guard<std::mutex> lock(mu);
      --connections;
      if (auto it = by_address.find(peer); it != by_address.end() && --it->second == 0)
        by_address.erase(it);
      --counters->open;
    });
    s.set_option(tcp::no_delay(true), ec);  // best effort
    std::make_shared<session>(std::move(s), cfg, workers, handler, check, std::move(slot))->start();
  }

  // A 503 in one non-blocking send (it fits any socket buffer), then the close.
  static void refuse(tcp::socket s, bool all) {
    const std::string body = std::string(R"({"error":{"code":"unavailable","message":")") +
                             (all ? "too many connections to this gateway"
                                  : "too many connections from this address") +
                             "\"}}";
    const std::string res = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                            "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
    (void)::send(s.native_handle(), res.data(), res.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    beast::error_code ec;
    s.shutdown(tcp::socket::shutdown_both, ec);
    s.close(ec);
  }
};

http_server::http_server(const gateway_config& cfg, request_handler handler, header_check check,
                         connection_counters* counters)
    : impl_(std::make_unique<impl>(cfg, std::move(handler), std::move(check), counters)) {}

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
  impl_->max_connections = impl_->cfg.max_connections;
  if (rlimit nofile{}; impl_->max_connections == 0 && getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
                       nofile.rlim_cur != RLIM_INFINITY)
    // The last quarter stays for everything else: NATS connections (one per tenant), files.
    impl_->max_connections = std::max<std::size_t>(4, nofile.rlim_cur / 4 * 3);
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
    impl_->accept_timer.cancel();
  });
  impl_->ioc.stop();
}

}  // namespace corral::gateway
