#pragma once
// Test support for init_test: the real corral-init binary run as a child process of the test,
// with pipes on its stdin, stdout and stderr (init_harness_unsafe.cpp). Waits take deadlines;
// nothing sleeps.
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace corral::init_test {

using bytes = std::vector<uint8_t>;
using test_clock = std::chrono::steady_clock;

class init_process {
 public:
  // Starts CORRAL_BIN_DIR/corral-init with args and an empty environment.
  explicit init_process(const std::vector<std::string>& args = {});
  // SIGKILLs and reaps init (its children are not touched: tests end their own).
  ~init_process();
  init_process(const init_process&) = delete;
  init_process& operator=(const init_process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  // Writes all of data to init's stdin. False on error or when the deadline passes first.
  [[nodiscard]] bool write(const bytes& data, test_clock::time_point deadline);
  // Closes the test's end of init's stdin (init sees EOF).
  void close_stdin();
  // Closes the test's end of init's stdout (init's writes fail with EPIPE).
  void close_stdout();
  // Returns up to max bytes of init's stdout, waiting until some arrive; empty at the deadline
  // or at EOF. init's stderr is collected meanwhile.
  [[nodiscard]] bytes read_stdout(std::size_t max, test_clock::time_point deadline);
  // Waits until init's stderr log contains text, collecting it; false at the deadline.
  [[nodiscard]] bool wait_for_log(const std::string& text, test_clock::time_point deadline);
  // Everything init wrote on stderr so far.
  [[nodiscard]] const std::string& log() { collect_log(); return log_; }
  // kill(init, sig). True when delivered.
  [[nodiscard]] bool send_signal(int sig) const;
  // True while init has not exited (it is not reaped here).
  [[nodiscard]] bool running() const;
  // Waits for init to exit; its exit status (as from waitpid), or -1 at the deadline.
  [[nodiscard]] int wait_exit(test_clock::time_point deadline);

 private:
  void collect_log();
  pid_t pid_ = -1;
  bool reaped_ = false;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  std::string log_;
};

// Waits until process pid (not a child of the test) has exited. True when it has (or never
// existed), false at the deadline.
[[nodiscard]] bool wait_process_exit(pid_t pid, test_clock::time_point deadline);
// True when /proc shows pid as present and not a zombie.
[[nodiscard]] bool process_alive(pid_t pid);
// True when /proc has no entry for pid (it was reaped).
[[nodiscard]] bool process_reaped(pid_t pid);
// Size of a file, or -1.
[[nodiscard]] long long file_size(const std::string& path);
[[nodiscard]] bytes read_file(const std::string& path);
// Creates path with content and mode. True on success.
[[nodiscard]] bool write_file(const std::string& path, const std::string& content, unsigned mode);
// A fresh empty directory under TMPDIR (or /tmp).
[[nodiscard]] std::string make_temp_dir();

}  // namespace corral::init_test
