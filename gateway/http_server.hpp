#pragma once
// The HTTP/1.1 side of corral-gateway: Boost.Beast over Asio. Asio threads (io_threads) only
// accept, parse and write; each complete request is handed to the request_handler on a worker
// pool, which may block (NATS calls) and answers through its responder from any thread.
// Requests that last (output streams, WebSockets) do not hold a thread: they answer through a
// stream_channel, asynchronously, on the connection's strand.
//
// Bounds (gateway_config): header and body sizes (431/413), a deadline for reading a whole
// request, one for each write; a client that stops reading is disconnected at the write
// deadline, which frees everything the gateway held for it. Accepted sockets have TCP_NODELAY:
// a small chunk goes out at once instead of waiting for the client's delayed ACK.
#include <boost/asio/any_io_executor.hpp>
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

// A response that lasts, to one client: the chunks of a chunked HTTP response (begin_stream) or
// the messages of a WebSocket (accept_websocket). Asynchronous and lock-free by confinement:
// every method must be called on executor() (the connection's strand) and every callback runs
// there; nothing blocks.
//
// Bounded by its owner: send() always queues, and queued_bytes() says how much is queued and not
// yet taken by the socket; the owner decides what to do past its bound (corral's output streams
// stop queueing live output and replay it from the executor later, see output_pump). A client
// that takes nothing for write_timeout_ms is disconnected (on_closed).
class stream_channel {
 public:
  struct message {
    bool binary = false;
    std::string data;
  };
  struct handlers {
    // The queue has been written out entirely (after a send()).
    std::function<void()> on_drained;
    // The client is gone, too slow, or the channel was finished or aborted; called once, after
    // which the channel sends nothing more.
    std::function<void()> on_closed;
    // WebSocket only: a message from the client. The next one is read only after read_next()
    // (so a slow consumer of messages holds the client back through TCP, not gateway memory).
    std::function<void(message&&)> on_message;
  };
  virtual ~stream_channel() = default;
  [[nodiscard]] virtual boost::asio::any_io_executor executor() = 0;
  // Set once, before the first send() or read_next().
  virtual void set_handlers(handlers h) = 0;
  // Queues one piece: a chunk of the HTTP body (binary ignored), or one WebSocket message.
  // Pieces go out in order. Ignored once closed.
  virtual void send(bool binary, std::string data) = 0;
  [[nodiscard]] virtual std::size_t queued_bytes() const = 0;
  // WebSocket: reads the next message (on_message). No-op for HTTP.
  virtual void read_next() = 0;
  // After the queued pieces: the last chunk (HTTP; the connection then serves the client's next
  // request if it asked for keep-alive) or a close frame (WebSocket). Then on_closed.
  virtual void finish() = 0;
  // Drops the queue and the connection at once. Then on_closed.
  virtual void abort() = 0;
  [[nodiscard]] virtual bool closed() const = 0;
};

// How a handler answers one request. Thread-safe unless noted.
class responder {
 public:
  virtual ~responder() = default;
  // The whole answer; exactly once unless a stream was begun. Returns at once (the write is
  // asynchronous).
  virtual void reply(http_response res) = 0;
  // The connection's strand: where stream work for this request runs.
  [[nodiscard]] virtual boost::asio::any_io_executor executor() = 0;
  // Begins a chunked response (status and content type; Connection as the request asked).
  // Call on executor(), at most once, instead of reply().
  [[nodiscard]] virtual std::shared_ptr<stream_channel> begin_stream(http::status status,
                                                                     std::string_view content_type) = 0;
  // Completes the WebSocket handshake of `req` (an upgrade request) asynchronously; `done` runs
  // on executor() with the channel, or null when the handshake failed. `req` must stay alive
  // until then. Call on executor(), at most once, instead of reply().
  virtual void accept_websocket(const http_request& req,
                                std::function<void(std::shared_ptr<stream_channel>)> done) = 0;
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
