// Starting the processes corral-init runs: vfork, then exec (see start_child).
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "executor/init/init_sys.hpp"

namespace corral::init {
namespace {

// The search path used when the given environment has no PATH.
constexpr const char* default_search_path =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// What could not be done, for the message of a failed spawn.
enum class failed_step : int32_t { session = 1, stdio = 2, workdir = 3, exec = 4, cgroup = 5 };

// What the child reports, in the parent's memory (vfork shares it), when it cannot exec.
struct child_failure {
  failed_step step;
  int error_number;
};

// Everything the child needs, prepared by the parent: the child allocates nothing.
struct child_plan {
  const char* path;
  char* const* argv;
  char* const* sh_argv;  // {"/bin/sh", path, argv[1..]} for a file without a #! line
  char* const* envp;
  const char* workdir;   // null: init's own (/)
  int stdin_fd, stdout_fd, stderr_fd;
  bool controlling_tty;  // stdin is a pty slave that becomes the session's controlling terminal
  int cgroup_procs_fd;   // -1: none
};

[[noreturn]] void child_fail(volatile child_failure* out, failed_step step, int error_number) {
  out->step = step;
  out->error_number = error_number;
  ::_exit(127);
}

// dup2 that also clears close-on-exec when from == to.
bool move_fd(int from, int to) {
  if (from == to) return ::fcntl(to, F_SETFD, 0) == 0;
  return ::dup2(from, to) == to;
}

// The child between vfork and exec: it shares init's memory and stack frame above this call,
// so it only makes system calls, writes its failure into *out, and never returns. Every system
// call here is one trap into gVisor's sentry per spawn (~40 us each on the ptrace platform):
// init leaves nothing to undo but its signal mask (its dispositions are the defaults, see
// prepare_init_process) and its working directory when another is asked for.
[[noreturn]] void exec_child(const child_plan& plan, volatile child_failure* out) {
  // First into the exec's cgroup: whatever it starts from here on is tracked.
  if (plan.cgroup_procs_fd >= 0 && ::write(plan.cgroup_procs_fd, "0", 1) != 1)
    child_fail(out, failed_step::cgroup, errno);
  if (::setsid() < 0) child_fail(out, failed_step::session, errno);
  if (plan.controlling_tty && ::ioctl(plan.stdin_fd, TIOCSCTTY, 0) != 0)
    child_fail(out, failed_step::stdio, errno);
  if (!move_fd(plan.stdin_fd, STDIN_FILENO) || !move_fd(plan.stdout_fd, STDOUT_FILENO) ||
      !move_fd(plan.stderr_fd, STDERR_FILENO)) {
    child_fail(out, failed_step::stdio, errno);
  }
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);
  if (plan.workdir != nullptr && ::chdir(plan.workdir) != 0)
    child_fail(out, failed_step::workdir, errno);
  ::execve(plan.path, plan.argv, plan.envp);
  int e = errno;
  if (e == ENOEXEC) {
    ::execve(plan.sh_argv[0], plan.sh_argv, plan.envp);
    e = errno;
  }
  child_fail(out, failed_step::exec, e);
}

// vfork: the child shares init's memory until it execs, so nothing is copied or faulted in
// (measured in gVisor's ptrace platform: 5.1 ms per spawn of `true` against 6.7 ms for fork and
// 8.0 ms for posix_spawn). Returns when the child has exec'd or exited.
pid_t start_child(const child_plan& plan, volatile child_failure* out) {
  const pid_t pid = ::vfork();
  if (pid == 0) exec_child(plan, out);
  return pid;
}

bool set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags != -1 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != -1;
}

// set_nonblocking for a new pipe end, whose only status flag is its access mode (which F_SETFL
// ignores): one system call instead of two.
bool set_new_pipe_nonblocking(int fd) { return ::fcntl(fd, F_SETFL, O_NONBLOCK) != -1; }

bool make_pipe(unique_fd& read_end, unique_fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return true;
}

// Where execve is tried, in order (execvp semantics, PATH from the given environment).
std::vector<std::string> executable_candidates(const spawn_request& request) {
  const std::string& name = request.argv.front();
  if (name.find('/') != std::string::npos) return {name};
  if (name.empty()) return {};
  const char* path = default_search_path;
  for (const auto& kv : request.env) {
    if (kv.compare(0, 5, "PATH=") == 0) path = kv.c_str() + 5;  // the first one, as getenv
    if (path != default_search_path) break;
  }
  std::vector<std::string> out;
  const char* p = path;
  for (;;) {
    const char* colon = std::strchr(p, ':');
    std::string dir(p, colon == nullptr ? std::strlen(p) : static_cast<std::size_t>(colon - p));
    if (dir.empty()) dir = ".";  // an empty PATH entry is the working directory
    out.push_back(dir + "/" + name);
    if (colon == nullptr) break;
    p = colon + 1;
  }
  return out;
}

std::string describe(failed_step step, int error_number, const spawn_request& request) {
  const std::string& name = request.argv.front();
  switch (step) {
    case failed_step::exec:
      if (error_number == ENOENT) return "executable not found: " + name;
      if (error_number == EACCES) return "permission denied: " + name;
      return "cannot execute " + name + ": " + std::strerror(error_number);
    case failed_step::workdir:
      return "cannot enter workdir " + request.workdir + ": " + std::strerror(error_number);
    case failed_step::session:
      return std::string("setsid: ") + std::strerror(error_number);
    case failed_step::cgroup:
      return std::string("joining the exec's cgroup: ") + std::strerror(error_number);
    case failed_step::stdio:
      break;
  }
  return std::string("cannot set up stdio: ") + std::strerror(error_number);
}

spawn_result failed(int error_number, std::string message) {
  spawn_result r;
  r.error_number = error_number;
  r.message = std::move(message);
  return r;
}

// A failure of the call that just set errno, described as "what: strerror".
spawn_result failed_call(const char* what) {
  const int e = errno;
  return failed(e, std::string(what) + ": " + std::strerror(e));
}

}  // namespace

spawn_result spawn_process(const spawn_request& request) {
  // Every fd init holds is close-on-exec, so the child gets 0, 1 and 2 only.
  std::vector<char*> argv;
  for (const auto& a : request.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : request.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  // A missing workdir is refused before anything is started. "/" is init's own.
  const bool own_workdir = request.workdir == "/";
  if (!own_workdir) {
    struct stat wd {};
    if (::stat(request.workdir.c_str(), &wd) != 0) {
      return failed(errno, describe(failed_step::workdir, errno, request));
    }
    if (!S_ISDIR(wd.st_mode))
      return failed(ENOTDIR, describe(failed_step::workdir, ENOTDIR, request));
  }

  spawn_result result;
  unique_fd child_stdin, child_stdout, child_stderr;
  if (request.pty) {
    // A new pseudo-terminal: the child's stdin, stdout and stderr are its slave; init reads and
    // writes the master (stdout_fd, and stdin_fd a second fd of it), stderr is merged.
    unique_fd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master.valid() || ::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0)
      return failed_call("pty");
    char name[128];
    if (::ptsname_r(master.get(), name, sizeof name) != 0) return failed_call("ptsname");
    unique_fd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave.valid()) return failed_call("pty slave");
    if (!set_window_size(master.get(), request.rows, request.cols)) return failed_call("pty size");
    result.stdin_fd.reset(::fcntl(master.get(), F_DUPFD_CLOEXEC, 3));
    if (!result.stdin_fd.valid() || !set_nonblocking(master.get())) return failed_call("pty");
    if (!request.pipe_stdin) result.stdin_fd.reset();  // nobody writes it: the tty stays open
    child_stdout.reset(::fcntl(slave.get(), F_DUPFD_CLOEXEC, 3));
    child_stderr.reset(::fcntl(slave.get(), F_DUPFD_CLOEXEC, 3));
    if (!child_stdout.valid() || !child_stderr.valid()) return failed_call("pty");
    child_stdin = std::move(slave);
    result.stdout_fd = std::move(master);
  } else if (request.pipe_stdin) {
    if (!make_pipe(child_stdin, result.stdin_fd) ||
        !set_new_pipe_nonblocking(result.stdin_fd.get()))
      return failed_call("stdin pipe");
  } else if (request.null_input < 0) {
    // No /dev/null in this root: an empty pipe whose write end is closed reads as EOF too.
    unique_fd unused_write_end;
    if (!make_pipe(child_stdin, unused_write_end)) return failed_call("stdin");
  }
  // (else the child's stdin is init's /dev/null, dup2'ed in the child and never closed here.)
  const int stdin_for_child = child_stdin.valid() ? child_stdin.get() : request.null_input;
  if (!request.pty &&
      (!make_pipe(result.stdout_fd, child_stdout) || !make_pipe(result.stderr_fd, child_stderr) ||
       !set_new_pipe_nonblocking(result.stdout_fd.get()) ||
       !set_new_pipe_nonblocking(result.stderr_fd.get()))) {
    return failed_call("output pipes");
  }

  // execvp semantics, resolved here rather than by failed execs in the child: the first
  // candidate of PATH that exists and may be executed is run; one that exists but may not be
  // executed is remembered (EACCES) and the search goes on.
  bool saw_eacces = false;
  int last_error = ENOENT;
  std::string chosen;
  for (const auto& candidate : executable_candidates(request)) {
    std::string probe = candidate.front() == '/' ? candidate : request.workdir + "/" + candidate;
    if (::faccessat(AT_FDCWD, probe.c_str(), X_OK, AT_EACCESS) == 0) {
      chosen = std::move(probe);
      break;
    }
    const int e = errno;
    if (e == EACCES) saw_eacces = true;
    if (e != EACCES && e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV && e != ETIMEDOUT)
      return failed(e, describe(failed_step::exec, e, request));
    last_error = e;
  }
  if (chosen.empty()) {
    const int e = saw_eacces ? EACCES : last_error;
    return failed(e, describe(failed_step::exec, e, request));
  }
  // A file without a #! line runs with /bin/sh, as execvp does.
  std::vector<char*> sh_argv = {const_cast<char*>("/bin/sh"), const_cast<char*>(chosen.c_str())};
  for (std::size_t i = 1; i + 1 < argv.size(); ++i) sh_argv.push_back(argv[i]);
  sh_argv.push_back(nullptr);

  const child_plan plan{chosen.c_str(), argv.data(), sh_argv.data(), envp.data(),
                        own_workdir ? nullptr : request.workdir.c_str(), stdin_for_child,
                        child_stdout.get(), child_stderr.get(), request.pty,
                        request.cgroup_procs_fd};
  volatile child_failure failure{failed_step::exec, 0};
  const pid_t pid = start_child(plan, &failure);
  if (pid < 0) return failed_call("vfork");
  if (failure.error_number != 0) {
    // The child has exited (status 127); it is reaped like any other child.
    return failed(failure.error_number, describe(failure.step, failure.error_number, request));
  }
  result.pid = pid;
  return result;
}

}  // namespace corral::init
