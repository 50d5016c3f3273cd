#include "gateway/http_server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <condition_variable>
#include <deque>

#include <atomic>
#include <future>
#include <optional>
#include <mutex>
#include <thread>
#include <vector>

namespace corral::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
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

namespace websocket = beast::websocket;

// The WebSocket a session became. Reads run on the session's strand into a bounded inbox;
// writes are posted there and waited for by the (non-Asio) caller.
class websocket_session : public websocket_channel,
                          public std::enable_shared_from_this<websocket_session> {
 public:
  websocket_session(beast::tcp_stream&& s, const gateway_config& cfg)
      : ws_(std::move(s)), cfg_(cfg) {}

  bool accept(const http_request& req) {
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::milliseconds(cfg_.read_timeout_ms);
    t.idle_timeout = std::chrono::milliseconds(cfg_.write_timeout_ms);
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.read_message_max(cfg_.max_body_bytes);
    auto done = std::make_shared<std::promise<bool>>();
    auto fut = done->get_future();
    asio::dispatch(ws_.get_executor(), [self = shared_from_this(), &req, done] {
      self->ws_.async_accept(req, [self, done](beast::error_code ec) {
        if (ec) self->gone_ = true;
        else self->read_next();
        done->set_value(!ec);
      });
    });
    return fut.get();
  }

  bool send(bool binary, std::string_view data) override {
    if (gone_) return false;
    auto buf = std::make_shared<std::string>(data);
    auto done = std::make_shared<std::promise<bool>>();
    auto fut = done->get_future();
    asio::post(ws_.get_executor(), [self = shared_from_this(), buf, done, binary] {
      self->ws_.binary(binary);
      self->ws_.async_write(asio::buffer(*buf), [self, buf, done](beast::error_code ec, std::size_t) {
        if (ec) self->fail();
        done->set_value(!ec);
      });
    });
    return fut.get();
  }

  std::optional<message> receive() override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !inbox_.empty() || gone_; });
    if (inbox_.empty()) return std::nullopt;
    auto m = std::move(inbox_.front());
    inbox_.pop_front();
    queued_ -= m.data.size();
    if (paused_ && queued_ < cfg_.max_body_bytes) {
      paused_ = false;
      asio::post(ws_.get_executor(), [self = shared_from_this()] { self->read_next(); });
    }
    return m;
  }

  void close() override {
    if (closing_.exchange(true) || gone_) return;
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    asio::post(ws_.get_executor(), [self = shared_from_this(), done] {
      self->ws_.async_close(websocket::close_code::normal, [self, done](beast::error_code) {
        done->set_value();
      });
    });
    fut.wait();
  }

 private:
  void read_next() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail();
      message m{self->ws_.got_binary(), beast::buffers_to_string(self->buffer_.data())};
      self->buffer_.consume(self->buffer_.size());
      bool pause = false;
      {
        std::lock_guard<std::mutex> lock(self->mu_);
        self->queued_ += m.data.size();
        self->inbox_.push_back(std::move(m));
        pause = self->paused_ = self->queued_ >= self->cfg_.max_body_bytes;
      }
      self->cv_.notify_all();
      if (!pause) self->read_next();
    });
  }
  void fail() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      gone_ = true;
    }
    cv_.notify_all();
  }

  websocket::stream<beast::tcp_stream> ws_;
  const gateway_config& cfg_;
  beast::flat_buffer buffer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<message> inbox_;
  std::size_t queued_ = 0;
  bool paused_ = false;
  std::atomic<bool> gone_{false};
  std::atomic<bool> closing_{false};
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

  bool begin_stream(http::status status, std::string_view content_type) override {
    std::string head = "HTTP/1.1 " + std::to_string(static_cast<unsigned>(status)) + " " +
                       std::string(http::obsolete_reason(status)) +
                       "\r\nContent-Type: " + std::string(content_type) +
                       "\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache"
                       "\r\nConnection: close\r\n\r\n";
    return write_raw(std::move(head));
  }

  bool write_chunk(std::string_view data) override {
    if (data.empty()) return !closed();
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string piece(size);
    piece.append(data);
    piece.append("\r\n");
    return write_raw(std::move(piece));
  }

  void end_stream() override {
    (void)write_raw("0\r\n\r\n");
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->shutdown(); });
  }

  bool closed() const override { return closed_.load(); }

  std::shared_ptr<websocket_channel> accept_websocket(const http_request& req) override {
    if (!websocket::is_upgrade(req)) return nullptr;
    // The TCP stream moves into the WebSocket, on the session's strand; this session is done.
    auto moved = std::make_shared<std::promise<std::shared_ptr<websocket_session>>>();
    auto fut = moved->get_future();
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), moved] {
      self->closed_ = true;
      moved->set_value(std::make_shared<websocket_session>(std::move(self->stream_), self->cfg_));
    });
    auto ws = fut.get();
    if (!ws->accept(req)) return nullptr;
    return ws;
  }

 private:
  // Blocks the (non-Asio) caller until `bytes` are written or the write failed / timed out.
  bool write_raw(std::string bytes) {
    if (closed_) return false;
    auto buf = std::make_shared<std::string>(std::move(bytes));
    auto done = std::make_shared<std::promise<bool>>();
    auto fut = done->get_future();
    asio::post(stream_.get_executor(), [self = shared_from_this(), buf, done] {
      self->stream_.expires_after(std::chrono::milliseconds(self->cfg_.write_timeout_ms));
      asio::async_write(self->stream_, asio::buffer(*buf),
                        [self, buf, done](beast::error_code ec, std::size_t) {
                          if (ec) self->shutdown();
                          done->set_value(!ec);
                        });
    });
    return fut.get();
  }

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
  uint64_t requests_ = 0;
};

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
      if (!ec) std::make_shared<session>(std::move(s), cfg, workers, handler)->start();
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
