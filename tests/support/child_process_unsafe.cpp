// fork/exec plumbing for test child processes (pipes, fd hygiene, death signal).
#include "tests/support/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

extern char** environ;

namespace corral::test {

namespace {

// Waits up to `timeout` for pid to exit, on a pidfd (an event, not a poll loop), and reaps it.
// Returns the decoded status, or -1 when it is still running at the deadline.
int wait_child(pid_t pid, std::chrono::milliseconds timeout);

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

// Forks argv with the given pipes as stdin/stdout/stderr (-1 = /dev/null).
pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
            int in_fd, int out_fd, int err_fd) {
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto k = kv.substr(0, kv.find('='));
    if (env.count(k) == 0) envs.push_back(kv);
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  int devnull = ::open("/dev/null", O_RDWR);
  ::dup2(in_fd >= 0 ? in_fd : devnull, 0);
  ::dup2(out_fd >= 0 ? out_fd : devnull, 1);
  ::dup2(err_fd >= 0 ? err_fd : devnull, 2);
  for (int fd = 3; fd < 1024; ++fd) ::close(fd);
  ::execvpe(cargv[0], cargv.data(), cenv.data());
  ::_exit(127);
}

int wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  const int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pfd >= 0) {
    pollfd p{pfd, POLLIN, 0};
    int r;
    do {
      r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (r < 0 && errno == EINTR);
    ::close(pfd);
    if (r == 0) return -1;
  }
  int st = 0;
  pid_t got;
  do {
    got = ::waitpid(pid, &st, pfd >= 0 ? 0 : WNOHANG);
  } while (got < 0 && errno == EINTR);
  if (got != pid) return -1;
  return decode_status(st);
}

}  // namespace

run_result run(const std::vector<std::string>& argv, const std::string& input,
               std::chrono::milliseconds timeout, const std::map<std::string, std::string>& env) {
  run_result r;
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) return r;
  pid_t pid = spawn(argv, env, in[0], out[1], err[1]);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (pid < 0) return r;
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  std::size_t written = 0;
  if (input.empty()) {
    ::close(in[1]);
    in[1] = -1;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    pollfd fds[3];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out_open) { fds[n] = {out[0], POLLIN, 0}; out_i = n++; }
    if (err_open) { fds[n] = {err[0], POLLIN, 0}; err_i = n++; }
    if (in[1] >= 0) { fds[n] = {in[1], POLLOUT, 0}; in_i = n++; }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    int pr = ::poll(fds, n, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) continue;
    auto drain = [&](int i, int fd, std::string& to, bool& open) {
      if (i < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t k = ::read(fd, buf, sizeof buf);
      if (k > 0) to.append(buf, static_cast<std::size_t>(k));
      else if (k == 0 || errno != EINTR) open = false;
    };
    drain(out_i, out[0], r.out, out_open);
    drain(err_i, err[0], r.err, err_open);
    if (in_i >= 0 && (fds[in_i].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t k = ::write(in[1], input.data() + written, input.size() - written);
      if (k > 0) written += static_cast<std::size_t>(k);
      if (k < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
      if (written >= input.size()) {
        ::close(in[1]);
        in[1] = -1;
      }
    }
  }
  if (in[1] >= 0) ::close(in[1]);
  ::close(out[0]);
  ::close(err[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = decode_status(st);
  return r;
}

int run_quiet(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
              const std::string& stderr_path) {
  int err_fd = stderr_path.empty()
                   ? -1
                   : ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_t pid = spawn(argv, {}, -1, -1, err_fd);
  if (err_fd >= 0) ::close(err_fd);
  if (pid < 0) return -1;
  const int code = wait_child(pid, timeout);
  if (code == -1) {
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
  }
  return code;
}

bool wait_path_gone(const std::string& path, std::chrono::milliseconds timeout) {
  const auto slash = path.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : path.substr(0, slash);
  const int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return false;
  // Watch first, then look: a removal between the two cannot be missed.
  ::inotify_add_watch(fd, parent.c_str(), IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  struct stat st {};
  bool gone = false;
  for (;;) {
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
      gone = true;
      break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      char buf[4096];
      while (::read(fd, buf, sizeof buf) > 0) {
      }
    }
  }
  ::close(fd);
  return gone;
}

struct background_process::shared {
  std::mutex mu;
  std::condition_variable cv;
  std::string output;
  bool closed = false;
  std::thread reader;
};

background_process::~background_process() {
  if (pid_ > 0) kill9();
  if (shared_ && shared_->reader.joinable()) shared_->reader.join();
}

bool background_process::start(const std::vector<std::string>& argv,
                               const std::map<std::string, std::string>& env) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC)) return false;
  if (shared_ && shared_->reader.joinable()) shared_->reader.join();
  shared_ = std::make_shared<shared>();
  pid_ = spawn(argv, env, -1, out[1], out[1]);
  ::close(out[1]);
  if (pid_ < 0) {
    ::close(out[0]);
    return false;
  }
  auto sh = shared_;
  const int fd = out[0];
  shared_->reader = std::thread([sh, fd] {
    char buf[8192];
    for (;;) {
      ssize_t k = ::read(fd, buf, sizeof buf);
      if (k < 0 && errno == EINTR) continue;
      std::lock_guard<std::mutex> lock(sh->mu);
      if (k <= 0) {
        sh->closed = true;
        sh->cv.notify_all();
        break;
      }
      sh->output.append(buf, static_cast<std::size_t>(k));
      sh->cv.notify_all();
    }
    ::close(fd);
  });
  return true;
}

bool background_process::wait_for_output(const std::string& needle,
                                         std::chrono::milliseconds timeout) {
  if (!shared_) return false;
  std::unique_lock<std::mutex> lock(shared_->mu);
  return shared_->cv.wait_for(lock, timeout, [&] {
    return shared_->output.find(needle) != std::string::npos || shared_->closed;
  }) && shared_->output.find(needle) != std::string::npos;
}

bool background_process::wait_for_output_count(const std::string& needle, std::size_t count,
                                               std::chrono::milliseconds timeout) {
  if (!shared_) return false;
  auto occurrences = [&] {
    std::size_t n = 0;
    for (std::size_t at = shared_->output.find(needle); at != std::string::npos;
         at = shared_->output.find(needle, at + needle.size()))
      ++n;
    return n;
  };
  std::unique_lock<std::mutex> lock(shared_->mu);
  return shared_->cv.wait_for(lock, timeout,
                              [&] { return occurrences() >= count || shared_->closed; }) &&
         occurrences() >= count;
}

int background_process::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_code_;
  const int code = wait_child(pid_, timeout);
  if (code == -1) return -1;
  exit_code_ = code;
  pid_ = -1;
  // What it wrote last is still in the pipe: output() is whole once the reader saw the end
  // (bounded: a process it left behind may hold the pipe open).
  if (shared_) {
    std::unique_lock<std::mutex> lock(shared_->mu);
    shared_->cv.wait_for(lock, std::chrono::seconds(5), [&] { return shared_->closed; });
  }
  return exit_code_;
}

void background_process::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

void background_process::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait(std::chrono::seconds(30));
}

int background_process::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_code_;
  ::kill(pid_, SIGTERM);
  int code = wait(timeout);
  if (code == -1) kill9();
  return exit_code_;
}

std::string background_process::output() const {
  if (!shared_) return {};
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->output;
}

}  // namespace corral::test
