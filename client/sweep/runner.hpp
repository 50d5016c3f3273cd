#pragma once
// A sweep's run: the input indexed, the output file resumed, and the programs without a result
// run — directly (run requests, client/sweep/direct.cpp) or through the JetStream job queue
// (client/sweep/queue.cpp). No console: what it has to say goes to a reporter, and its counts
// can be read at any time (the CLI draws its progress bar from them).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/client.hpp"
#include "client/sweep/options.hpp"
#include "client/sweep/out_file.hpp"
#include "client/sweep/program.hpp"
#include "client/sweep/verdict.hpp"

namespace corral::sweep {

// A note for the user (a program without a result, a retry, a stop); called from any thread.
using reporter = std::function<void(const std::string& line)>;

// Exit statuses of a sweep.
inline constexpr int exit_all_done = 0;  // every program has a result in the output file
inline constexpr int exit_missing = 1;   // some have none (run again to resume), or no start
inline constexpr int exit_usage = 2;

class runner {
 public:
  runner(options o, client::session::config cfg, reporter note);
  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;
  ~runner();

  // Reads the output file (cutting a partial last line), indexes the input and writes the
  // lines of the invalid programs. exit_all_done, or the exit status with *why.
  [[nodiscard]] int prepare(std::string* why);
  // Connects (when some program has no result yet) and runs them. exit_all_done, or
  // exit_missing when the run could not start (see stop_reason()).
  [[nodiscard]] int run();
  // Asks a running run() to stop soon (its programs stay to be resumed).
  void stop(const std::string& why);

  struct counts {
    std::size_t total = 0;  // programs (lines that are not blank) in the input
    // In the output file before this run.
    std::size_t before = 0, before_passed = 0, before_invalid = 0;
    // This run: results written, of which passed; invalid lines written; programs to run.
    std::size_t ran = 0, passed = 0, invalid_now = 0, todo = 0;
    // --queue: jobs published, found queued already, results ignored as duplicates, as of
    // other programs, or unreadable.
    std::size_t published = 0, already_queued = 0, duplicates = 0, stale = 0, unreadable = 0;
  };
  // Safe from any thread, at any time.
  [[nodiscard]] counts progress() const;
  // Programs without a result in the output file; once run() has returned.
  [[nodiscard]] std::size_t missing() const;
  [[nodiscard]] std::string stop_reason() const;
  [[nodiscard]] const std::string& batch() const { return batch_; }
  [[nodiscard]] int64_t elapsed_ms() const;

 private:
  using steady = std::chrono::steady_clock;

  // One program of the input: where its line is (read again when it is needed, so that a file
  // of 10^6 programs is never held in memory) and what became of it.
  struct entry {
    std::size_t line = 0;
    uint64_t offset = 0;
    std::size_t length = 0;
    std::string id;
    std::string job_id;      // empty for an invalid line
    std::string why;         // invalid: why
    bool finished = false;   // has its line in the output file
  };

  bool index_input(std::string* why);
  std::optional<program> load(const entry& e, std::string* why) const;
  void record(entry& e, const program& p, const job_result& r);
  void no_result(const entry& e, const std::string& why);
  bool stopping() const { return stop_.load(); }
  // Waits up to ms, or less when the sweep stops.
  void pause(int64_t ms);
  // A jittered exponential pause for the n-th retry, at most cap_ms.
  static int64_t backoff(int attempt, int64_t cap_ms = backoff_max_ms);

  // client/sweep/direct.cpp
  int run_direct(client::session& c);
  std::optional<job_result> run_one(client::session& c, const entry& e, const program& p,
                                    const wire::bytes& job, std::string* why);
  // client/sweep/queue.cpp
  int run_queue(client::session& c);
  void take_queue_result(const std::vector<uint8_t>& m, std::vector<uint8_t>& seen);

  options o_;
  client::session::config cfg_;
  reporter note_;
  std::string batch_;
  int in_fd_ = -1;
  std::vector<entry> entries_;
  std::unordered_map<std::string, std::size_t> by_job_id_;
  out_file out_;

  // Counts: of the output file before this run, and of this run.
  std::size_t before_ = 0, before_passed_ = 0, before_invalid_ = 0;
  std::atomic<std::size_t> ran_{0}, passed_{0}, invalid_now_{0};
  std::atomic<std::size_t> duplicates_{0}, stale_{0}, already_queued_{0}, unreadable_{0};
  std::atomic<std::size_t> abandoned_{0};  // --queue: jobs that will get no result now
  std::atomic<std::size_t> published_{0};  // --queue: jobs stored in the queue by this run
  std::size_t todo_ = 0;  // programs to run in this run
  steady::time_point started_ = steady::now();
  std::atomic<int64_t> last_result_ms_{0};  // ms since started_

  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;  // stop_reason_, the pause cv, the record of results
  std::condition_variable cv_;
  std::string stop_reason_;
};

}  // namespace corral::sweep
