#pragma once
// JetStream over the one NATS client (bus/connection.hpp): what must survive a crash — the job
// queue and the results (docs/protocol.md, docs/jobs.md; docs/promises.md P1–P3).
//
//   std::string why;
//   auto js = bus::jetstream::open(conn, &why);
//   bus::stream_config cfg;
//   cfg.name = "CORRAL_JOBS";
//   cfg.subjects = {"corral.v1.*.jobs.*"};
//   cfg.work_queue = true;
//   if (auto s = js->ensure_stream(cfg); !s) { /* s.code, s.message */ }
//   auto ack = js->publish("corral.v1.t.jobs.default", bytes, n, /*msg_id=*/"job-1");
//   auto c = js->pull("CORRAL_JOBS", "corral-default", "corral.v1.*.jobs.default", {});
//   auto batch = (*c)->fetch(8, 1000);
//   if (batch) for (auto& m : *batch) { ...; (void)m.in_progress(); ...; (void)m.ack(); }
//
// Same conventions as connection: thread-safe, errors as values, nothing throws, nothing blocks
// longer than the timeout it is given. The connection must outlive the jetstream object and
// everything made from it (consumers and messages may outlive the jetstream object itself).
//
// Errors (corral::status with the codes of bus::errc): invalid for a bad argument and for what
// the server refuses about one (an unknown stream or consumer, a configuration it rejects); no_responders when nobody answers on
// the subject (no stream holds it, or the server has no JetStream); timeout, not_connected as
// for connection; io for anything else. The message carries the server's description and its
// JetStream error code ("[err_code 10058]") when it gave one.
//
// Durability, with nats-server 2.9.10 (docs/jobs.md, "Durability of JetStream"):
// - a stored message is written to the store's files before publish() returns. With corral's
//   build of the server (corral-nats-server) and `jetstream { sync_interval: always }` it is
//   also fsync'ed before the ack: it survives a crash of the machine. Otherwise (Debian's
//   server, or another setting) it is fsync'ed only periodically: it survives a kill -9 of the
//   server, not a crash of the machine;
// - acks are persisted lazily (within about 5 s in the tests): after a kill -9 right after an
//   ack, the acked message may be delivered again, or stay in a work-queue stream without ever
//   being delivered again (it still counts in stream_info()). A clean server restart keeps
//   every ack. So whoever handles a message must be idempotent by its msg_id.
// (tests/bus_jetstream_test.cpp: *ServerKill9, *CleanServerRestart.)
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bus/connection.hpp"

namespace corral::bus {

// Stream and consumer names: 1..max_name_bytes of letters, digits, '-' and '_' (a name is a
// token of the JetStream API's subjects and a directory of the server's store).
inline constexpr std::size_t max_name_bytes = 128;
// Longest msg_id accepted by publish(); it travels in a header and may hold no control byte.
inline constexpr std::size_t max_msg_id_bytes = 512;
// Largest batch of one fetch().
inline constexpr int max_fetch_batch = 4096;

struct stream_config {
  std::string name;                   // e.g. "CORRAL_JOBS"; see max_name_bytes
  std::vector<std::string> subjects;  // wildcards allowed
  // true: work-queue retention (a message is removed once acknowledged; one consumer per
  // subject). false: limits retention (kept until max_age / max_bytes / max_msgs).
  bool work_queue = false;
  // Publishes with a Nats-Msg-Id seen within this window are dropped. > 0, and <= max_age_ms
  // when max_age_ms is set.
  int64_t duplicate_window_ms = 2 * 60 * 1000;
  int64_t max_age_ms = 0;     // 0 = unlimited
  int64_t max_bytes = -1;     // -1 = unlimited
  int64_t max_msgs = -1;      // -1 = unlimited
  int32_t max_msg_size = -1;  // -1 = the server's max_payload
  // When max_bytes or max_msgs is reached: false drops the oldest messages; true refuses new
  // publishes (the publisher gets an error: backpressure, nothing accepted is lost).
  bool discard_new = false;
  // Messages may be read by sequence and subject without a consumer (next_message()).
  bool allow_direct = false;
  // When not empty: every stored message whose subject matches republish_source (a subset of
  // `subjects`) is published again, after it is stored, on republish_destination (a subject
  // mapping: {{wildcard(N)}} takes the source's Nth wildcard token); headers only when
  // republish_headers_only. The server cannot change this on an existing stream.
  std::string republish_source;
  std::string republish_destination;
  bool republish_headers_only = true;
  int replicas = 1;           // 1..5; more than 1 needs a cluster
  bool file_storage = true;   // false = memory (tests only; corral's streams are file-backed)
};

struct stream_state {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  int64_t consumers = 0;
};

struct publish_ack {
  std::string stream;
  uint64_t sequence = 0;
  bool duplicate = false;  // the stream already had this msg_id within its duplicate window
};

struct consumer_options {
  int64_t ack_wait_ms = 30000;  // redelivered when not acked (or in_progress()ed) within this
  int64_t max_deliver = -1;     // -1 = redeliver forever; else >= 1
  // Messages delivered and not yet acked, across every process bound to the durable; the server
  // delivers no more past it. -1 = unlimited; else >= 1.
  int64_t max_ack_pending = 1000;
  // While fetches come back empty, fetch() asks the server at most this often whether the
  // durable still exists, and fails (invalid) once it does not: with nats.c 3.4 a deleted
  // consumer is otherwise indistinguishable from an empty queue (the fetch just times out).
  int64_t existence_check_ms = 5000;
  // Where a new durable starts; ignored when the durable exists (the server cannot change it).
  enum class start { all, new_only, by_sequence } deliver = start::all;
  uint64_t start_sequence = 0;  // for by_sequence
};

// A message fetched from a pull consumer. Owns copies of its bytes. May outlive its
// pull_consumer (it can still be acked then), not the connection. One thread at a time.
// A default-constructed (or moved-from) message is empty: accessors return empty values and
// the acknowledgements fail with invalid.
class js_message {
 public:
  js_message();
  ~js_message();
  js_message(js_message&&) noexcept;
  js_message& operator=(js_message&&) noexcept;
  js_message(const js_message&) = delete;
  js_message& operator=(const js_message&) = delete;

  const std::string& subject() const;
  const std::vector<uint8_t>& data() const;
  const std::string& msg_id() const;  // the Nats-Msg-Id header; empty when none
  uint64_t stream_sequence() const;
  uint64_t num_delivered() const;  // 1 on the first delivery
  int64_t timestamp_ms() const;    // when the stream stored it (unix epoch ms)

  // Acknowledgements (pull consumers). ack() waits for the server's confirmation (double ack)
  // up to timeout_ms, so that a returned success means the message will not be redelivered
  // (on a work-queue stream: it is removed), short of a server crash (see "Durability" above).
  // On timeout or not_connected the ack may or may not
  // have reached the server: the message may come again, which at-least-once allows.
  // nak(), in_progress() and term() are sent without confirmation (nats.c 3.4 confirms only
  // acks): if one is lost with the connection, the message is redelivered after the ack wait.
  // A message is settled once: the same call again is a no-op that succeeds; a different
  // settling call (ack() after nak(), nak() after term(), ...) or in_progress() after one is
  // refused with invalid. Messages of a reader() need no acknowledgement: these succeed and
  // send nothing.
  [[nodiscard]] status ack(int64_t timeout_ms = 5000);
  [[nodiscard]] status nak(int64_t delay_ms = 0);  // redeliver (after delay_ms when > 0)
  [[nodiscard]] status in_progress();              // resets the ack wait
  [[nodiscard]] status term();                     // never redeliver

  struct impl;

 private:
  friend class pull_consumer;
  friend class jetstream;
  std::unique_ptr<impl> impl_;
};

// A durable pull consumer, shared by every process that binds the same (stream, durable): each
// message goes to one of them. Not thread-safe itself: one fetching thread (acks may come from
// any thread).
//
// Destroying it stops pulling at once and never waits on the network. The durable stays on
// the server (with its unacked messages, redelivered after their ack wait to whoever fetches);
// only a reader's consumer is deleted.
class pull_consumer {
 public:
  ~pull_consumer();
  pull_consumer(const pull_consumer&) = delete;
  pull_consumer& operator=(const pull_consumer&) = delete;
  // Up to `batch` (1..max_fetch_batch) messages, waiting up to timeout_ms for the first. An
  // empty vector with error none is the normal "nothing now". The batch's ack waits start when
  // the server sends them: fetch no more than can be handled (or in_progress()ed) in time.
  // Fails with invalid once the consumer no longer exists (deleted; a reader idle past its
  // threshold), found out within consumer_options::existence_check_ms of fetching nothing
  // (a reader: within min(5 s, inactive_threshold_ms / 2)).
  [[nodiscard]] result<std::vector<js_message>> fetch(int batch, int64_t timeout_ms);
  // As fetch(), but the server answers at once with what it has now (possibly nothing): one
  // round trip, bounded by timeout_ms. For a fetcher that polls many consumers in turn.
  [[nodiscard]] result<std::vector<js_message>> fetch_now(int batch, int64_t timeout_ms);
  // {messages not yet delivered to anyone, delivered but not yet acked} (consumer info).
  [[nodiscard]] result<std::pair<uint64_t, uint64_t>> pending(int64_t timeout_ms);

  struct impl;

 private:
  friend class jetstream;
  explicit pull_consumer(std::unique_ptr<impl> i);
  [[nodiscard]] result<std::vector<js_message>> fetch_some(int batch, int64_t timeout_ms,
                                                           bool no_wait);
  std::unique_ptr<impl> impl_;
};

class jetstream {
 public:
  // A JetStream context on `conn`; fails when the server has no JetStream. It asks the server
  // for the account's JetStream information, or, when probe_stream is set, for that stream's
  // (a tenant may read only its own streams: docs/security.md).
  [[nodiscard]] static std::unique_ptr<jetstream> open(connection& conn, std::string* error,
                                                       int64_t timeout_ms = 5000,
                                                       const std::string& probe_stream = {});
  // A context that asks the server nothing: for a client that only publishes to streams (a
  // tenant, which has no JetStream API: docs/security.md). publish() then says whether a
  // stream took the message.
  [[nodiscard]] static std::unique_ptr<jetstream> publisher(connection& conn, std::string* error,
                                                            int64_t timeout_ms = 5000);
  ~jetstream();
  jetstream(const jetstream&) = delete;
  jetstream& operator=(const jetstream&) = delete;

  // Creates the stream, or updates it to `cfg` when it exists (several processes may call this
  // at once at start-up: all succeed; with different configurations, the last one wins). A
  // change the server cannot make (retention, storage, ...) fails with invalid, "stream NAME
  // exists with a configuration that cannot be changed to the requested one: ...", and leaves
  // the stream as it was.
  [[nodiscard]] status ensure_stream(const stream_config& cfg, int64_t timeout_ms = 5000);
  [[nodiscard]] result<stream_state> stream_info(const std::string& stream,
                                                 int64_t timeout_ms = 5000);
  [[nodiscard]] status delete_stream(const std::string& stream, int64_t timeout_ms = 5000);
  // The first message of `stream` at or after sequence `from_seq` whose subject is `subject`
  // (a stream made with allow_direct). `value.first` is its sequence, 0 when there is none.
  [[nodiscard]] result<std::pair<uint64_t, std::vector<uint8_t>>> next_message(
      const std::string& stream, uint64_t from_seq, const std::string& subject,
      int64_t timeout_ms = 5000);
  // The names of the streams that hold subjects matching subject_filter (empty: all streams).
  [[nodiscard]] result<std::vector<std::string>> stream_names(const std::string& subject_filter,
                                                              int64_t timeout_ms = 5000);

  // Publishes and waits for the stream's acknowledgement (stored, and synced as the server is
  // configured to). msg_id, when not empty, goes in the Nats-Msg-Id header: a second publish
  // with the same id inside the duplicate window is acknowledged with duplicate = true and not
  // stored (`sequence` is then the first copy's). no_responders when no stream holds the
  // subject. On timeout or not_connected the message may or may not be stored: publishing it
  // again with the same msg_id within the window stores it at most once.
  [[nodiscard]] result<publish_ack> publish(const std::string& subject, const void* data,
                                            std::size_t n, const std::string& msg_id,
                                            int64_t timeout_ms = 5000);

  // Binds (creating if needed) the durable pull consumer `durable` of `stream`, delivering the
  // messages whose subject matches `filter` (may be empty: all). An existing durable gets
  // opts' ack_wait, max_deliver, max_ack_pending and filter (where it starts is kept); the
  // server refuses some changes (invalid). On a work-queue stream, consumers' filters must not
  // overlap: a second durable on the same subjects is refused (invalid).
  [[nodiscard]] result<std::unique_ptr<pull_consumer>> pull(const std::string& stream,
                                                            const std::string& durable,
                                                            const std::string& filter,
                                                            const consumer_options& opts,
                                                            int64_t timeout_ms = 5000);
  // An ephemeral pull consumer reading a stream's messages on `filter` (may be empty: all) from
  // the start, in stream order, e.g. every result of a batch; fetch() until it comes back empty
  // (or pending() says 0 left). Acks are not needed (ack policy none) and reading removes
  // nothing. The server deletes the consumer when the pull_consumer is destroyed, or after
  // inactive_threshold_ms without a fetch (a crashed reader); a reader idle longer than that
  // finds its consumer gone (fetch fails). Not for work-queue streams: the server refuses a
  // consumer without acks there (invalid).
  // (Refinement: inactive_threshold_ms is a parameter because a crashed reader's consumer lives
  // that long. The consumer is created explicitly and then bound to, rather than created by
  // nats.c's pull subscribe, so that destroying the reader deletes it without waiting.)
  [[nodiscard]] result<std::unique_ptr<pull_consumer>> reader(
      const std::string& stream, const std::string& filter, int64_t timeout_ms = 5000,
      int64_t inactive_threshold_ms = 5 * 60 * 1000);

  struct impl;

 private:
  explicit jetstream(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace corral::bus
