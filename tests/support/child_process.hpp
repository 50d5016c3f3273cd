#pragma once
// Child processes for integration tests: run a program to completion with captured output and a
// deadline, or keep one running (an executor) and wait for a line it prints.
//
// Not thread-safe per object. Children get PR_SET_PDEATHSIG(SIGKILL) so they die with the test.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace corral::test {

struct run_result {
  int exit_code = -1;      // exit status, or 128+signal
  bool timed_out = false;  // killed at the deadline
  std::string out;
  std::string err;
};

// Runs argv with `input` on its stdin (closed after), extra environment `env`, capturing stdout
// and stderr. Kills it (SIGKILL) at the deadline.
run_result run(const std::vector<std::string>& argv, const std::string& input = {},
               std::chrono::milliseconds timeout = std::chrono::seconds(60),
               const std::map<std::string, std::string>& env = {});

// Runs argv with stdin, stdout and stderr on /dev/null (for programs that leave their stdio to
// a daemon, like `runsc run -detach`: a pipe would never see EOF). Returns the exit code, or -1
// when killed at the deadline.
// stderr goes to stderr_path when one is given.
int run_quiet(const std::vector<std::string>& argv,
              std::chrono::milliseconds timeout = std::chrono::seconds(60),
              const std::string& stderr_path = {});

// Waits until `path` does not exist, on inotify events of its parent directory.
bool wait_path_gone(const std::string& path, std::chrono::milliseconds timeout);

// A long-running child whose stdout and stderr are collected by a reader thread.
class background_process {
 public:
  background_process() = default;
  ~background_process();
  background_process(const background_process&) = delete;
  background_process& operator=(const background_process&) = delete;

  bool start(const std::vector<std::string>& argv,
             const std::map<std::string, std::string>& env = {});
  // Waits until the combined output contains `needle`.
  bool wait_for_output(const std::string& needle,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Waits until the combined output contains `needle` at least `count` times.
  bool wait_for_output_count(const std::string& needle, std::size_t count,
                             std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Waits for the exit; returns the exit code (128+signal), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  void signal(int sig);
  void kill9();
  // SIGTERM and wait; SIGKILL after the timeout. Returns the exit code.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  std::string output() const;

 private:
  struct shared;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::shared_ptr<shared> shared_;
};

}  // namespace corral::test
