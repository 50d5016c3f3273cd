// Raw syscalls of corral-init other than fork/exec (those are in spawn_unsafe.cpp).
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "executor/init/init_sys.hpp"

namespace corral::init {

// -- logging ------------------------------------------------------------------------------------

namespace {
unsigned long dropped_log_lines = 0;
}

void log_line(const char* format, ...) {
  char line[1024];
  int n = std::snprintf(line, sizeof line, "corral-init: ");
  va_list args;
  va_start(args, format);
  const int m = std::vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n) - 1, format, args);
  va_end(args);
  if (m > 0) n += m;
  if (n > static_cast<int>(sizeof line) - 2) n = static_cast<int>(sizeof line) - 2;
  line[n++] = '\n';
  // stderr may be a pipe nobody drains, and it is not ours to make non-blocking (its file
  // description may be shared): write only when poll says a line of this size fits (a pipe
  // reports POLLOUT with at least one page free, and line is smaller than a page).
  pollfd p{STDERR_FILENO, POLLOUT, 0};
  if (::poll(&p, 1, 0) != 1 || (p.revents & POLLOUT) == 0) {
    ++dropped_log_lines;
    return;
  }
  if (dropped_log_lines > 0) {
    char note[64];
    const int k = std::snprintf(note, sizeof note, "corral-init: (%lu log lines dropped)\n",
                                dropped_log_lines);
    dropped_log_lines = 0;
    if (::write(STDERR_FILENO, note, static_cast<std::size_t>(k)) < 0) return;
  }
  if (::write(STDERR_FILENO, line, static_cast<std::size_t>(n)) < 0) ++dropped_log_lines;
}

// -- set-up -------------------------------------------------------------------------------------

bool set_window_size(int fd, uint16_t rows, uint16_t cols) {
  struct winsize ws {};
  ws.ws_row = rows == 0 ? 24 : rows;
  ws.ws_col = cols == 0 ? 80 : cols;
  return ::ioctl(fd, TIOCSWINSZ, &ws) == 0;
}

int highest_open_fd() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  const int own = ::dirfd(dir);
  int highest = -1;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const int fd = static_cast<int>(::strtol(e->d_name, nullptr, 10));
    if (fd != own && fd > highest) highest = fd;
  }
  ::closedir(dir);
  return highest;
}

unique_fd prepare_init_process() {
  // Nothing inherited beyond stdio stays open.
  if (::close_range(3, ~0U, 0) != 0) {
    const int known_max = highest_open_fd();
    const long max_fd = known_max >= 0 ? known_max + 1 : ::sysconf(_SC_OPEN_MAX);
    for (long fd = 3; fd < max_fd && fd < 65536; ++fd) ::close(static_cast<int>(fd));
  }
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      const int null_fd = ::open("/dev/null", O_RDWR);  // lands on fd: the lowest free number
      if (null_fd != fd && null_fd >= 0) ::close(null_fd);
    }
  }

  // Processes inherit this working directory unless their Spawn names another.
  if (::chdir("/") != 0) log_line("chdir /: %s", std::strerror(errno));

  // Default dispositions (an ignored signal would survive exec into every child; an ignored
  // SIGCHLD would make the kernel reap children behind init's back), all of them blocked:
  // init outlives the termination signals, and a child needs only an empty mask to have them
  // back (spawn_unsafe.cpp).
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  for (int sig : {SIGQUIT, SIGUSR1, SIGUSR2}) ::sigaction(sig, &default_action, nullptr);
  sigset_t blocked;
  sigemptyset(&blocked);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD}) {
    ::sigaction(sig, &default_action, nullptr);
    sigaddset(&blocked, sig);
  }
  if (::sigprocmask(SIG_BLOCK, &blocked, nullptr) != 0) {
    log_line("sigprocmask: %s", std::strerror(errno));
  }
  sigset_t child_set;
  sigemptyset(&child_set);
  sigaddset(&child_set, SIGCHLD);
  unique_fd signal_fd(::signalfd(-1, &child_set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd.valid()) log_line("signalfd: %s", std::strerror(errno));

  for (int fd : {STDIN_FILENO, STDOUT_FILENO}) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags == -1 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
      log_line("cannot make fd %d non-blocking: %s", fd, std::strerror(errno));
    }
  }

  // Code in the sandbox runs as root: without CAP_SYS_PTRACE it cannot open /proc/1/fd/* (read
  // the executor's commands, write forged events) nor ptrace init once init is not dumpable.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    log_line("PR_SET_DUMPABLE: %s", std::strerror(errno));
  }
  if (::getpid() != 1 && ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    log_line("PR_SET_CHILD_SUBREAPER: %s", std::strerror(errno));
  }
  return signal_fd;
}

unique_fd open_null_input() { return unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

// -- fd I/O -------------------------------------------------------------------------------------

io_result read_some(int fd, uint8_t* buf, std::size_t capacity) {
  for (;;) {
    const ssize_t n = ::read(fd, buf, capacity);
    if (n > 0) return {io_status::ok, static_cast<std::size_t>(n), 0};
    if (n == 0) return {io_status::eof, 0, 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {io_status::would_block, 0, 0};
    return {io_status::error, 0, errno};
  }
}

io_result write_some(int fd, const uint8_t* data, std::size_t size) {
  for (;;) {
    const ssize_t n = ::write(fd, data, size);
    if (n >= 0) return {io_status::ok, static_cast<std::size_t>(n), 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {io_status::would_block, 0, 0};
    return {io_status::error, 0, errno};
  }
}

std::size_t readable_bytes(int fd) {
  int n = 0;
  if (::ioctl(fd, FIONREAD, &n) != 0 || n < 0) return 0;
  return static_cast<std::size_t>(n);
}

void drain_signal_fd(int fd) {
  signalfd_siginfo info[16];
  ssize_t n;
  do {
    n = ::read(fd, info, sizeof info);
  } while (n < 0 && errno == EINTR);
}

int64_t monotonic_ms() {
  timespec now {};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

bool wait_for_fds(std::vector<fd_watch>& watches, int timeout_ms, int& error_number) {
  std::vector<pollfd> fds(watches.size());
  for (std::size_t i = 0; i < watches.size(); ++i) {
    fds[i].fd = watches[i].fd;
    fds[i].events = static_cast<short>((watches[i].want_read ? POLLIN : 0) |
                                       (watches[i].want_write ? POLLOUT : 0));
    watches[i].ready = false;
    watches[i].hung_up = false;
  }
  const int n = ::poll(fds.data(), fds.size(), timeout_ms < 0 ? -1 : timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return true;
    error_number = errno;
    return false;
  }
  for (std::size_t i = 0; i < watches.size(); ++i) {
    watches[i].ready = (fds[i].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR | POLLNVAL)) != 0;
    watches[i].hung_up = (fds[i].revents & POLLHUP) != 0 && (fds[i].revents & POLLIN) == 0;
  }
  return true;
}

// -- processes ----------------------------------------------------------------------------------

bool reap_one(reaped_child& out) {
  int status = 0;
  pid_t pid;
  for (;;) {
    pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid > 0 && WIFSTOPPED(status)) {
      // A ptrace-stop (init never asks for job-control stops): not an exit.
      (void)::ptrace(PTRACE_DETACH, pid, nullptr,
                     reinterpret_cast<void*>(static_cast<intptr_t>(WSTOPSIG(status))));
      continue;
    }
    if (pid > 0 && WIFCONTINUED(status)) continue;
    break;
  }
  if (pid <= 0) return false;  // 0: children but none ended; -1 (ECHILD): no children
  out.pid = pid;
  if (WIFSIGNALED(status)) {
    out.signal = WTERMSIG(status);
    out.exit_code = 128 + out.signal;
  } else {
    out.signal = 0;
    out.exit_code = WEXITSTATUS(status);
  }
  return true;
}

void reap_group_now(pid_t pid) {
  if (pid <= 1) return;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // Its children were handed to init when it ended.
  for (;;) {
    const pid_t r = ::waitpid(-pid, &status, 0);
    if (r < 0 && errno != EINTR) return;  // ECHILD: none left
  }
}

int signal_group(pid_t pgid, int sig) {
  if (pgid <= 1) return ESRCH;  // never kill(-1) or kill(0)
  return ::kill(-pgid, sig) == 0 ? 0 : errno;
}

int signal_process(pid_t pid, int sig) {
  if (pid <= 1) return ESRCH;
  return ::kill(pid, sig) == 0 ? 0 : errno;
}

bool group_exists(pid_t pgid) {
  if (pgid <= 1) return false;
  return ::kill(-pgid, 0) == 0 || errno == EPERM;
}

pid_t own_pid() { return ::getpid(); }

}  // namespace corral::init
