#pragma once
// The HTTP/1.1 side of corral-gateway: Boost.Beast over Asio. Asio threads (io_threads) only
// accept, parse and write. A request's headers are read first and shown to the header_check,
// which may refuse it (401, 429, ...) before a byte of its body is read; the whole request is
// then handed to the request_handler on a worker pool, which must not wait for anything slow
// (docs/security.md, "A tenant vs. the gateway"): it starts asynchronous work and answers
// through its responder, from any thread. Requests that last (output streams, WebSockets) answer
// through a stream_channel, asynchronously, on the connection's strand.
//
// Bounds (gateway_config): header and body sizes (431/413), a deadline for reading a whole
// request, one for each write; a client that stops reading is disconnected at the write
// deadline, and a client that leaves while its request is pending is noticed at once
// (responder::on_client_gone), which frees everything the gateway held for it. Connections at
// once, in all and per source address (refused with a 503 beyond); when the process runs out of
// descriptors, accepting pauses (50 ms, doubling to 1 s) instead of spinning. Accepted sockets
// have TCP_NODELAY: a small chunk goes out at once instead of waiting for the client's delayed
// ACK.
#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
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
  // Runs `f` once, on executor(), when the client goes (FIN, reset) before the answer has begun
  // (reply, begin_stream, accept_websocket); at once (posted) when it is gone already. Once the
  // answer has begun, `f` is dropped unrun: a stream's channel says the rest (on_closed).
  virtual void on_client_gone(std::function<void()> f) = 0;
};

// What the header_check decides, on an Asio thread, from a request's headers alone.
struct admission {
  // Answered at once; the body is never read (the connection closes after the answer).
  std::optional<http_response> refuse;
  // Handed to the request_handler with the request (e.g. a tenant's slot, held while the body
  // is read); dropped with the request when it never gets there.
  std::shared_ptr<void> hold;
};
// Must not block. Empty: every request is admitted.
using header_check = std::function<admission(const http::request_header<>& head)>;

// Runs on a worker thread. `res` outlives the call if the handler keeps the pointer.
using request_handler =
    std::function<void(http_request&& req, std::shared_ptr<responder> res, std::shared_ptr<void> hold)>;

// The server's own gauges, for metrics (any thread may read them).
struct connection_counters {
  std::atomic<int64_t> open{0};         // connections now (WebSockets included)
  std::atomic<uint64_t> refused{0};     // over max_connections or max_connections_per_address
  std::atomic<uint64_t> accept_pauses{0};  // accept failed for want of descriptors
};

class http_server {
 public:
  // Listens on cfg.listen_host:listen_port. `counters` (optional) must outlive the server.
  http_server(const gateway_config& cfg, request_handler handler, header_check check = {},
              connection_counters* counters = nullptr);
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
