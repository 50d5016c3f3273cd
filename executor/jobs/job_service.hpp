#pragma once
// Feeds the job runner from NATS (docs/jobs.md):
//   - corral.v1.{t}.pool.{pool}.run: request/reply in a queue group; a Job answered with its
//     JobResult (or an ErrorReply: resource_exhausted when every slot is busy, unavailable when
//     no sandbox can be had now). For producers that hold the line open (corral sweep --direct).
//   - corral.v1.{t}.jobs.{pool}: the pool's work queue in the tenant's own JetStream stream
//     CORRAL_JOBS_{t} (file-backed, deduplicated by Nats-Msg-Id within the tenant). Pulled as
//     slots free up, the tenants in turn; in-progress acks while a job runs; the result is
//     published to corral.v1.{t}.results.{batch} (stream CORRAL_RESULTS_{t}; Nats-Msg-Id
//     "{t}.{job_id}": a re-run after a lost ack is dropped as a duplicate) and only then is the
//     job acked. A job delivered more than max_attempts times gets an executor_lost result
//     instead of a further run (docs/promises.md P3: every accepted job gets exactly one result; none is lost).
//   - corral.v1.{t}.read.results (ResultsRead, one executor of the queue group answers): a
//     batch's stored results read back for the tenant, by stream sequence (tenants have no
//     JetStream API of their own).
//   - corral.v1.{t}.setup.jobs: a tenant's producer asks once (every executor answers) for its
//     two streams; each executor creates or updates them and consumes the jobs stream. Streams
//     set up earlier are found at start and every rescan_ms (executors that missed a setup).
// Every stream is the tenant's own so that its NATS permissions can name exactly its own
// (docs/security.md): one tenant's job ids, queue and results never meet another's.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>
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
  // Per tenant: queued jobs beyond this are refused to their producer (nothing accepted is
  // lost); results beyond this push out the oldest (as their age limit does).
  int64_t jobs_max_bytes = 1LL << 30;
  int64_t results_max_bytes = 1LL << 30;
  int64_t rescan_ms = 30'000;     // look for streams other executors set up
  int64_t idle_poll_ms = 2'000;   // every queue is asked at least this often (besides doorbells)
  uint32_t max_results_per_read = 256;              // results in one answer to a ResultsRead
  std::size_t max_result_read_bytes = 4 << 20;      // and their bytes (one result beyond, always)
};

// A tenant's two streams.
bus::stream_config jobs_stream(const service_config& cfg, const std::string& tenant);
bus::stream_config results_stream(const service_config& cfg, const std::string& tenant);
// A ResultsRead decoded (subjects::results_read): whose results, from which stream sequence,
// how many at most (within cap). Nullopt, with the ErrorReply to answer in *error, when the
// request is not one or names no valid tenant or batch.
struct results_read_plan {
  std::string tenant, batch;
  uint64_t from_seq = 1;
  uint32_t max_results = 1;
};
[[nodiscard]] std::optional<results_read_plan> plan_results_read(const std::string& subject,
                                                                 const uint8_t* data,
                                                                 std::size_t size, uint32_t cap,
                                                                 std::vector<uint8_t>* error);
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
  [[nodiscard]] bool has_jetstream() const { return js_ != nullptr; }
  // Sets up the tenant's streams and consumes its jobs (idempotent). Thread-safe.
  [[nodiscard]] bus::status setup_tenant(const std::string& tenant);

 private:
  struct inflight;
  void pull_loop();
  void ticker_loop();
  void rescan();
  void drop_legacy_streams();
  void reader_loop();
  void answer_read(const bus::message& m);
  void take(bus::js_message&& m);
  void finish(const std::shared_ptr<inflight>& f, job_outcome o);

  std::shared_ptr<bus::connection> conn_;
  job_runner& runner_;
  const service_config cfg_;
  std::unique_ptr<bus::jetstream> js_;
  std::unique_ptr<bus::subscription> run_sub_, setup_sub_, doorbell_sub_, read_sub_;
  std::atomic<bool> stopping_{false};
  std::mutex setup_mu_;  // one setup_tenant at a time
  std::mutex mu_;
  std::condition_variable cv_;
  // The tenants' job queues (one pull consumer each; only the puller fetches), and the tenants
  // whose queue just got a job (a doorbell: the published job seen on core NATS).
  std::map<std::string, std::shared_ptr<bus::pull_consumer>> queues_;
  std::set<std::string> rung_;
  std::deque<bus::message> setups_;  // setup requests waiting for the ticker's thread
  static constexpr std::size_t max_pending_setups = 1024;
  std::vector<std::shared_ptr<inflight>> waiting_;   // jobs waiting for a sandbox (finish())
  std::map<std::string, int> waiting_tenants_;       // how many each tenant has waiting
  std::deque<bus::message> reads_;   // results reads waiting for the reader's thread
  static constexpr std::size_t max_pending_reads = 1024;
  std::unordered_map<std::string, std::shared_ptr<inflight>> inflight_;  // by tenant + sequence
  std::thread puller_, ticker_, reader_;
};

}  // namespace corral::jobs
