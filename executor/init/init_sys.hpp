#pragma once
// The operating-system side of corral-init: every raw syscall init makes is behind one of these
// functions, implemented in sys_unsafe.cpp (fds, signals, reaping, logging) and spawn_unsafe.cpp
// (fork/exec). The event loop (init_event_loop.cpp) only calls these.
//
// All functions are for init's single thread. Every fd they create is close-on-exec.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "executor/unique_fd.hpp"

namespace corral::init {

using corral::unique_fd;

// -- logging ------------------------------------------------------------------------------------

// Writes one line "corral-init: ..." to stderr, for humans. Never blocks: when stderr is full
// the line is dropped (and the count of dropped lines is reported with the next line written).
void log_line(const char* format, ...) __attribute__((format(printf, 1, 2)));

// -- set-up -------------------------------------------------------------------------------------

// The highest open fd number of this process, read from /proc/self/fd; -1 when that cannot be
// read. Used where close_range(2) is missing (gVisor before 2023): looping close() up to
// RLIMIT_NOFILE there costs one trapped syscall per number (~2 s for 65536 under ptrace).
[[nodiscard]] int highest_open_fd();

// Sets the window size of the terminal whose master is fd (the foreground group gets SIGWINCH).
bool set_window_size(int fd, uint16_t rows, uint16_t cols);

// Makes this process fit to be PID 1 of a sandbox: closes every inherited fd above 2 (nothing
// of the host leaks in), opens /dev/null on any of 0..2 that is closed, moves to / (the working
// directory of processes started without one), blocks SIGTERM, SIGINT, SIGHUP and SIGPIPE (they
// stay pending and never act: init survives them, and as their disposition stays the default,
// a child gets them back by emptying its signal mask alone) and SIGCHLD, returns a non-blocking
// signalfd for SIGCHLD (-1 on failure, logged), makes stdin and stdout non-blocking, makes
// itself non-dumpable (its /proc/1/fd is then closed to processes without CAP_SYS_PTRACE), and
// when not PID 1 (tests) makes this process a child subreaper so that orphans are still
// reparented to it.
[[nodiscard]] unique_fd prepare_init_process();

// /dev/null opened read-only and close-on-exec: the stdin of processes started without one,
// opened once (-1 when this root has none; spawn_process then uses an empty pipe).
[[nodiscard]] unique_fd open_null_input();

// -- fd I/O -------------------------------------------------------------------------------------

enum class io_status : uint8_t { ok, would_block, eof, error };
struct io_result {
  io_status status = io_status::ok;
  std::size_t bytes = 0;  // valid when status == ok (> 0)
  int error_number = 0;   // valid when status == error
};

// One non-blocking read (EINTR retried).
[[nodiscard]] io_result read_some(int fd, uint8_t* buf, std::size_t capacity);
// One non-blocking write (EINTR retried). A broken pipe is status error with EPIPE.
[[nodiscard]] io_result write_some(int fd, const uint8_t* data, std::size_t size);
// Bytes that a read of the pipe fd could return right now (0 when unknown).
[[nodiscard]] std::size_t readable_bytes(int fd);
// Reads and discards what is queued on the SIGCHLD signalfd (one read: SIGCHLD does not queue
// twice, and one arriving later makes the fd readable again).
void drain_signal_fd(int fd);

// One fd to wait on.
struct fd_watch {
  int fd = -1;
  bool want_read = false;
  bool want_write = false;
  // Results: ready for what was asked, or hung up / in error (a read or write will tell which).
  bool ready = false;
  // The other end is closed and nothing is left to read (POLLHUP without POLLIN): for a pipe,
  // its end of file, known without a read.
  bool hung_up = false;
};
// Waits until at least one watch is ready, or timeout_ms passes (-1: no timeout), or a signal
// interrupts: returns true with none ready in the last two cases. Returns false with errno's
// value in error_number on a failure other than EINTR.
[[nodiscard]] bool wait_for_fds(std::vector<fd_watch>& watches, int timeout_ms, int& error_number);

// CLOCK_MONOTONIC in milliseconds (vDSO: no system call in gVisor).
[[nodiscard]] int64_t monotonic_ms();

// -- processes ----------------------------------------------------------------------------------

struct reaped_child {
  pid_t pid = 0;
  int exit_code = 0;  // exit status, or 128 + signal when killed
  int signal = 0;     // killing signal, 0 when it exited
};
// Reaps one zombie child, whoever it is. Returns false when none is waiting. A child that
// stopped for its tracer (a child that asked PTRACE_TRACEME makes init its tracer) is not an
// end: it is detached, its stop signal handed back to it, and the next child is looked at.
[[nodiscard]] bool reap_one(reaped_child& out);

// kill(-pgid, sig): the whole process group. Returns 0 or the errno.
int signal_group(pid_t pgid, int sig);
// Blocks until the child `pid` has ended and is reaped, then reaps the children of init in
// process group `pid` until none is left (for processes that were sent SIGKILL: it cannot take
// long).
void reap_group_now(pid_t pid);
// kill(pid, sig). Returns 0 or the errno.
int signal_process(pid_t pid, int sig);
// True while the process group has at least one member (zombies included).
[[nodiscard]] bool group_exists(pid_t pgid);
[[nodiscard]] pid_t own_pid();

// What to start (already validated by the caller).
struct spawn_request {
  std::vector<std::string> argv;  // non-empty, no NUL bytes
  std::vector<std::string> env;   // "KEY=VALUE" each: the whole environment
  std::string workdir;            // absolute; "/" is init's own (no chdir)
  bool pipe_stdin = false;        // false: stdin is null_input
  int null_input = -1;            // from open_null_input(); -1: an empty pipe instead
  bool pty = false;               // stdin/stdout/stderr on a new pseudo-terminal (its controlling tty)
  uint16_t rows = 24, cols = 80;  // its size
  // The cgroup.procs of the process's exec cgroup (init_isolation.hpp): the child moves itself
  // there before anything else, so everything it starts stays in it. -1: none (not tracked).
  int cgroup_procs_fd = -1;
};

struct spawn_result {
  int error_number = 0;   // 0: started
  std::string message;    // why it did not start
  pid_t pid = 0;          // also its process group and session id (setsid)
  unique_fd stdin_fd;     // write end, non-blocking; empty unless pipe_stdin
  unique_fd stdout_fd;    // read end, non-blocking
  unique_fd stderr_fd;    // read end, non-blocking
};

// Starts (vfork + exec) a process in its own session and process group with exactly the given
// environment, default signal dispositions, an empty signal mask and no fd but 0, 1 and 2.
// The executable is searched in the PATH of the given env (a default path when it has none).
// Returns only once the exec succeeded or failed; on failure error_number/message say why
// (a child that got as far as forking has exited with status 127 and is reaped like any other).
[[nodiscard]] spawn_result spawn_process(const spawn_request& request);

}  // namespace corral::init
