#pragma once
// The HTTP/1.1 side of corral-gateway: Boost.Beast over Asio. Asio threads (io_threads) only
// accept, parse and write; each complete request is handed to the request_handler on a worker
// pool, which may block (NATS calls) and answers through its responder from any thread.
//
// Bounds (gateway_config): header and body sizes (431/413), a deadline for reading a whole
// request, one for each write; a client that stops reading is disconnected at the write
// deadline, which frees everything the gateway held for it.
#include <boost/beast/http.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/config.hpp"

namespace corral::gateway {

namespace http = boost::beast::http;
using http_request = http::request<http::string_body>;
using http_response = http::response<http::string_body>;

// A WebSocket accepted by responder::accept_websocket(). Thread-safe; calls block the caller
// (never an Asio thread). Incoming messages are queued up to a bound; past it the gateway stops
// reading the socket until receive() has taken some (TCP flow control reaches the client).
class websocket_channel {
 public:
  struct message {
    bool binary = false;
    std::string data;
  };
  virtual ~websocket_channel() = default;
  // False once the client is gone or too slow (write_timeout_ms).
  virtual bool send(bool binary, std::string_view data) = 0;
  // The next message; nullopt once the client closed (or the connection failed).
  virtual std::optional<message> receive() = 0;
  // A close frame, then the connection ends. Idempotent.
  virtual void close() = 0;
};

// How a handler answers one request. Thread-safe; every call may block the calling thread
// (never an Asio thread) until the bytes are handed to the socket.
class responder {
 public:
  virtual ~responder() = default;
  // The whole answer; exactly once unless a stream was begun.
  virtual void reply(http_response res) = 0;
  // A chunked response: the header, then chunks; false once the client is gone or too slow
  // (write_timeout_ms), after which nothing more should be sent.
  virtual bool begin_stream(http::status status, std::string_view content_type) = 0;
  virtual bool write_chunk(std::string_view data) = 0;
  // The last chunk; the connection is then closed.
  virtual void end_stream() = 0;
  // Completes the WebSocket handshake of `req` (an upgrade request); null when it failed.
  virtual std::shared_ptr<websocket_channel> accept_websocket(const http_request& req) = 0;
  // True once the client has disconnected or failed a write.
  [[nodiscard]] virtual bool closed() const = 0;
};

// Runs on a worker thread. `res` outlives the call if the handler keeps the pointer.
using request_handler = std::function<void(http_request&& req, std::shared_ptr<responder> res)>;

class http_server {
 public:
  http_server(const gateway_config& cfg, request_handler handler);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds and listens; false with *why on failure. port() is then the bound port.
  [[nodiscard]] bool start(std::string* why);
  [[nodiscard]] uint16_t port() const;
  // Runs the Asio and worker threads until stop().
  void run();
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace corral::gateway
