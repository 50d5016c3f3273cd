#include "tests/support/nats_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#ifndef CORRAL_NATS_SERVER
#define CORRAL_NATS_SERVER "nats-server"
#endif

namespace corral::test {

namespace {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

// Between two looks at a starting server (ports file, TCP probe, exit status).
constexpr std::chrono::milliseconds poll_interval{5};
// How long one TCP probe waits for the server's INFO line.
constexpr int probe_read_timeout_ms = 500;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now().time_since_epoch())
      .count();
}

std::string resolve_binary() {
  std::string name = CORRAL_NATS_SERVER;
  if (const char* env = std::getenv("CORRAL_NATS_SERVER"); env != nullptr && *env != '\0')
    name = env;
  if (name.find('/') != std::string::npos) return name;
  // execv() in the child needs a path; searching PATH there is not async-signal-safe.
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

std::string read_file(const std::string& path, std::size_t from = 0) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(from));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string tail(const std::string& s, std::size_t n = 2000) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

// The port of the first URL listed under `key` in a ports file:
// {"nats":["nats://127.0.0.1:4222"],"monitoring":["http://127.0.0.1:8222"]}
int port_from_ports_file(const std::string& json, const std::string& key) {
  std::size_t k = json.find("\"" + key + "\"");
  if (k == std::string::npos) return 0;
  std::size_t open = json.find('"', json.find('[', k));
  if (open == std::string::npos) return 0;
  std::size_t close = json.find('"', open + 1);
  if (close == std::string::npos) return 0;
  std::string url = json.substr(open + 1, close - open - 1);
  std::size_t colon = url.rfind(':');
  if (colon == std::string::npos) return 0;
  int port = std::atoi(url.c_str() + colon + 1);
  return port > 0 && port < 65536 ? port : 0;
}

// True once a client connecting to 127.0.0.1:port is greeted with the server's INFO line.
bool accepts_clients(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    timeval tv{};
    tv.tv_sec = probe_read_timeout_ms / 1000;
    tv.tv_usec = (probe_read_timeout_ms % 1000) * 1000;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4];
    std::size_t got = 0;
    while (got < sizeof buf) {
      ssize_t r = ::recv(fd, buf + got, sizeof buf - got, 0);
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    ok = got == sizeof buf && std::memcmp(buf, "INFO", 4) == 0;
  }
  ::close(fd);
  return ok;
}

}  // namespace

nats_server_process::nats_server_process() : nats_server_process(options{}) {}

nats_server_process::nats_server_process(options opts)
    : opts_(std::move(opts)), binary_(opts_.binary.empty() ? resolve_binary() : opts_.binary) {}

nats_server_process::~nats_server_process() {
  kill9();
  if (!work_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(work_dir_, ec);
  }
}

bool nats_server_process::reload(const std::string& config) {
  if (opts_.config.empty() || work_dir_.empty()) return fail("reload: started without a config");
  opts_.config = config;
  {
    std::ofstream conf(work_dir_ + "/server.conf.new");
    conf << config;
    if (!conf) return fail("write server.conf");
  }
  std::error_code ec;
  fs::rename(work_dir_ + "/server.conf.new", work_dir_ + "/server.conf", ec);
  if (ec) return fail("rename server.conf: " + ec.message());
  if (pid_ > 0 && ::kill(pid_, SIGHUP) != 0) return fail(std::string("SIGHUP: ") + std::strerror(errno));
  return true;
}

std::string nats_server_process::url() const {
  return "nats://127.0.0.1:" + std::to_string(port_);
}

std::string nats_server_process::log() const {
  return log_path_.empty() ? std::string() : read_file(log_path_);
}

bool nats_server_process::fail(std::string why) {
  error_ = std::move(why);
  return false;
}

bool nats_server_process::prepare_work_dir() {
  if (!work_dir_.empty()) return true;
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                      "/corral-nats-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    return fail("mkdtemp " + templ + ": " + std::strerror(errno));
  work_dir_ = buf.data();
  store_dir_ = work_dir_ + "/jetstream";
  ports_dir_ = work_dir_ + "/ports";
  log_path_ = work_dir_ + "/server.log";
  std::error_code ec;
  fs::create_directories(ports_dir_, ec);
  if (ec) return fail("create " + ports_dir_ + ": " + ec.message());
  if (!opts_.config.empty()) {
    std::ofstream conf(work_dir_ + "/server.conf");
    conf << opts_.config;
    if (!conf) return fail("write server.conf");
  }
  return true;
}

bool nats_server_process::spawn(int port) {
  std::vector<std::string> args = {binary_, "-a", "127.0.0.1", "-p",
                                   port > 0 ? std::to_string(port) : "-1", "--ports_file_dir",
                                   ports_dir_};
  if (!opts_.config.empty()) {
    args.push_back("-c");
    args.push_back(work_dir_ + "/server.conf");
  }
  if (opts_.jetstream) {
    args.push_back("-js");
    args.push_back("-sd");
    args.push_back(store_dir_);
  }
  if (opts_.monitoring) {
    args.push_back("-m");
    args.push_back(http_port_ > 0 ? std::to_string(http_port_) : "-1");
  }
  args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
  if (::access(binary_.c_str(), X_OK) != 0)
    return fail("no nats-server at " + binary_ + " (deploy/build.sh builds and installs it)");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // A ports file of an earlier run must not be mistaken for this one's.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(ports_dir_, ec)) fs::remove(entry.path(), ec);

  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return fail("open " + log_path_ + ": " + std::strerror(errno));
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    ::close(log_fd);
    return fail(std::string("open /dev/null: ") + std::strerror(errno));
  }

  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child == 0) {
    // Only async-signal-safe calls until execv: the parent has other threads.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0U, 0);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGTERM, &dfl, nullptr);
    ::sigaction(SIGINT, &dfl, nullptr);
    ::sigaction(SIGPIPE, &dfl, nullptr);
    ::execv(argv[0], argv.data());
    static const char msg[] = "nats_server_process: execv failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  int fork_errno = errno;
  ::close(log_fd);
  ::close(null_fd);
  if (child < 0) return fail(std::string("fork: ") + std::strerror(fork_errno));
  pid_ = child;
  return true;
}

bool nats_server_process::wait_ready(int64_t deadline_ms, bool* port_in_use) {
  *port_in_use = false;
  const std::string suffix = "_" + std::to_string(pid_) + ".ports";
  std::size_t log_from = 0;
  {
    std::error_code ec;
    auto size = fs::file_size(log_path_, ec);
    // The log is appended to by every run; this run's part starts about here.
    if (!ec) log_from = static_cast<std::size_t>(size);
  }
  int port = 0;
  int http_port = 0;
  while (true) {
    int wstatus = 0;
    if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      std::string out = read_file(log_path_, log_from > 4096 ? log_from - 4096 : 0);
      *port_in_use = out.find("address already in use") != std::string::npos;
      return fail("nats-server exited during start-up (status " + std::to_string(wstatus) +
                  "); log:\n" + tail(out));
    }
    if (port == 0) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(ports_dir_, ec)) {
        std::string name = entry.path().filename().string();
        if (name.size() <= suffix.size() ||
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
          continue;
        // Written non-atomically: a partial file parses to 0 and is read again.
        std::string json = read_file(entry.path().string());
        port = port_from_ports_file(json, "nats");
        http_port = port_from_ports_file(json, "monitoring");
        if (opts_.monitoring && http_port == 0) port = 0;
      }
    }
    if (port != 0 && accepts_clients(port)) {
      port_ = port;
      http_port_ = opts_.monitoring ? http_port : 0;
      return true;
    }
    if (now_ms() >= deadline_ms) {
      std::string out = log();
      kill9();
      return fail("nats-server not accepting clients after " +
                  std::to_string(opts_.ready_timeout_ms) + " ms; log:\n" + tail(out));
    }
    std::this_thread::sleep_for(poll_interval);
  }
}

bool nats_server_process::start() {
  if (running()) return fail("start: already running");
  if (!prepare_work_dir()) return false;
  if (!spawn(0)) return false;
  bool in_use = false;
  return wait_ready(now_ms() + opts_.ready_timeout_ms, &in_use);
}

bool nats_server_process::restart() {
  if (port_ == 0) return fail("restart: never started");
  if (running() && !stop()) return false;
  const int64_t deadline = now_ms() + opts_.ready_timeout_ms;
  while (true) {
    if (!spawn(port_)) return false;
    bool in_use = false;
    if (wait_ready(deadline, &in_use)) return true;
    // The old listener (or a stranger) may still hold the port for a moment: try again.
    if (!in_use || now_ms() >= deadline) return false;
    std::this_thread::sleep_for(poll_interval * 4);
  }
}

bool nats_server_process::wait_exit(int64_t timeout_ms, int* wstatus) {
  const int64_t deadline = now_ms() + timeout_ms;
#ifdef SYS_pidfd_open
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int left;
    while ((left = static_cast<int>(deadline - now_ms())) > 0) {
      int r = ::poll(&p, 1, left);
      if (r > 0 || (r < 0 && errno != EINTR)) break;
    }
    ::close(pidfd);
  }
#endif
  while (true) {
    if (::waitpid(pid_, wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    if (now_ms() >= deadline) return false;
    std::this_thread::sleep_for(poll_interval);
  }
}

bool nats_server_process::stop() {
  if (!running()) return true;
  ::kill(pid_, SIGTERM);
  int wstatus = 0;
  if (wait_exit(opts_.stop_timeout_ms, &wstatus)) return true;
  kill9();
  return fail("stop: nats-server ignored SIGTERM for " + std::to_string(opts_.stop_timeout_ms) +
              " ms; killed");
}

void nats_server_process::kill9() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

}  // namespace corral::test
