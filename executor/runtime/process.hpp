#pragma once
// Running host commands (runsc) as child processes: pidfd from birth (clone3 CLONE_PIDFD), a
// deadline, captured output, and explicit stdio. Implemented in process_unsafe.cpp.
//
// The child gets exactly fds 0, 1, 2 (every other fd is closed on exec, whatever its
// FD_CLOEXEC flag), an empty signal mask, default signal dispositions, a new session, and only
// the environment given here: nothing of the executor's environment leaks (docs/promises.md P6).
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace corral::gvisor_detail {

struct command_spec {
  std::vector<std::string> argv;  // argv[0] is the absolute path executed
  std::vector<std::string> env;   // the whole environment, "K=V"
  // Fds given to the child as its 0, 1, 2. -1: stdin is /dev/null; stdout/stderr are captured
  // through pipes into command_result::out / err (up to max_capture_bytes each).
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::chrono::milliseconds timeout{30000};
  std::size_t max_capture_bytes = 1024 * 1024;
};

struct command_result {
  bool started = false;      // the program was executed (false: error says why)
  std::string error;         // spawn failure, timeout
  bool timed_out = false;    // killed with SIGKILL at the deadline
  // Exit status; nullopt when unknown (another reaper in this process took it).
  std::optional<int> exit_code;
  int term_signal = 0;       // killing signal when it died of one
  std::string out;
  std::string err;

  [[nodiscard]] bool ok() const { return started && exit_code && *exit_code == 0; }
  // A one-line description for error messages: "exit 1: <stderr excerpt>".
  [[nodiscard]] std::string describe(std::size_t max_bytes) const;
};

// Runs the command to completion (or its deadline). Thread-safe.
[[nodiscard]] command_result run_command(const command_spec& spec);

// pidfd_open(2) on a process that is not our child (the runsc sandbox process). -1 on error.
[[nodiscard]] int open_pidfd(int pid);

// SIGKILLs these processes (through pidfds, so a recycled pid is never hit after the pidfd is
// open) and waits until they are gone or the deadline passes. Returns how many are still alive.
[[nodiscard]] std::size_t kill_and_wait(const std::vector<int>& pids,
                                        std::chrono::steady_clock::time_point deadline);

// True when the pid is still alive (not a zombie, not gone), judged through its pidfd.
[[nodiscard]] bool pidfd_alive(int pidfd);

}  // namespace corral::gvisor_detail
