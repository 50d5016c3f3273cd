#pragma once
// The one NATS client of corral (docs/architecture.md, "The parts" and "Floors"), used by the executor, the gateway and the CLI:
// connect and reconnect, publish, request/reply, scatter/gather and subscriptions, over nats.c.
//
// Errors are values (corral::status and corral::result with the codes of bus::errc, and a
// human-readable message); nothing here throws, and every result is [[nodiscard]]: ignoring one
// is an explicit `(void)`.
//
// Threads
//   A connection is thread-safe: any thread may call any method, concurrently. Nothing blocks
//   longer than the timeout it is given, except close()/the destructor (see there).
//   Callbacks never run on the caller's thread; they run on nats.c's threads:
//   - a subscription's handler on a message delivery thread (options::delivery_pool_threads).
//     Calls for one subscription never overlap and come in the order the client received the
//     messages. Several subscriptions share one delivery thread, so a handler that blocks delays
//     the others on that thread: handlers should hand the message off (the executor forwards it
//     to an actor) and return.
//   - on_disconnected / on_reconnected / on_closed / on_async_error on nats.c's event thread,
//     one call at a time, in the order the events happened. That thread is shared by every
//     connection of the process: these callbacks must return quickly too.
//   A handler may call any method of the connection (except drain()), including request(),
//   request_many() and destroying its own subscription. It must not wait for another handler
//   that may share its delivery thread (e.g. a request() answered by a handler of this process
//   on the same pool can stall until its timeout).
//   Each connection also runs one small thread of its own that frees unsubscribed subscriptions
//   once the server has acknowledged the unsubscribe (works around a use-after-free in nats.c
//   3.4's read loop), so destroying a subscription never waits for the network.
//
// Reconnect
//   The first connect fails fast (no retry while a server comes up). After it succeeded, a lost
//   connection is re-established forever by default (options::max_reconnect), cycling through
//   options::urls and the servers the cluster advertises. While reconnecting:
//   - publish() succeeds and buffers up to options::reconnect_buffer_bytes, sent in order once
//     reconnected; past that it fails with not_connected;
//   - subscriptions stay valid and are re-registered on the server by the client itself;
//     messages published by others while this client was away are lost (core NATS delivers at
//     most once: what must survive goes through JetStream);
//   - requests in flight when the connection drops fail with not_connected
//     (options::fail_requests_on_disconnect); new requests wait for the reconnect up to their
//     timeout.
//   When reconnect attempts are exhausted the connection closes (on_closed) and every call
//   returns not_connected.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "schemas/status.hpp"

namespace corral::bus {

// Every call answers with a corral::status or corral::result<T> (schemas/status.hpp). The codes
// the bus uses, by what they mean here:
namespace errc {
// nobody subscribes to the request's subject (the server said so at once)
inline constexpr wire::ErrorCode no_responders = wire::ErrorCode::not_found;
// nothing (or not enough) arrived before the deadline
inline constexpr wire::ErrorCode timeout = wire::ErrorCode::deadline_exceeded;
// closed, draining, disconnected with a full reconnect buffer, or a request in flight when the
// connection dropped
inline constexpr wire::ErrorCode not_connected = wire::ErrorCode::unavailable;
// bad argument: subject, queue group, payload over max_payload(), timeout
inline constexpr wire::ErrorCode invalid = wire::ErrorCode::invalid_argument;
// anything else nats.c reported
inline constexpr wire::ErrorCode io = wire::ErrorCode::internal;
}  // namespace errc

using corral::result;
using corral::status;

// One received message; owns copies of its bytes.
struct message {
  std::string subject;
  std::string reply;  // empty when the sender expects no answer
  std::vector<uint8_t> data;
};

// Called on a delivery thread (see "Threads"). The message is the handler's to keep.
using message_handler = std::function<void(message&&)>;

// Every limit has a default; connection::connect() validates them all and refuses bad ones.
struct options {
  // Servers, e.g. "nats://127.0.0.1:4222"; user info in the URL ("nats://user:pass@host:port")
  // is honoured. At least one. The first connect tries them in a random order.
  std::vector<std::string> urls;
  std::string name;  // client name shown by the server (connz); may be empty

  int64_t connect_timeout_ms = 2000;  // per server, for the first connect and each reconnect
  int max_reconnect = -1;             // attempts per server after a loss; -1 = forever
  int64_t reconnect_wait_ms = 250;    // pause between two attempts on the same server
  int64_t reconnect_jitter_ms = 100;  // random extra pause, so that clients do not stampede
  // Publishes buffered while reconnecting; beyond this they fail with not_connected.
  int64_t reconnect_buffer_bytes = 8 * 1024 * 1024;
  // Liveness: the client PINGs this often and declares the connection lost (and reconnects)
  // after max_pings_out PINGs without a PONG.
  int64_t ping_interval_ms = 10000;
  int max_pings_out = 2;
  // Fail requests in flight at once when the connection drops, instead of at their timeout.
  bool fail_requests_on_disconnect = true;
  // Write each publish to the socket at once instead of handing it to nats.c's flusher thread
  // (which batches). Saves a thread hop on every message: request/reply latency matters more
  // to corral than batching small messages.
  bool send_asap = true;

  // Per subscription: messages received but not yet handled. Past either limit the client drops
  // messages for that subscription (subscription::dropped(), on_async_error "slow consumer").
  // -1 = unlimited.
  int subscription_pending_msgs = 512 * 1024;
  int64_t subscription_pending_bytes = 256 * 1024 * 1024;

  // Message delivery threads. > 0: subscriptions share nats.c's process-wide delivery pool
  // (one delivery thread per subscription at a time, order kept) and the pool is grown to at
  // least this many threads; it is never shrunk, and every connection of the process that asks
  // for the pool shares it. The executor holds thousands of per-sandbox subscriptions: a
  // thread each would not scale. 0: each subscription gets its own dedicated thread.
  int delivery_pool_threads = 4;

  // Prefix of reply subjects (new_inbox(), request(), request_many()); empty = "_INBOX".
  // A tenant's NATS permissions allow only its own reply subjects: it sets
  // wire::subjects::tenant_inbox_prefix (docs/security.md, "NATS identities").
  std::string inbox_prefix;

  // Authentication: a file holding this client's NATS user nkey seed (bus/nkey.hpp; mode 0600).
  // Empty: connect without credentials (refused by a server that requires them). The seed is
  // read at connect() and kept in memory to sign the server's nonce at every reconnect.
  std::string nkey_seed_file;
  // TLS (docs/operations.md, "TLS between hosts"). A CA file (PEM) to verify the server with:
  // set, the connection requires TLS ("tls://" urls require it too). A client certificate and
  // key (PEM), for servers that verify clients; both or neither.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;

  // Longest subject, reply subject or queue group accepted. The server's control line is 4 KiB
  // by default and a longer one makes it close the whole connection, so subjects that come from
  // untrusted input must be capped well below it.
  int max_subject_bytes = 1024;

  // Connection events, on nats.c's event thread (see "Threads"). Each may be empty.
  std::function<void()> on_disconnected;  // the connection was lost; reconnecting
  std::function<void()> on_reconnected;   // reconnected; subscriptions re-registered
  // The connection is closed for good: close(), drain(), the destructor, or reconnect attempts
  // exhausted. Called exactly once; close() returns after it has returned.
  std::function<void()> on_closed;
  // Asynchronous errors, e.g. "slow consumer: messages dropped on <subject>".
  std::function<void(const std::string& detail)> on_async_error;
};

// True if `subject` is a valid NATS subject: 1..max_bytes bytes, tokens separated by '.', none
// empty, no whitespace or control bytes. With allow_wildcards, a token may be "*" and the last
// token may be ">" (subscriptions); without, neither may appear (publish, reply subjects).
[[nodiscard]] bool valid_subject(const std::string& subject, bool allow_wildcards,
                                 std::size_t max_bytes = 1024) noexcept;
// True if `group` is a valid queue group name: 1..max_bytes bytes, no whitespace or control
// bytes, no wildcard characters.
[[nodiscard]] bool valid_queue_group(const std::string& group,
                                     std::size_t max_bytes = 1024) noexcept;

class connection;

namespace internal {
struct connection_access;  // bus/connection_internal.hpp: for bus/'s own files only
}

// Interest in a subject, from subscribe() to destruction. Not thread-safe itself: one owner.
//
// Guarantee: once unsubscribe() or the destructor has returned, the handler is not running and
// will never run again, and the handler object (with what it captured) has been destroyed.
// Called from inside this subscription's own handler, they cannot wait for that very call: the
// handler is then destroyed right after the running call returns.
//
// A subscription may outlive its connection: it then simply receives nothing more.
class subscription {
 public:
  ~subscription();
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;

  // Removes interest on the server and waits for a handler call in progress (see above).
  // Idempotent.
  void unsubscribe();

  [[nodiscard]] const std::string& subject() const noexcept;
  [[nodiscard]] const std::string& queue_group() const noexcept;  // empty = none
  // Messages the client dropped for this subscription because its pending limits were full.
  [[nodiscard]] int64_t dropped() const noexcept;

 private:
  friend class connection;
  struct impl;
  explicit subscription(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

class connection {
 public:
  // Connects to one of opts.urls. On failure returns null and, if `error` is not null, sets it
  // to why (invalid options, or no server reachable within connect_timeout_ms).
  [[nodiscard]] static std::unique_ptr<connection> connect(const options& opts,
                                                           std::string* error);

  // close(), then frees the client. Subscriptions still alive stop receiving.
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Publishes `n` bytes at `data` on `subject` (no wildcards), optionally asking for replies on
  // `reply`. Returns once the message is buffered for sending, not when it reached the server:
  // flush() for that. Refuses (invalid) a payload over max_payload().
  [[nodiscard]] status publish(const std::string& subject, const void* data, std::size_t n);
  [[nodiscard]] status publish(const std::string& subject, const std::string& reply,
                               const void* data, std::size_t n);

  // Answers a request: publishes on req.reply. A message without a reply subject expects no
  // answer: nothing is sent and the status is none.
  [[nodiscard]] status respond(const message& req, const void* data, std::size_t n);

  // Sends a request and waits up to timeout_ms (> 0) for the first reply.
  // no_responders comes back at once (one round trip) when nobody subscribes to `subject`.
  [[nodiscard]] result<message> request(const std::string& subject, const void* data,
                                        std::size_t n, int64_t timeout_ms);

  // Scatter/gather: publishes once with a fresh inbox as reply subject and collects replies
  // until gather_timeout_ms (> 0) has passed or max_replies (>= 1) have arrived, whichever comes
  // first. Running out of time is the normal end and not an error. no_responders (at once) when
  // nobody subscribes to `subject`. not_connected when the connection drops meanwhile (the
  // replies gathered until then are dropped with it).
  // Blocks the calling thread, but needs no delivery thread: it may be called from a handler.
  [[nodiscard]] result<std::vector<message>> request_many(const std::string& subject,
                                                          const void* data, std::size_t n,
                                                          int64_t gather_timeout_ms,
                                                          std::size_t max_replies);

  // Subscribes `handler` to `subject` (wildcards allowed), in `queue_group` if not empty: each
  // message then goes to exactly one member of the group. Interest reaches the server in order
  // with this connection's later publishes; another connection's publish is only sure to be
  // seen after flush() has returned. Works while reconnecting (registered on reconnect).
  [[nodiscard]] result<std::unique_ptr<subscription>> subscribe(const std::string& subject,
                                                                const std::string& queue_group,
                                                                message_handler handler);

  // A fresh, unique reply subject (options::inbox_prefix + "." + random token).
  [[nodiscard]] std::string new_inbox() const;

  // Waits until the server has processed everything sent so far (one round trip).
  [[nodiscard]] status flush(int64_t timeout_ms);

  [[nodiscard]] bool is_connected() const;

  // Largest payload the current server accepts (its max_payload, 1 MiB by default); 0 when
  // closed. Callers cap their messages to it; publish() refuses larger ones.
  [[nodiscard]] int64_t max_payload() const;

  // Graceful close: stops subscriptions from taking new messages, lets the handlers finish the
  // messages already received, flushes publishes, then closes (on_closed). Returns when closed,
  // or timeout after timeout_ms, the connection then being closed anyway. Refused (invalid) from
  // a handler or event callback of this connection: it would wait for itself.
  [[nodiscard]] status drain(int64_t timeout_ms);

  // Closes at once: buffered publishes are flushed if possible, blocked calls return
  // not_connected, handlers stop being called. Returns after on_closed has returned, except when
  // called from one of this connection's own event callbacks (on_closed then runs after that
  // callback returns). Idempotent.
  void close();

 private:
  friend struct internal::connection_access;
  struct impl;
  explicit connection(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace corral::bus
