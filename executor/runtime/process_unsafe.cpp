// Raw process plumbing: clone3 with a pidfd, fd passing to the child, waitid on pidfds, and the
// subreaper thread. Everything between clone3 and execve in the child is async-signal-safe.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "executor/runtime/orphan_reaper.hpp"
#include "executor/runtime/process.hpp"
#include "executor/unique_fd.hpp"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace corral {
namespace {

// glibc 2.36's <sys/pidfd.h> lacks C linkage for C++: use the system calls directly.
int sys_pidfd_open(int pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0U)); }
int sys_pidfd_kill(int pidfd) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0U));
}

// Children whose exit status their spawner collects itself; the reaper leaves them alone.
struct child_registry {
  std::mutex mu;
  std::condition_variable changed;
  std::set<int> pids;
  uint64_t spawns = 0;
};

child_registry& registry() {
  static child_registry* r = new child_registry;  // never destroyed: used by a detached thread
  return *r;
}

bool is_zombie_child(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto close_paren = line.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= line.size()) return false;
  return line[close_paren + 2] == 'Z';
}

// How long the reaper waits, when this process has no child at all, before looking again
// (children spawned by code that does not use the registry do not wake it).
constexpr auto reaper_idle_recheck = std::chrono::seconds(1);

void reaper_loop() {
  auto& reg = registry();
  uint64_t seen_spawns = 0;
  for (;;) {
    siginfo_t si{};
    if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) < 0) {
      if (errno == EINTR) continue;
      std::unique_lock<std::mutex> lock(reg.mu);
      reg.changed.wait_for(lock, reaper_idle_recheck, [&] { return reg.spawns != seen_spawns; });
      seen_spawns = reg.spawns;
      continue;
    }
    const int pid = si.si_pid;
    if (pid <= 0) continue;
    {
      std::unique_lock<std::mutex> lock(reg.mu);
      if (reg.pids.count(pid) != 0) {
        lock.unlock();
        // Its owner reaps it; meanwhile take every other zombie, then wait for the owner.
        reap_unregistered_children();
        lock.lock();
        reg.changed.wait(lock, [&] { return reg.pids.count(pid) == 0; });
        continue;
      }
    }
    // A zombie's pid cannot be reused before it is reaped, so it cannot become registered now.
    int status = 0;
    (void)waitpid(pid, &status, WNOHANG);
  }
}

}  // namespace

std::string start_orphan_reaper() {
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
      error = std::string("prctl(PR_SET_CHILD_SUBREAPER): ") + std::strerror(errno);
      return;
    }
    std::thread(reaper_loop).detach();
  });
  return error;
}

void reap_unregistered_children() {
  auto& reg = registry();
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) return;
  std::set<int> children;
  while (dirent* t = readdir(tasks)) {
    if (t->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + t->d_name + "/children");
    int pid = 0;
    while (in >> pid) children.insert(pid);
  }
  closedir(tasks);
  for (int pid : children) {
    if (!is_zombie_child(pid)) continue;
    std::lock_guard<std::mutex> lock(reg.mu);
    if (reg.pids.count(pid) != 0) continue;
    int status = 0;
    (void)waitpid(pid, &status, WNOHANG);
  }
}

namespace gvisor_detail {
namespace {

struct clone3_args {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
};

// Runs in the child between clone3 and execve: async-signal-safe calls only, no allocation.
[[noreturn]] void exec_child(const int (&fds)[3], int error_pipe, const char* path,
                             char* const* argv, char* const* envp) {
  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) (void)sigaction(sig, &dfl, nullptr);
  (void)setsid();
  for (int i = 0; i < 3; ++i) {
    if (dup2(fds[i], i) < 0) {
      const int e = errno;
      (void)!write(error_pipe, &e, sizeof e);
      _exit(127);
    }
  }
  // Whatever the executor has open (sockets, RocksDB files, other sandboxes' FIFOs), none of
  // it reaches runsc or, through it, a sandbox.
  (void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  execve(path, argv, envp);
  const int e = errno;
  (void)!write(error_pipe, &e, sizeof e);
  _exit(127);
}

void append_capped(std::string& out, const char* data, std::size_t n, std::size_t cap) {
  if (out.size() >= cap) return;
  out.append(data, std::min(n, cap - out.size()));
}

// Reads what is available; returns false at EOF or error (the fd is then closed).
bool drain(unique_fd& fd, std::string& out, std::size_t cap) {
  char buf[16384];
  for (;;) {
    const ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      append_capped(out, buf, static_cast<std::size_t>(n), cap);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    fd.reset();
    return false;
  }
}

}  // namespace

std::string command_result::describe(std::size_t max_bytes) const {
  std::string s;
  if (!started) return error.empty() ? "not started" : error;
  if (timed_out) s = "timed out";
  else if (term_signal != 0) s = "killed by signal " + std::to_string(term_signal);
  else if (exit_code) s = "exit " + std::to_string(*exit_code);
  else s = "exit status unknown";
  std::string text = err.empty() ? out : err;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  if (!text.empty()) s += ": " + text;
  return s;
}

command_result run_command(const command_spec& spec) {
  command_result result;
  if (spec.argv.empty()) {
    result.error = "empty argv";
    return result;
  }
  // Everything the child needs is prepared here, before clone3.
  std::vector<std::string> argv_s = spec.argv, env_s = spec.env;
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  unique_fd out_r, out_w, err_r, err_w, null_in;
  auto make_pipe = [&](unique_fd& r, unique_fd& w) {
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return false;
    r.reset(p[0]);
    w.reset(p[1]);
    return true;
  };
  if ((spec.stdout_fd < 0 && !make_pipe(out_r, out_w)) ||
      (spec.stderr_fd < 0 && !make_pipe(err_r, err_w))) {
    result.error = std::string("pipe2: ") + std::strerror(errno);
    return result;
  }
  if (spec.stdin_fd < 0) {
    null_in.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null_in) {
      result.error = std::string("open /dev/null: ") + std::strerror(errno);
      return result;
    }
  }
  // Distinct copies >= 3 so that the child's dup2 to 0..2 never clobbers a source.
  const int sources[3] = {spec.stdin_fd >= 0 ? spec.stdin_fd : null_in.get(),
                          spec.stdout_fd >= 0 ? spec.stdout_fd : out_w.get(),
                          spec.stderr_fd >= 0 ? spec.stderr_fd : err_w.get()};
  unique_fd copies[3];
  int child_fds[3];
  for (int i = 0; i < 3; ++i) {
    copies[i].reset(fcntl(sources[i], F_DUPFD_CLOEXEC, 3));
    if (!copies[i]) {
      result.error = std::string("fcntl(F_DUPFD_CLOEXEC): ") + std::strerror(errno);
      return result;
    }
    child_fds[i] = copies[i].get();
  }
  unique_fd exec_err_r, exec_err_w;
  {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      result.error = std::string("pipe2: ") + std::strerror(errno);
      return result;
    }
    exec_err_r.reset(p[0]);
    exec_err_w.reset(p[1]);
  }

  auto& reg = registry();
  int pidfd_raw = -1;
  long pid = -1;
  {
    std::lock_guard<std::mutex> lock(reg.mu);
    clone3_args args{};
    args.flags = CLONE_PIDFD | CLONE_VFORK;
    args.pidfd = reinterpret_cast<uint64_t>(&pidfd_raw);
    args.exit_signal = SIGCHLD;
    pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) exec_child(child_fds, exec_err_w.get(), argv_s[0].c_str(), argv.data(),
                             envp.data());
    if (pid > 0) {
      reg.pids.insert(static_cast<int>(pid));
      ++reg.spawns;
    }
  }
  reg.changed.notify_all();
  if (pid < 0) {
    result.error = std::string("clone3: ") + std::strerror(errno);
    return result;
  }
  unique_fd pidfd(pidfd_raw);
  for (auto& c : copies) c.reset();
  out_w.reset();
  err_w.reset();
  exec_err_w.reset();

  int exec_errno = 0;
  const ssize_t got = read(exec_err_r.get(), &exec_errno, sizeof exec_errno);
  result.started = got != static_cast<ssize_t>(sizeof exec_errno);
  if (!result.started) {
    result.error = "exec " + argv_s[0] + ": " + std::strerror(exec_errno);
  }

  const auto deadline = std::chrono::steady_clock::now() + spec.timeout;
  bool exited = false;
  while (!exited) {
    pollfd pfds[3];
    nfds_t n = 0;
    pfds[n++] = {pidfd.get(), POLLIN, 0};
    if (out_r) pfds[n++] = {out_r.get(), POLLIN, 0};
    if (err_r) pfds[n++] = {err_r.get(), POLLIN, 0};
    const auto now = std::chrono::steady_clock::now();
    int wait_ms = -1;
    if (!result.timed_out) {
      wait_ms = now >= deadline ? 0
                                : static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       deadline - now)
                                                       .count()) +
                                      1;
    }
    const int r = poll(pfds, n, wait_ms);
    if (r < 0 && errno != EINTR) break;
    if (r == 0 && !result.timed_out) {
      result.timed_out = true;
      result.error = "timed out after " + std::to_string(spec.timeout.count()) + " ms";
      (void)sys_pidfd_kill(pidfd.get());
      continue;
    }
    if (out_r) drain(out_r, result.out, spec.max_capture_bytes);
    if (err_r) drain(err_r, result.err, spec.max_capture_bytes);
    if ((pfds[0].revents & (POLLIN | POLLHUP)) != 0) exited = true;
  }
  // Output written before the exit is in the pipes already; a grandchild that kept a pipe open
  // is not waited for.
  if (out_r) drain(out_r, result.out, spec.max_capture_bytes);
  if (err_r) drain(err_r, result.err, spec.max_capture_bytes);

  siginfo_t si{};
  const int w = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &si,
                       WEXITED);
  if (w == 0) {
    if (si.si_code == CLD_EXITED) {
      result.exit_code = si.si_status;
    } else {
      result.term_signal = si.si_status;
      result.exit_code = 128 + si.si_status;
    }
  }
  {
    std::lock_guard<std::mutex> lock(reg.mu);
    reg.pids.erase(static_cast<int>(pid));
  }
  reg.changed.notify_all();
  return result;
}

int open_pidfd(int pid) {
  if (pid <= 0) return -1;
  return sys_pidfd_open(pid);
}

std::size_t kill_and_wait(const std::vector<int>& pids,
                          std::chrono::steady_clock::time_point deadline) {
  std::vector<unique_fd> fds;
  for (int pid : pids) {
    unique_fd fd(open_pidfd(pid));
    if (!fd) continue;  // already gone
    (void)sys_pidfd_kill(fd.get());
    fds.push_back(std::move(fd));
  }
  for (;;) {
    std::vector<pollfd> live;
    for (const auto& fd : fds)
      if (pidfd_alive(fd.get())) live.push_back({fd.get(), POLLIN, 0});
    if (live.empty()) return 0;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return live.size();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    (void)poll(live.data(), live.size(), static_cast<int>(ms) + 1);
  }
}

bool pidfd_alive(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  const int r = poll(&p, 1, 0);
  return r == 0;
}

}  // namespace gvisor_detail
}  // namespace corral
