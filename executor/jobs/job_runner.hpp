#pragma once
// The job runner of one executor: runs one-shot jobs (schemas/job.fbs) and produces
// their JobResult. Two isolation levels (Job.isolation):
//   fresh:  a lease — a sandbox of the job's tenant and shape, kept between that tenant's jobs,
//           with the guest runner (guest_runner.py serve) in it. Each job is a process forked from
//           a pre-started interpreter, unprivileged and in its own namespaces; everything it left
//           is killed and wiped after it (see guest_runner.py).
//   strict: a brand-new sandbox per job (from the node's warm pool when it has one), ended after.
// The runner drives sandboxes through the public protocol (the corral client library) on this
// executor's own node subject: its sandboxes count against this executor's capacity, belong and
// are metered to the job's tenant, and follow every rule of ordinary sandboxes (limits from the
// outside, lifetime, teardown).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus/connection.hpp"
#include "schemas/codec.hpp"

namespace corral::client {
class session;
}

namespace corral::jobs {

// The tag on every sandbox the runner creates: its value says which kind.
inline constexpr const char* sandbox_tag = "corral.job-runner";
inline constexpr const char* fresh_lease = "fresh";   // a lease, kept between a tenant's jobs
inline constexpr const char* strict_sandbox = "strict";  // one job's, ended after it

struct runner_config {
  std::string node_id;                         // this executor: sandboxes are created on it
  std::string pool = "default";
  int slots = 2;                               // jobs running at once
  int backlog = 2;                             // run requests queued beyond them (may_queue)
  int64_t default_timeout_ms = 60'000;         // a job's wall clock when it gives none
  int64_t max_timeout_ms = 3'600'000;
  uint32_t default_output_limit = 64 * 1024;   // bytes kept per stream in the result
  uint32_t max_output_limit = 1024 * 1024;
  std::size_t max_files = 64;
  int64_t lease_idle_ms = 60'000;              // an idle fresh sandbox is ended after this
  int64_t lease_max_age_ms = 3'600'000;        // and any after this (then replaced)
  uint32_t lease_max_jobs = 5000;              // the guest's output log is bounded: rotate
  uint64_t lease_max_output_bytes = 32ull << 20;
  int64_t guest_grace_ms = 10'000;             // past a job's timeout: the sandbox is destroyed
  int64_t guest_start_timeout_ms = 60'000;     // the guest runner's ready frame
  int64_t request_timeout_ms = 30'000;         // one protocol request
  std::size_t stdin_chunk_bytes = 256 * 1024;  // a job's frame goes to the guest in StdinWrites
                                               // of this much (<= the sandbox's max write)
};

// What became of one job.
struct job_outcome {
  bool retry = false;            // not run: no sandbox could be had now (capacity); try later
  std::string why;               // for retry and logs
  std::vector<uint8_t> result;   // a JobResult (when !retry)
};

// What the runner makes of a Job's bytes before anything of it runs (pure: run() acts on it):
// the request for the guest runner, or why the job is rejected. The ids and isolation are read
// whenever the bytes are a Job (they go into the result either way).
struct job_plan {
  std::string job_id, batch_id;
  wire::Isolation isolation = wire::Isolation::fresh;
  std::string rejected;        // non-empty: the job does not run, for this reason
  nlohmann::json request;      // what guest.hpp's frame carries to the guest runner
  int64_t timeout_ms = 0;      // the job's, or the default
  uint32_t cpu_millis = 0, memory_mib = 0;
};
[[nodiscard]] job_plan plan_job(const runner_config& cfg, const uint8_t* data, std::size_t size);

// A JobResult for a job that does not run: rejected (why = the reason) or executor_lost (the
// job was delivered too often without a result: each of its executors died).
std::vector<uint8_t> unrun_result(const std::string& job_id, const std::string& batch_id,
                                  wire::Outcome outcome, const std::string& why,
                                  const std::string& node, uint32_t attempt);

class job_runner {
 public:
  using done_fn = std::function<void(job_outcome)>;
  job_runner(std::shared_ptr<bus::connection> conn, runner_config cfg);
  ~job_runner();  // stop()
  job_runner(const job_runner&) = delete;
  job_runner& operator=(const job_runner&) = delete;

  // Queues one job of `tenant` (the bytes as received: verified here; a bad job gets a
  // rejected result). `done` is called exactly once, on a runner thread. Returns false, and
  // never calls done, when every slot is taken (and, with may_queue, the backlog is full too)
  // or the runner is stopping.
  [[nodiscard]] bool submit(std::string tenant, std::vector<uint8_t> job, uint32_t attempt,
                            done_fn done, bool may_queue = false);
  // Slots neither running nor queued.
  [[nodiscard]] int free_slots() const;
  // Waits until a slot is free or `max` passed.
  void wait_for_slot(std::chrono::milliseconds max) const;
  // The runner's connection was lost (call from its on_disconnected): a job whose answer does
  // not come while this happened is handed back to be run again (retry), never given a
  // made-up status.
  void connection_lost() { disconnects_.fetch_add(1); }
  // Stops taking jobs, hands the queued ones back (done with retry), lets the running ones
  // finish, ends every lease. Idempotent.
  void stop();

  struct lease;

 private:
  struct task {
    std::string tenant;
    std::vector<uint8_t> job;
    uint32_t attempt = 1;
    done_fn done;
  };
  void worker();
  void janitor();
  job_outcome run(const task& t);
  client::session* client_for(const std::string& tenant);
  // A started lease of this shape, idle or new (always new when single_use: strict jobs); null
  // with *why (and *retry: capacity, try later) when none can be had.
  std::shared_ptr<lease> acquire(const std::string& tenant, const std::string& key,
                                 uint32_t cpu_millis, uint32_t memory_mib, bool single_use,
                                 std::string* why, bool* retry);
  void release(std::shared_ptr<lease> l, bool healthy);
  void retire(std::shared_ptr<lease> l);  // off the job path: the janitor ends it

  std::shared_ptr<bus::connection> conn_;
  const runner_config cfg_;
  std::atomic<uint64_t> disconnects_{0};

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;       // tasks queued / slot freed / stopping
  std::deque<task> queue_;
  int busy_ = 0;                             // queued + running
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<client::session>> clients_;  // per tenant
  std::multimap<std::string, std::shared_ptr<lease>> idle_;       // key -> idle lease
  int leases_ = 0;                           // started and not retired
  std::vector<std::shared_ptr<lease>> graveyard_;
  std::condition_variable janitor_cv_;
  std::vector<std::thread> workers_;
  std::thread janitor_;
};

}  // namespace corral::jobs
