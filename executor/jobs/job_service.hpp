#pragma once
// Feeds the job runner from NATS (issue #5, DESIGN.md §3):
//   - corral.v1.{t}.pool.{pool}.run: request/reply in a queue group; a Job answered with its
//     JobResult (or an ErrorReply: resource_exhausted when every slot is busy, unavailable when
//     no sandbox can be had now). For producers that hold the line open (corral sweep --direct).
//   - corral.v1.{t}.jobs.{pool}: the pool's JetStream work queue (file-backed, deduplicated by
//     Nats-Msg-Id). Pulled as slots free up; in-progress acks while a job runs; the result is
//     published to corral.v1.{t}.results.{batch} (Nats-Msg-Id "{t}.{job_id}": a re-run after a
//     lost ack is dropped as a duplicate) and only then is the job acked. A job delivered more
//     than max_attempts times gets an executor_lost result instead of a further run (P3: every
//     accepted job gets exactly one result; none is lost).
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "bus/connection.hpp"
#include "bus/jetstream.hpp"
#include "executor/jobs/job_runner.hpp"

namespace corral::jobs {

struct service_config {
  std::string node_id;
  std::string pool = "default";
  int64_t ack_wait_ms = 30'000;               // JetStream redelivers a job not acked this long
  uint32_t max_attempts = 3;                  // deliveries that may run the job
  int64_t dedup_window_ms = 3'600'000;        // a job id published again inside it runs once
  int64_t results_max_age_ms = 7LL * 24 * 3600 * 1000;
  int64_t publish_timeout_ms = 5'000;
};

// The streams (created or updated by every executor at start).
bus::stream_config jobs_stream(const service_config& cfg);
bus::stream_config results_stream(const service_config& cfg);
// Nats-Msg-Id of a job and of its result.
std::string job_msg_id(const std::string& tenant, const std::string& job_id);

class job_service {
 public:
  job_service(std::shared_ptr<bus::connection> conn, job_runner& runner, service_config cfg);
  ~job_service();  // stop()
  job_service(const job_service&) = delete;
  job_service& operator=(const job_service&) = delete;

  // Subscribes to run requests and, when the server has JetStream, sets up the streams and
  // starts pulling jobs. False with *why when nothing could be set up.
  [[nodiscard]] bool start(std::string* why);
  // Stops taking work (running jobs still finish and are acked by the runner's callbacks; the
  // runner must outlive them: stop the runner after this). Idempotent.
  void stop();
  [[nodiscard]] bool has_jetstream() const { return consumer_ != nullptr; }

 private:
  struct inflight;
  void pull_loop();
  void ticker_loop();
  void take(bus::js_message&& m);
  void finish(const std::shared_ptr<inflight>& f, job_outcome o);

  std::shared_ptr<bus::connection> conn_;
  job_runner& runner_;
  const service_config cfg_;
  std::unique_ptr<bus::jetstream> js_;
  std::unique_ptr<bus::pull_consumer> consumer_;
  std::unique_ptr<bus::subscription> run_sub_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<uint64_t, std::shared_ptr<inflight>> inflight_;  // by stream sequence
  std::thread puller_, ticker_;
};

}  // namespace corral::jobs
