#include "cli/up.hpp"

#include <fcntl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

extern char** environ;

#include "cli/token.hpp"

namespace corral::cli {

namespace {

namespace fs = std::filesystem;

std::string self_dir(const char* argv0) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = '\0';
    return fs::path(buf).parent_path().string();
  }
  return fs::absolute(fs::path(argv0)).parent_path().string();
}

pid_t spawn(const std::vector<std::string>& argv) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  if (::posix_spawnp(&pid, cargv[0], nullptr, nullptr, cargv.data(), environ) != 0) return -1;
  return pid;
}

bool port_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// Waits for pid to exit up to `ms`; returns true if it did (and reaps it).
bool wait_exit(pid_t pid, int ms, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a child, not a test
  }
}

}  // namespace

int run_up(const std::vector<std::string>& args, const char* argv0) {
  std::string data = "./var";
  int port = 4222;
  int gateway_port = 8080;  // 0: no gateway
  std::string max_sandboxes;
  std::string runsc;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (i + 1 >= args.size()) {
      std::cerr << "corral up: missing value for " << a << "\n";
      return 2;
    }
    if (a == "--data") data = args[++i];
    else if (a == "--port") port = std::atoi(args[++i].c_str());
    else if (a == "--gateway-port") gateway_port = std::atoi(args[++i].c_str());
    else if (a == "--max-sandboxes") max_sandboxes = args[++i];
    else if (a == "--runsc") runsc = args[++i];
    else {
      std::cerr << "corral up: unknown argument " << a << "\n";
      return 2;
    }
  }
  if (port <= 0 || port > 65535 || gateway_port < 0 || gateway_port > 65535) {
    std::cerr << "corral up: bad --port or --gateway-port\n";
    return 2;
  }
  std::error_code ec;
  fs::create_directories(fs::path(data) / "nats", ec);
  fs::create_directories(fs::path(data) / "executor", ec);
  if (ec) {
    std::cerr << "corral up: cannot create " << data << ": " << ec.message() << "\n";
    return 1;
  }
  data = fs::absolute(data).string();
  if (port_accepts(port)) {
    std::cerr << "corral up: port " << port << " is already in use (another corral up?)\n";
    return 1;
  }
  // Signals are taken synchronously below; children start with the default disposition.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  sigset_t none;
  sigemptyset(&none);

  const std::string url = "nats://127.0.0.1:" + std::to_string(port);
  auto spawn_unblocked = [&](const std::vector<std::string>& argv) {
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    pid_t p = spawn(argv);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return p;
  };
  pid_t nats = spawn_unblocked({"nats-server", "-a", "127.0.0.1", "-p", std::to_string(port), "-js",
                                "-sd", data + "/nats", "--server_name", "corral-up", "-l",
                                data + "/nats/nats-server.log"});
  if (nats < 0) {
    std::cerr << "corral up: cannot start nats-server (is it installed?)\n";
    return 1;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!port_accepts(port)) {
    int st = 0;
    if (::waitpid(nats, &st, WNOHANG) == nats) {
      std::cerr << "corral up: nats-server exited at start\n";
      return 1;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "corral up: nats-server did not start listening\n";
      ::kill(nats, SIGKILL);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::vector<std::string> exec_argv = {self_dir(argv0) + "/corral-executor", "--data",
                                        data + "/executor", "--nats", url};
  if (!max_sandboxes.empty()) {
    exec_argv.push_back("--max-sandboxes");
    exec_argv.push_back(max_sandboxes);
  }
  if (!runsc.empty()) {
    exec_argv.push_back("--runsc");
    exec_argv.push_back(runsc);
  }
  pid_t executor = spawn_unblocked(exec_argv);
  if (executor < 0) {
    std::cerr << "corral up: cannot start " << exec_argv[0] << "\n";
    ::kill(nats, SIGTERM);
    return 1;
  }
  // The HTTP gateway, with a development token for the tenant "default" (kept in DATA/dev-token,
  // 0600, so every start can print it; only its hash is in DATA/tokens).
  pid_t gateway = -1;
  if (gateway_port > 0) {
    const std::string dev_token_file = data + "/dev-token";
    std::string dev_token;
    if (std::ifstream in(dev_token_file); in) std::getline(in, dev_token);
    if (dev_token.empty()) {
      std::string error;
      auto made = create_token("default", data + "/tokens", &error);
      if (!made) {
        std::cerr << "corral up: " << error << "\n";
      } else {
        dev_token = *made;
        const int fd = ::open(dev_token_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
          const std::string line = dev_token + "\n";
          if (::write(fd, line.data(), line.size()) < 0) dev_token.clear();
          ::close(fd);
        }
      }
    }
    gateway = spawn_unblocked({self_dir(argv0) + "/corral-gateway", "--listen",
                               "127.0.0.1:" + std::to_string(gateway_port), "--nats", url,
                               "--tokens", data + "/tokens"});
    if (gateway < 0) {
      std::cerr << "corral up: cannot start corral-gateway\n";
    } else {
      std::cerr << "corral up: gateway on http://127.0.0.1:" << gateway_port
                << "  (development token for tenant 'default': " << dev_token << ")\n";
    }
  }
  std::cerr << "corral up: nats-server on " << url << " (log in " << data
            << "/nats/nats-server.log), data under " << data << "\n"
            << "corral up: try   corral run -- python3 -c 'print(6*7)'\n";

  int exit_code = 0;
  for (;;) {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGCHLD) {
      int st = 0;
      bool ended = false;
      if (::waitpid(executor, &st, WNOHANG) == executor) {
        std::cerr << "corral up: the executor exited (status " << st << ")\n";
        exit_code = 1;
        ended = true;
      }
      if (::waitpid(nats, &st, WNOHANG) == nats) {
        std::cerr << "corral up: nats-server exited (status " << st << ")\n";
        nats = -1;
        exit_code = 1;
        ended = true;
      }
      if (!ended) continue;
      if (::waitpid(executor, &st, WNOHANG) == 0) {
        ::kill(executor, SIGTERM);
        if (!wait_exit(executor, 30000, &st)) ::kill(executor, SIGKILL);
      }
      break;
    }
    std::cerr << "corral up: stopping\n";
    int st = 0;
    ::kill(executor, SIGTERM);
    if (!wait_exit(executor, 30000, &st)) {
      ::kill(executor, SIGKILL);
      wait_exit(executor, 5000, &st);
    }
    break;
  }
  if (gateway > 0) {
    int st = 0;
    ::kill(gateway, SIGTERM);
    if (!wait_exit(gateway, 10000, &st)) ::kill(gateway, SIGKILL);
  }
  if (nats > 0) {
    int st = 0;
    ::kill(nats, SIGTERM);
    if (!wait_exit(nats, 10000, &st)) ::kill(nats, SIGKILL);
  }
  return exit_code;
}

}  // namespace corral::cli
