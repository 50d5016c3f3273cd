#pragma once
// JetStream over the one NATS client (bus/connection.hpp): what must survive a crash — the job
// queue and the results (DESIGN.md §1, §3; RELIABILITY.md P1–P3).
//
//   auto js = bus::jetstream::open(conn, &why);
//   js->ensure_stream({.name = "CORRAL_JOBS", .subjects = {"corral.v1.*.jobs.*"},
//                      .work_queue = true, .duplicate_window_ms = 3600000});
//   js->publish("corral.v1.t.jobs.default", bytes, n, /*msg_id=*/"job-1", 5000);
//   auto c = js->pull_consumer("CORRAL_JOBS", "corral-default", "corral.v1.*.jobs.default", {});
//   for (auto& m : c.value->fetch(8, 1000).value) { ...; m.in_progress(); ...; m.ack(); }
//
// Same conventions as connection: thread-safe, errors as values, nothing throws, nothing blocks
// longer than the timeout it is given. The connection must outlive the jetstream object and
// everything made from it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bus/connection.hpp"

namespace corral::bus {

struct stream_config {
  std::string name;                   // e.g. "CORRAL_JOBS"
  std::vector<std::string> subjects;  // wildcards allowed
  // true: work-queue retention (a message is removed once acknowledged; one consumer per
  // subject). false: limits retention (kept until max_age / max_bytes / max_msgs).
  bool work_queue = false;
  int64_t duplicate_window_ms = 2 * 60 * 1000;  // publishes with a known Nats-Msg-Id are dropped
  int64_t max_age_ms = 0;                       // 0 = unlimited
  int64_t max_bytes = -1;                       // -1 = unlimited
  int64_t max_msgs = -1;                        // -1 = unlimited
  int32_t max_msg_size = -1;                    // -1 = the server's max_payload
  int replicas = 1;
  bool file_storage = true;  // false = memory (tests only; corral's streams are file-backed)
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
  int64_t max_deliver = -1;     // -1 = redeliver forever
  int64_t max_ack_pending = 1000;
  // Where a new durable starts; ignored when the durable exists.
  enum class start { all, new_only, by_sequence } deliver = start::all;
  uint64_t start_sequence = 0;  // for by_sequence
};

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
  // up to timeout_ms, so that a returned success means the message will not be redelivered.
  [[nodiscard]] status ack(int64_t timeout_ms = 5000);
  [[nodiscard]] status nak(int64_t delay_ms = 0);  // redeliver (after delay_ms when > 0)
  [[nodiscard]] status in_progress();               // resets the ack wait
  [[nodiscard]] status term();                      // never redeliver

  struct impl;

 private:
  friend class pull_consumer;
  friend class jetstream;
  std::unique_ptr<impl> impl_;
};

// A durable pull consumer, shared by every process that binds the same (stream, durable): each
// message goes to one of them. Not thread-safe itself: one fetching thread (acks may come from
// any thread).
class pull_consumer {
 public:
  ~pull_consumer();
  pull_consumer(const pull_consumer&) = delete;
  pull_consumer& operator=(const pull_consumer&) = delete;
  // Up to `batch` messages, waiting up to timeout_ms for the first. An empty vector with
  // error none (or timeout) is the normal "nothing now".
  [[nodiscard]] result<std::vector<js_message>> fetch(int batch, int64_t timeout_ms);
  // Messages not yet delivered to anyone, and delivered but not yet acked (consumer info).
  [[nodiscard]] result<std::pair<uint64_t, uint64_t>> pending(int64_t timeout_ms);

  struct impl;

 private:
  friend class jetstream;
  explicit pull_consumer(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

class jetstream {
 public:
  // A JetStream context on `conn`; fails when the server has no JetStream.
  [[nodiscard]] static std::unique_ptr<jetstream> open(connection& conn, std::string* error,
                                                       int64_t timeout_ms = 5000);
  ~jetstream();
  jetstream(const jetstream&) = delete;
  jetstream& operator=(const jetstream&) = delete;

  // Creates the stream, or updates it to `cfg` when it exists (several processes may call this
  // at once at start-up: all succeed).
  [[nodiscard]] status ensure_stream(const stream_config& cfg, int64_t timeout_ms = 5000);
  [[nodiscard]] result<stream_state> stream_info(const std::string& stream,
                                                 int64_t timeout_ms = 5000);
  [[nodiscard]] status delete_stream(const std::string& stream, int64_t timeout_ms = 5000);

  // Publishes and waits for the stream's acknowledgement (stored, and synced as the server is
  // configured to). msg_id, when not empty, goes in the Nats-Msg-Id header: a second publish
  // with the same id inside the duplicate window is acknowledged with duplicate = true and not
  // stored. no_responders when no stream holds the subject.
  [[nodiscard]] result<publish_ack> publish(const std::string& subject, const void* data,
                                            std::size_t n, const std::string& msg_id,
                                            int64_t timeout_ms = 5000);

  // Binds (creating if needed) the durable pull consumer `durable` of `stream`, delivering the
  // messages whose subject matches `filter` (may be empty: all).
  [[nodiscard]] result<std::unique_ptr<pull_consumer>> pull(const std::string& stream,
                                                            const std::string& durable,
                                                            const std::string& filter,
                                                            const consumer_options& opts,
                                                            int64_t timeout_ms = 5000);
  // An ephemeral pull consumer (deleted by the server after inactivity): reading a stream's
  // messages on `filter` from the start, e.g. every result of a batch. Acks are not needed
  // (ack policy none).
  [[nodiscard]] result<std::unique_ptr<pull_consumer>> reader(const std::string& stream,
                                                              const std::string& filter,
                                                              int64_t timeout_ms = 5000);

  struct impl;

 private:
  explicit jetstream(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace corral::bus
