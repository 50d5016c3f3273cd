// Starting the processes corral-init runs (posix_spawn: a vfork-style clone, then exec).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
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
enum class failed_step : int32_t { session = 1, stdio = 2, workdir = 3, exec = 4 };

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
  // posix_spawn: glibc starts the child with clone(CLONE_VM | CLONE_VFORK) on a stack of its
  // own, so no page of init is copied or faulted in. Under gVisor's ptrace platform a fork()
  // child paid ~10 ms of copy-on-write faults before its exec; this path costs what a bare
  // fork+exec does. Every fd init holds is close-on-exec, so the child gets 0, 1 and 2 only.
  std::vector<char*> argv;
  for (const auto& a : request.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : request.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  // posix_spawn reports a failed chdir and a failed exec alike (an errno): check the workdir
  // first so that the message says which.
  struct stat wd {};
  if (::stat(request.workdir.c_str(), &wd) != 0) {
    return failed(errno, describe(failed_step::workdir, errno, request));
  }
  if (!S_ISDIR(wd.st_mode)) return failed(ENOTDIR, describe(failed_step::workdir, ENOTDIR, request));

  spawn_result result;
  unique_fd child_stdin, child_stdout, child_stderr;
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
      !set_nonblocking(result.stdout_fd.get()) || !set_nonblocking(result.stderr_fd.get())) {
    return failed_call("output pipes");
  }

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  if (posix_spawn_file_actions_init(&actions) != 0) return failed(ENOMEM, "spawn: out of memory");
  if (posix_spawnattr_init(&attr) != 0) {
    posix_spawn_file_actions_destroy(&actions);
    return failed(ENOMEM, "spawn: out of memory");
  }
  // dup2 clears close-on-exec on the target.
  posix_spawn_file_actions_adddup2(&actions, child_stdin.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, child_stdout.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, child_stderr.get(), STDERR_FILENO);
  posix_spawn_file_actions_addchdir_np(&actions, request.workdir.c_str());
  // Its own session (and process group: the exec's tree), default dispositions for what init
  // ignores (handled signals reset on exec by themselves), and an empty mask.
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2})
    sigaddset(&defaults, sig);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETSIGMASK);

  // execvp semantics, resolved here rather than by failed execs: each failed posix_spawn is a
  // whole clone. The first candidate of PATH that exists is run; one that exists but may not
  // be executed is remembered (EACCES) and the search goes on; a file without a #! line is run
  // with /bin/sh.
  bool saw_eacces = false;
  int last_error = ENOENT;
  int error = ENOENT;
  pid_t pid = -1;
  for (const auto& candidate : executable_candidates(request)) {
    const std::string probe =
        candidate.front() == '/' ? candidate : request.workdir + "/" + candidate;
    if (::faccessat(AT_FDCWD, probe.c_str(), X_OK, AT_EACCESS) != 0) {
      const int e = errno;
      if (e == EACCES) saw_eacces = true;
      if (e == EACCES || e == ENOENT || e == ENOTDIR || e == ESTALE || e == ENODEV ||
          e == ETIMEDOUT) {
        last_error = e;
        continue;
      }
      error = e;
      break;
    }
    error = posix_spawn(&pid, probe.c_str(), &actions, &attr, argv.data(), envp.data());
    if (error == ENOEXEC) {
      std::vector<char*> sh_argv = {const_cast<char*>("/bin/sh"), const_cast<char*>(probe.c_str())};
      for (std::size_t i = 1; i + 1 < argv.size(); ++i) sh_argv.push_back(argv[i]);
      sh_argv.push_back(nullptr);
      error = posix_spawn(&pid, "/bin/sh", &actions, &attr, sh_argv.data(), envp.data());
    }
    if (error == 0) break;
    if (error == EACCES) saw_eacces = true;
    if (error == EACCES || error == ENOENT || error == ENOTDIR) {
      last_error = error;
      continue;
    }
    break;
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (error != 0) {
    const int e = (error == ENOENT || error == EACCES || error == ENOTDIR || error == ESTALE ||
                   error == ENODEV || error == ETIMEDOUT)
                      ? (saw_eacces ? EACCES : last_error)
                      : error;
    return failed(e, describe(failed_step::exec, e, request));
  }
  result.pid = pid;
  return result;
}

}  // namespace corral::init
