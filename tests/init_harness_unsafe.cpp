// Process, pipe and pidfd plumbing for init_test.
#include "tests/init_harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace corral::init_test {
namespace {

int remaining_ms(test_clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - test_clock::now()).count();
  if (left <= 0) return 0;
  return left > 60000 ? 60000 : static_cast<int>(left) + 1;
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

init_process::init_process(const std::vector<std::string>& args) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe2 failed");
  const std::string path = std::string(CORRAL_BIN_DIR) + "/corral-init";
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execve(path.c_str(), argv.data(), envp);
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
  stderr_fd_ = err[0];
  set_nonblocking(stdin_fd_);
  set_nonblocking(stdout_fd_);
  set_nonblocking(stderr_fd_);
}

init_process::~init_process() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  for (int fd : {stdin_fd_, stdout_fd_, stderr_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

bool init_process::write(const bytes& data, test_clock::time_point deadline) {
  std::size_t done = 0;
  while (done < data.size()) {
    if (stdin_fd_ < 0) return false;
    const ssize_t n = ::write(stdin_fd_, data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    pollfd fds[2] = {{stdin_fd_, POLLOUT, 0}, {stderr_fd_, POLLIN, 0}};
    const int timeout = remaining_ms(deadline);
    if (timeout == 0) return false;
    if (::poll(fds, 2, timeout) < 0 && errno != EINTR) return false;
    if (fds[1].revents != 0) collect_log();
  }
  return true;
}

void init_process::close_stdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

void init_process::close_stdout() {
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  stdout_fd_ = -1;
}

bytes init_process::read_stdout(std::size_t max, test_clock::time_point deadline) {
  bytes buf(max);
  for (;;) {
    const ssize_t n = ::read(stdout_fd_, buf.data(), buf.size());
    if (n > 0) {
      buf.resize(static_cast<std::size_t>(n));
      return buf;
    }
    if (n == 0) return {};
    if (errno != EAGAIN && errno != EINTR) return {};
    pollfd fds[2] = {{stdout_fd_, POLLIN, 0}, {stderr_fd_, POLLIN, 0}};
    const int timeout = remaining_ms(deadline);
    if (timeout == 0) return {};
    if (::poll(fds, 2, timeout) < 0 && errno != EINTR) return {};
    if (fds[1].revents != 0) collect_log();
  }
}

bool init_process::wait_for_log(const std::string& text, test_clock::time_point deadline) {
  for (;;) {
    collect_log();
    if (log_.find(text) != std::string::npos) return true;
    pollfd fd{stderr_fd_, POLLIN, 0};
    const int timeout = remaining_ms(deadline);
    if (timeout == 0) return false;
    if (::poll(&fd, 1, timeout) < 0 && errno != EINTR) return false;
    if ((fd.revents & POLLHUP) != 0 && (fd.revents & POLLIN) == 0) {
      collect_log();
      return log_.find(text) != std::string::npos;
    }
  }
}

void init_process::collect_log() {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(stderr_fd_, buf, sizeof buf);
    if (n <= 0) return;
    log_.append(buf, static_cast<std::size_t>(n));
  }
}

bool init_process::send_signal(int sig) const { return ::kill(pid_, sig) == 0; }

bool init_process::running() const {
  if (reaped_) return false;
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
    return false;
  return info.si_pid == 0;
}

int init_process::wait_exit(test_clock::time_point deadline) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd < 0) return -1;
  pollfd fd{pidfd, POLLIN, 0};
  const int ready = ::poll(&fd, 1, remaining_ms(deadline));
  ::close(pidfd);
  if (ready != 1) return -1;
  int status = 0;
  if (::waitpid(pid_, &status, 0) != pid_) return -1;
  reaped_ = true;
  return status;
}

bool wait_process_exit(pid_t pid, test_clock::time_point deadline) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return errno == ESRCH;
  pollfd fd{pidfd, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&fd, 1, remaining_ms(deadline));
  } while (ready < 0 && errno == EINTR);
  ::close(pidfd);
  return ready == 1;
}

bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z' &&
         line[paren + 2] != 'X';
}

bool process_reaped(pid_t pid) {
  struct stat st {};
  return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) != 0 && errno == ENOENT;
}

long long file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<long long>(st.st_size);
}

bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool write_file(const std::string& path, const std::string& content, unsigned mode) {
  {
    std::ofstream out(path, std::ios::binary);
    out << content;
    if (!out) return false;
  }
  return ::chmod(path.c_str(), static_cast<mode_t>(mode)) == 0;
}

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                     "/corral-init-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

}  // namespace corral::init_test
