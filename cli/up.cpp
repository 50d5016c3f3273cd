#include "cli/up.hpp"

#include <fcntl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <tuple>

#include "bus/connection.hpp"
#include "bus/nats_auth.hpp"
#include "cli/token.hpp"

namespace corral::cli {

namespace {

// How long `corral up` and `corral token create` wait, and how often they look.
constexpr int64_t identity_connect_timeout_ms = 1'000;  // one try of the new identity
constexpr auto reload_wait = std::chrono::seconds(10);   // the server to take a new identity
constexpr auto reload_poll = std::chrono::milliseconds(50);
constexpr auto reload_log_poll = std::chrono::milliseconds(20);
constexpr auto nats_start_wait = std::chrono::seconds(15);  // nats-server to listen
constexpr auto child_poll = std::chrono::milliseconds(20);
constexpr int executor_stop_ms = 30'000;  // SIGTERM to SIGKILL: the executor drains its sandboxes
constexpr int server_stop_ms = 10'000;    // ... nats-server and the gateway
constexpr int reap_after_kill_ms = 5'000;  // a SIGKILLed child to be reaped
// A child that could not become its program exits with the shell's "command not found".
constexpr int spawn_failed_status = 127;

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

// Starts argv[0] (searched in PATH) as a child that dies with this process: it gets SIGTERM
// when the thread that forked it exits, even when `corral up` is killed with SIGKILL (so a
// nats-server never outlives an interrupted start). `mask` is the child's signal mask (the
// parent keeps its own blocked set); child_umask >= 0 is set in the child.
pid_t spawn(const std::vector<std::string>& argv, const sigset_t& mask, int child_umask = -1) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  // The child: only async-signal-safe calls until exec.
  if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent)
    ::_exit(spawn_failed_status);
  if (child_umask >= 0) ::umask(static_cast<mode_t>(child_umask));
  ::sigprocmask(SIG_SETMASK, &mask, nullptr);
  ::execvp(cargv[0], cargv.data());
  ::_exit(spawn_failed_status);
}

// A private directory: created 0700, or made 0700 when it exists.
bool private_dir(const std::string& path, std::string* why) {
  *why = bus::make_private_dir(path);
  return why->empty();
}

bool write_text_file(const std::string& path, const std::string& text, std::string* why) {
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::trunc);
  out << text;
  out.close();
  if (!out || ::chmod(tmp.c_str(), 0600) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    *why = "cannot write " + path;
    return false;
  }
  return true;
}

// Asks the nats-server whose pid is in pid_file (if it runs) to reload its configuration; false
// when none runs (it reads the configuration at its next start).
bool reload_nats(const std::string& pid_file) {
  std::ifstream in(pid_file);
  long pid = 0;
  if (!(in >> pid) || pid <= 1) return false;
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string program;
  std::getline(cmdline, program, '\0');
  if (program.find("nats-server") == std::string::npos) return false;  // a stale pid file
  return ::kill(static_cast<pid_t>(pid), SIGHUP) == 0;
}

// After a reload for a new identity: waits (up to 10 s) until the deployment's running server
// accepts that identity, so that credentials are usable when `corral token create` returns.
// False when no server runs (it reads the identity at its next start) or it never does.
bool wait_until_accepted(const up_layout& layout, const std::string& seed_file) {
  std::ifstream conf(layout.nats_dir() + "/nats.conf");
  std::string line, listen;
  while (std::getline(conf, line)) {
    if (line.rfind("listen: \"", 0) == 0) listen = line.substr(9, line.size() - 10);
  }
  if (listen.empty()) return false;
  bus::options o;
  o.urls = {"nats://" + listen};
  o.name = "corral token create";
  o.nkey_seed_file = seed_file;
  o.connect_timeout_ms = identity_connect_timeout_ms;
  o.max_reconnect = 0;
  o.delivery_pool_threads = 0;
  const auto deadline = std::chrono::steady_clock::now() + reload_wait;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string why;
    if (bus::connection::connect(o, &why)) return true;
    if (why.find("Authorization") == std::string::npos &&
        why.find("Authentication") == std::string::npos)
      return false;  // not running (or not reachable): nothing to wait for
    std::this_thread::sleep_for(reload_poll);  // the server's reload
  }
  return false;
}

// How many reloads the deployment's nats-server has logged (its log file).
std::size_t reloads_logged(const up_layout& layout) {
  std::ifstream log(layout.nats_dir() + "/nats-server.log");
  std::string line;
  std::size_t n = 0;
  while (std::getline(log, line))
    if (line.find("Reloaded server configuration") != std::string::npos) ++n;
  return n;
}

// Waits (up to 10 s) until the server has logged `count` reloads.
void wait_for_reload_logged(const up_layout& layout, std::size_t count) {
  const auto deadline = std::chrono::steady_clock::now() + reload_wait;
  while (reloads_logged(layout) < count && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(reload_log_poll);  // the server's reload
}

// The NATS server binary: corral's own build (deploy/build-nats-server.sh) beside this program
// when there is one, else Debian's.
std::string nats_server_binary(const std::string& self) {
  const std::string own = self + "/corral-nats-server";
  return ::access(own.c_str(), X_OK) == 0 ? own : std::string("nats-server");
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
    std::this_thread::sleep_for(child_poll);  // polling a child, not a test
  }
}

}  // namespace

std::string up_layout::tenant_seed_file(const std::string& tenant) const {
  return bus::nats_auth_dir(auth_dir()).seed_file(bus::nats_role::tenant, tenant);
}

std::string up_layout::operator_seed_file() const {
  return bus::nats_auth_dir(auth_dir()).seed_file(bus::nats_role::admin, "operator");
}

std::optional<std::string> ensure_tenant_identity(const std::string& data,
                                                  const std::string& tenant, bool* created,
                                                  std::string* error) {
  const up_layout layout{data};
  if (!private_dir(data, error)) return std::nullopt;
  bus::nats_auth_dir auth(layout.auth_dir());
  auto seed = auth.ensure(bus::nats_role::tenant, tenant, created, error);
  if (seed && *created) {
    // Twice: nats-server 2.9.10 wires a new account's imports only on the reload after the one
    // that created the account (reload.go adds service-import interest for existing accounts
    // only). The first makes the tenant's user known; the second its imports.
    // Each reload waits until the server has logged it: a second signal while the first is
    // being applied may be taken as one reload. Then the identity must be accepted, so that the
    // credentials are usable when `corral token create` returns.
    const std::size_t done = reloads_logged(layout);
    if (reload_nats(layout.nats_pid_file())) {
      wait_for_reload_logged(layout, done + 1);
      if (reload_nats(layout.nats_pid_file())) wait_for_reload_logged(layout, done + 2);
      (void)wait_until_accepted(layout, *seed);
    }
  }
  return seed;
}

bool revoke_tenant_identity(const std::string& data, const std::string& tenant, bool* removed,
                            std::string* error) {
  const up_layout layout{data};
  if (!private_dir(data, error)) return false;
  bus::nats_auth_dir auth(layout.auth_dir());
  if (!auth.remove(bus::nats_role::tenant, tenant, removed, error)) return false;
  if (*removed) {
    const std::size_t done = reloads_logged(layout);
    if (reload_nats(layout.nats_pid_file())) wait_for_reload_logged(layout, done + 1);
  }
  return true;
}

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
  std::string why;
  if (!private_dir(data, &why)) {
    std::cerr << "corral up: " << why << "\n";
    return 1;
  }
  data = fs::absolute(data).lexically_normal().string();
  if (!data.empty() && data.back() == '/') data.pop_back();
  const up_layout layout{data};
  for (const auto& dir : {layout.nats_dir(), data + "/executor"}) {
    if (!private_dir(dir, &why)) {
      std::cerr << "corral up: " << why << "\n";
      return 1;
    }
  }
  if (port_accepts(port)) {
    std::cerr << "corral up: port " << port << " is already in use (another corral up?)\n";
    return 1;
  }

  // Identities: the executor, the gateway, the operator and the default tenant. Kept across
  // starts (DIR/auth); auth.conf is rendered again so that a newer corral's permissions apply.
  bus::nats_auth_dir auth(layout.auth_dir());
  std::string executor_seed, gateway_seed, tenant_seed;
  for (auto [role, name, out] :
       {std::tuple{bus::nats_role::admin, "operator", static_cast<std::string*>(nullptr)},
        std::tuple{bus::nats_role::executor, "local", &executor_seed},
        std::tuple{bus::nats_role::gateway, "local", &gateway_seed},
        std::tuple{bus::nats_role::tenant, "default", &tenant_seed}}) {
    bool created = false;
    auto seed = auth.ensure(role, name, &created, &why);
    if (!seed) {
      std::cerr << "corral up: NATS identity " << bus::to_string(role) << " " << name << ": "
                << why << "\n";
      return 1;
    }
    if (out != nullptr) *out = *seed;
  }
  if (!auth.render(&why)) {
    std::cerr << "corral up: " << why << "\n";
    return 1;
  }
  const std::string self = self_dir(argv0);
  const std::string nats_binary = nats_server_binary(self);
  const std::string nats_conf = layout.nats_dir() + "/nats.conf";
  // (nats-server resolves an include against the including file's directory.)
  std::string conf =
      "# Written by corral up at every start. Users and their permissions: the included file,\n"
      "# rendered from " + layout.auth_dir() + "/identities (docs/security.md).\n"
      "listen: \"127.0.0.1:" + std::to_string(port) + "\"\n"
      "server_name: \"corral-up\"\n"
      "pid_file: \"" + layout.nats_pid_file() + "\"\n"
      "log_file: \"" + layout.nats_dir() + "/nats-server.log\"\n"
      "jetstream {\n  store_dir: \"" + layout.nats_dir() + "\"\n" +
      // corral's build fsyncs every message before acknowledging it (docs/architecture.md,
      // docs/jobs.md "Durability of JetStream"); Debian's server refuses the setting.
      (nats_binary == "nats-server" ? std::string() : std::string("  sync_interval: always\n")) +
      "}\n"
      "include \"" + fs::relative(auth.auth_conf(), layout.nats_dir()).string() + "\"\n";
  if (!write_text_file(nats_conf, conf, &why)) {
    std::cerr << "corral up: " << why << "\n";
    return 1;
  }

  // Signals are taken synchronously below; children start with the default disposition and
  // an empty mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  sigset_t none;
  sigemptyset(&none);

  const std::string url = "nats://127.0.0.1:" + std::to_string(port);
  // nats-server writes its store and log with umask 077: readable by root only.
  // Everything is in the configuration file (so that a reload, for a new tenant, re-reads the
  // same settings).
  pid_t nats = spawn({nats_binary, "-c", nats_conf}, none, 077);
  if (nats < 0) {
    std::cerr << "corral up: cannot start " << nats_binary << "\n";
    return 1;
  }
  if (nats_binary == "nats-server")
    std::cerr << "corral up: warning: Debian's nats-server acknowledges jobs before they reach the "
                 "disk (build corral-nats-server with deploy/build.sh)\n";
  // Stops what was started when the start is interrupted or fails.
  auto abandon = [&](pid_t executor_pid) {
    int st = 0;
    if (executor_pid > 0) {
      ::kill(executor_pid, SIGTERM);
      if (!wait_exit(executor_pid, executor_stop_ms, &st)) ::kill(executor_pid, SIGKILL);
      wait_exit(executor_pid, reap_after_kill_ms, &st);
    }
    ::kill(nats, SIGTERM);
    if (!wait_exit(nats, server_stop_ms, &st)) ::kill(nats, SIGKILL);
    wait_exit(nats, reap_after_kill_ms, &st);
  };
  auto interrupted = [&]() {
    sigset_t pending;
    sigemptyset(&pending);
    return sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1);
  };
  const auto deadline = std::chrono::steady_clock::now() + nats_start_wait;
  while (!port_accepts(port)) {
    int st = 0;
    if (::waitpid(nats, &st, WNOHANG) == nats) {
      std::cerr << "corral up: nats-server exited at start (see " << layout.nats_dir()
                << "/nats-server.log)\n";
      return 1;
    }
    if (interrupted()) {
      std::cerr << "corral up: interrupted while starting\n";
      abandon(-1);
      return 1;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "corral up: nats-server did not start listening\n";
      abandon(-1);
      return 1;
    }
    std::this_thread::sleep_for(child_poll);  // polling a child, not a test
  }
  // Per-tenant quota overrides: DIR/tenants when the operator writes one (docs/operations.md).
  std::vector<std::string> exec_argv = {self + "/corral-executor", "--data", data + "/executor",
                                        "--nats", url, "--nats-creds", executor_seed,
                                        "--tenants", data + "/tenants"};
  if (!max_sandboxes.empty()) {
    exec_argv.push_back("--max-sandboxes");
    exec_argv.push_back(max_sandboxes);
  }
  if (!runsc.empty()) {
    exec_argv.push_back("--runsc");
    exec_argv.push_back(runsc);
  }
  pid_t executor = spawn(exec_argv, none);
  if (executor < 0) {
    std::cerr << "corral up: cannot start " << exec_argv[0] << "\n";
    abandon(-1);
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
      auto made = create_token("default", layout.tokens_file(), &error);
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
    gateway = spawn({self + "/corral-gateway", "--listen",
                     "127.0.0.1:" + std::to_string(gateway_port), "--nats", url, "--nats-creds",
                     gateway_seed, "--tokens", layout.tokens_file()},
                    none);
    if (gateway < 0) {
      std::cerr << "corral up: cannot start corral-gateway\n";
    } else {
      std::cerr << "corral up: gateway on http://127.0.0.1:" << gateway_port
                << "  (development token for tenant 'default': " << dev_token << ")\n";
    }
  }
  std::cerr << "corral up: nats-server on " << url << " (log in " << layout.nats_dir()
            << "/nats-server.log), data under " << data << "\n"
            << "corral up: NATS requires credentials; tenant 'default' has " << tenant_seed
            << " (the CLI finds ./var/auth/tenant-T.nk itself; `corral token create --tenant T`"
               " adds tenants)\n"
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
      if (gateway > 0 && ::waitpid(gateway, &st, WNOHANG) == gateway) {
        std::cerr << "corral up: the gateway exited (status " << st << ")\n";
        gateway = -1;
      }
      if (!ended) continue;
      if (::waitpid(executor, &st, WNOHANG) == 0) {
        ::kill(executor, SIGTERM);
        if (!wait_exit(executor, executor_stop_ms, &st)) ::kill(executor, SIGKILL);
      }
      break;
    }
    std::cerr << "corral up: stopping\n";
    int st = 0;
    ::kill(executor, SIGTERM);
    if (!wait_exit(executor, executor_stop_ms, &st)) {
      ::kill(executor, SIGKILL);
      wait_exit(executor, reap_after_kill_ms, &st);
    }
    break;
  }
  if (gateway > 0) {
    int st = 0;
    ::kill(gateway, SIGTERM);
    if (!wait_exit(gateway, server_stop_ms, &st)) ::kill(gateway, SIGKILL);
  }
  if (nats > 0) {
    int st = 0;
    ::kill(nats, SIGTERM);
    if (!wait_exit(nats, server_stop_ms, &st)) ::kill(nats, SIGKILL);
  }
  return exit_code;
}

}  // namespace corral::cli
