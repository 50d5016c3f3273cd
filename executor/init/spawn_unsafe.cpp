// fork/exec of the processes corral-init runs. Everything between fork() and execve() in the
// child is async-signal-safe: all memory it needs is prepared before fork().
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "executor/init/init_sys.hpp"

namespace corral::init {
namespace {

// The search path used when the given environment has no PATH.
constexpr const char* default_search_path =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// What the child reports through the close-on-exec error pipe when it cannot exec.
enum class failed_step : int32_t { session = 1, stdio = 2, workdir = 3, exec = 4 };
struct child_failure {
  failed_step step;
  int32_t error_number;
};

[[noreturn]] void child_fail(int report_fd, failed_step step, int error_number) {
  const child_failure failure{step, error_number};
  ssize_t ignored = ::write(report_fd, &failure, sizeof failure);
  (void)ignored;
  ::_exit(127);
}

// dup2 that also clears close-on-exec when from == to.
bool move_fd(int from, int to) {
  if (from == to) return ::fcntl(to, F_SETFD, 0) == 0;
  return ::dup2(from, to) == to;
}

bool set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags != -1 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != -1;
}

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
  // Everything the child needs, allocated before fork().
  std::vector<char*> argv;
  for (const auto& a : request.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : request.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::vector<std::string> candidates = executable_candidates(request);
  // For a file without a #! line (ENOEXEC), execvp runs it with /bin/sh; slot 1 is the file.
  std::vector<char*> sh_argv;
  sh_argv.push_back(const_cast<char*>("/bin/sh"));
  sh_argv.push_back(nullptr);
  for (std::size_t i = 1; i < request.argv.size(); ++i) sh_argv.push_back(argv[i]);
  sh_argv.push_back(nullptr);

  spawn_result result;
  unique_fd child_stdin, child_stdout, child_stderr, report_read, report_write;
  if (request.pipe_stdin) {
    if (!make_pipe(child_stdin, result.stdin_fd) || !set_nonblocking(result.stdin_fd.get()))
      return failed_call("stdin pipe");
  } else {
    child_stdin.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!child_stdin.valid()) {
      // No /dev/null in this root: an empty pipe whose write end is closed reads as EOF too.
      unique_fd unused_write_end;
      if (!make_pipe(child_stdin, unused_write_end))
        return failed_call("stdin");
    }
  }
  if (!make_pipe(result.stdout_fd, child_stdout) || !make_pipe(result.stderr_fd, child_stderr) ||
      !make_pipe(report_read, report_write) || !set_nonblocking(result.stdout_fd.get()) ||
      !set_nonblocking(result.stderr_fd.get())) {
    return failed_call("output pipes");
  }

  // Where close_range is missing the child closes by number up to the highest fd open now
  // (every fd init opens is close-on-exec as well; this is the second line of defence).
  const int highest = highest_open_fd();
  const long open_max = ::sysconf(_SC_OPEN_MAX);
  const int close_limit =
      highest >= 0 ? highest + 1 : (open_max > 0 && open_max < 65536 ? static_cast<int>(open_max) : 65536);

  const pid_t pid = ::fork();
  if (pid < 0) return failed_call("fork");

  if (pid == 0) {
    // The child. No allocation, no locks from here on.
    const int report = report_write.get();
    if (::setsid() < 0) child_fail(report, failed_step::session, errno);
    if (!move_fd(child_stdin.get(), STDIN_FILENO) || !move_fd(child_stdout.get(), STDOUT_FILENO) ||
        !move_fd(child_stderr.get(), STDERR_FILENO)) {
      child_fail(report, failed_step::stdio, errno);
    }
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &default_action, nullptr);
    }
    sigset_t empty;
    sigemptyset(&empty);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
    if (::chdir(request.workdir.c_str()) != 0) child_fail(report, failed_step::workdir, errno);
    // Every fd but 0..2 and the report pipe (close-on-exec) goes.
    bool closed = (report == 3 || ::close_range(3, static_cast<unsigned>(report) - 1, 0) == 0) &&
                  ::close_range(static_cast<unsigned>(report) + 1, ~0U, 0) == 0;
    if (!closed) {
      for (int fd = 3; fd < close_limit; ++fd) {
        if (fd != report) ::close(fd);
      }
    }

    bool saw_eacces = false;
    int last_error = ENOENT;
    for (const auto& candidate : candidates) {
      char* file = const_cast<char*>(candidate.c_str());
      ::execve(file, argv.data(), envp.data());
      int e = errno;
      if (e == ENOEXEC) {
        sh_argv[1] = file;
        ::execve(sh_argv[0], sh_argv.data(), envp.data());
        e = errno;
      }
      switch (e) {
        case EACCES:
          saw_eacces = true;
          [[fallthrough]];
        case ENOENT:
        case ENOTDIR:
        case ESTALE:
        case ENODEV:
        case ETIMEDOUT:
          last_error = e;
          continue;  // try the next directory of PATH
        default:
          child_fail(report, failed_step::exec, e);
      }
    }
    child_fail(report, failed_step::exec, saw_eacces ? EACCES : last_error);
  }

  // The parent: drop the child's ends, then learn whether exec succeeded (the report pipe
  // closes on exec, or carries the failure).
  child_stdin.reset();
  child_stdout.reset();
  child_stderr.reset();
  report_write.reset();
  child_failure failure{};
  std::size_t got = 0;
  while (got < sizeof failure) {
    const ssize_t n = ::read(report_read.get(), reinterpret_cast<char*>(&failure) + got,
                             sizeof failure - got);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  if (got == sizeof failure) {
    return failed(failure.error_number, describe(failure.step, failure.error_number, request));
  }
  result.pid = pid;
  return result;
}

}  // namespace corral::init
