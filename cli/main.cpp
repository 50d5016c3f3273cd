// corral: the command-line client (speaks NATS directly) and `corral up`, the single-machine
// deployment (an embedded nats-server child, one executor, data under ./var).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "cli/fs_command.hpp"
#include "cli/sweep.hpp"
#include "cli/token.hpp"
#include "cli/up.hpp"
#include "cli/write_all.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace {

using namespace corral;

const char* usage_text =
    "usage: corral [--nats URL] [--nats-creds FILE] [--nats-ca PEM] [--tenant T] [--pool P]\n"
    "              COMMAND ...\n"
    "\n"
    "commands:\n"
    "  up [--data DIR] [--port N] [--gateway-port N] [--max-sandboxes N]\n"
    "                                 start nats-server, an executor and the HTTP gateway\n"
    "  run [--timeout S] [--exec-timeout S] -- ARGV...     one-shot: new sandbox, run, remove\n"
    "  sandbox create [--name N] [--timeout S] [--idle-timeout S] [--cpu MILLIS] [--memory MIB]\n"
    "                 [--cpu-request MILLIS] [--memory-request MIB] [--tag K=V]... [--env K=V]...\n"
    "                 [--workdir DIR] [--probe-cmd CMD | --probe-port N] [--probe-interval S]\n"
    "                 [-- ENTRYPOINT...]\n"
    "  sandbox tags ID [K=V... | --clear]                 read, or replace, the tags\n"
    "  sandbox logs ID                                    the entrypoint's output\n"
    "  sandbox ls [--all] [--name N] [--tag K=V]...\n"
    "  sandbox info|wait|rm (ID | --name NAME) [--timeout S] [--ready]\n"
    "  exec [-t] [--timeout S] [--workdir DIR] [--env K=V]... [--id EXEC_ID] SANDBOX -- ARGV...\n"
    "  usage [SANDBOX]                                    CPU core-s, GiB-s and cost billed\n"
    "  token create --tenant T [--data DIR] [--tokens FILE]\n"
    "                                 the tenant's NATS identity (DIR/auth/tenant-T.nk, made\n"
    "                                 once) and a new gateway token (its hash in DIR/tokens)\n"
    "  token revoke --tenant T [--data DIR] [--tokens FILE]\n"
    "                                 the tenant's NATS identity and every gateway token gone\n"
    "%s"
    "%s"
    "\n"
    "environment: CORRAL_NATS_URL (default nats://127.0.0.1:4222), CORRAL_NATS_CREDS (the\n"
    "tenant's NATS nkey seed file; default ./var/auth/tenant-T.nk when it exists),\n"
    "CORRAL_NATS_CA (TLS), CORRAL_TENANT (default 'default'), CORRAL_POOL (default 'default').\n"
    "exit status: exec and run exit with the process's status (124 timeout, 137 killed);\n"
    "sweep exits 0 when every program has a result; 1 for a failed request, 2 for a usage error.\n";

int usage(const std::string& why = {}) {
  if (!why.empty()) std::cerr << "corral: " << why << "\n";
  std::fprintf(stderr, usage_text, cli::fs_usage_text, cli::sweep::usage_text);
  return 2;
}

int fail(const client::call_error& e) {
  std::cerr << "corral: " << wire::to_string(e.code) << ": " << e.message << "\n";
  return 1;
}

bool parse_pair(const std::string& s, std::pair<std::string, std::string>& out) {
  auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  out = {s.substr(0, eq), s.substr(eq + 1)};
  return true;
}

bool parse_seconds(const std::string& s, int64_t& ms) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end == s.c_str() || *end != '\0' || v < 0 || v > 1e9) return false;
  ms = static_cast<int64_t>(v * 1000);
  return true;
}

bool parse_uint(const std::string& s, uint32_t& out) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != '\0' || v > 0xffffffffUL) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

void print_sandbox_line(const client::sandbox_view& v, int64_t now_ms) {
  std::printf("%-25s  %-16s  %-11s  %7s  %s\n", v.id.c_str(), v.name.empty() ? "-" : v.name.c_str(),
              wire::to_string(v.state), client::format_age(now_ms - v.created_at_ms).c_str(),
              v.node.c_str());
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void print_info(const client::sandbox_view& v) {
  std::printf("id:          %s\nname:        %s\nstatus:      %s\nnode:        %s\nimage:       %s\n",
              v.id.c_str(), v.name.c_str(), wire::to_string(v.state), v.node.c_str(),
              v.image.c_str());
  std::printf("age:         %s\ntimeout:     %llds\n", client::format_age(now_ms() - v.created_at_ms).c_str(),
              static_cast<long long>(v.timeout_ms / 1000));
  std::printf("ready:       %s\n", v.ready ? "yes" : "no");
  if (v.has_return_code) std::printf("returncode:  %d\n", v.return_code);
  if (!v.message.empty()) std::printf("message:     %s\n", v.message.c_str());
  for (const auto& [k, val] : v.tags) std::printf("tag:         %s=%s\n", k.c_str(), val.c_str());
}

// Runs an exec with the CLI's own stdio: output streamed as it comes, stdin forwarded when it
// is not a terminal. Returns the process's shell-style exit status.
// Puts the local terminal in raw mode for a pty exec and restores it on scope exit.
class raw_terminal {
 public:
  raw_terminal() {
    if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      ::cfmakeraw(&raw);
      active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
  }
  ~raw_terminal() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }

 private:
  termios saved_{};
  bool active_ = false;
};

// Exits with `code` at once, output flushed, without running destructors: exec's stdin pump
// may still be blocked on a read of our stdin or in a last request, and must not see the
// process's libraries torn down under it.
[[noreturn]] void leave(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

int run_exec(client::session& c, const std::string& sandbox, client::exec_options opts,
             bool forward_stdin = true) {
  // Without a pty, a terminal's stdin is not forwarded (it would never end); with one, it is:
  // the remote program reads the keys.
  opts.stdin_open = forward_stdin && (opts.pty || ::isatty(STDIN_FILENO) == 0);
  std::optional<raw_terminal> raw;
  if (opts.pty) {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
      opts.rows = ws.ws_row;
      opts.cols = ws.ws_col;
    }
    raw.emplace();
  }
  client::session::stdin_fn source;
  if (opts.stdin_open) {
    source = []() -> std::optional<std::vector<uint8_t>> {
      std::vector<uint8_t> buf(256 * 1024);
      for (;;) {
        ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        buf.resize(static_cast<std::size_t>(n));
        return buf;
      }
    };
  }
  auto r = c.exec(sandbox, opts,
                  [](wire::Stream s, const uint8_t* p, std::size_t n) {
                    // A reader that went away (EPIPE): drop, the exec goes on.
                    const int fd = s == wire::Stream::stderr ? STDERR_FILENO : STDOUT_FILENO;
                    (void)cli::write_all(fd, p, n);
                  },
                  source);
  if (!r) return fail(r.error);
  const auto& x = *r.value;
  if (x.outcome != wire::Outcome::exited && x.outcome != wire::Outcome::signaled) {
    std::cerr << "corral: exec " << wire::to_string(x.outcome)
              << (x.message.empty() ? "" : ": " + x.message) << "\n";
  }
  return x.exit_code;
}

// corral usage [SANDBOX_ID]: metered use of this tenant's sandboxes, and the tenant's total.
int cmd_usage(client::session& c, const std::vector<std::string>& args) {
  if (args.size() > 1) return usage("usage: at most one sandbox id");
  auto r = c.usage(args.empty() ? std::string() : args[0]);
  if (!r) return fail(r.error);
  std::printf("%-25s  %14s  %14s  %12s  %s\n", "SANDBOX", "CPU_CORE_S", "GIB_S", "COST", "NODE");
  for (const auto& s : r.value->sandboxes)
    std::printf("%-25s  %14.3f  %14.3f  %12.6f  %s\n", s.sandbox_id.c_str(),
                s.usage.cpu_core_seconds, s.usage.gib_seconds, s.usage.cost, s.node.c_str());
  const auto& t = r.value->total;
  std::printf("%-25s  %14.3f  %14.3f  %12.6f\n", "TOTAL (tenant)",
              t.cpu_core_seconds, t.gib_seconds, t.cost);
  return 0;
}

int cmd_sandbox(client::session& c, std::vector<std::string> args) {
  if (args.empty()) return usage("sandbox: missing subcommand");
  const auto sub = args[0];
  args.erase(args.begin());
  if (sub == "create") {
    client::create_options o;
    for (std::size_t i = 0; i < args.size(); ++i) {
      const auto& a = args[i];
      auto val = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
      const std::string* v = nullptr;
      if (a == "--name" && (v = val())) o.name = *v;
      else if (a == "--timeout" && (v = val())) { if (!parse_seconds(*v, o.timeout_ms)) return usage("bad --timeout"); }
      else if (a == "--cpu" && (v = val())) { if (!parse_uint(*v, o.cpu_millis)) return usage("bad --cpu"); }
      else if (a == "--memory" && (v = val())) { if (!parse_uint(*v, o.memory_mib)) return usage("bad --memory"); }
      else if (a == "--workdir" && (v = val())) o.workdir = *v;
      else if (a == "--tag" && (v = val())) { std::pair<std::string, std::string> p; if (!parse_pair(*v, p)) return usage("bad --tag"); o.tags.push_back(p); }
      else if (a == "--env" && (v = val())) { std::pair<std::string, std::string> p; if (!parse_pair(*v, p)) return usage("bad --env"); o.env.push_back(p); }
      else if (a == "--idle-timeout" && (v = val())) { if (!parse_seconds(*v, o.idle_timeout_ms)) return usage("bad --idle-timeout"); }
      else if (a == "--cpu-request" && (v = val())) { if (!parse_uint(*v, o.cpu_request_millis)) return usage("bad --cpu-request"); }
      else if (a == "--memory-request" && (v = val())) { if (!parse_uint(*v, o.memory_request_mib)) return usage("bad --memory-request"); }
      else if (a == "--probe-cmd" && (v = val())) o.probe_command = {"sh", "-c", *v};
      else if (a == "--probe-port" && (v = val())) { uint32_t port = 0; if (!parse_uint(*v, port) || port > 65535) return usage("bad --probe-port"); o.probe_tcp_port = static_cast<int32_t>(port); }
      else if (a == "--probe-interval" && (v = val())) { if (!parse_seconds(*v, o.probe_interval_ms)) return usage("bad --probe-interval"); }
      else if (a == "--") { o.entrypoint.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end()); break; }
      else return usage("sandbox create: unknown argument " + a);
    }
    auto r = c.create(o);
    if (!r) return fail(r.error);
    std::printf("%s\n", r.value->id.c_str());
    return 0;
  }
  if (sub == "ls") {
    bool all = false;
    std::string name;
    std::vector<std::pair<std::string, std::string>> tags;
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--all" || args[i] == "-a") all = true;
      else if (args[i] == "--name" && i + 1 < args.size()) name = args[++i];
      else if (args[i] == "--tag" && i + 1 < args.size()) { std::pair<std::string, std::string> p; if (!parse_pair(args[++i], p)) return usage("bad --tag"); tags.push_back(p); }
      else return usage("sandbox ls: unknown argument " + args[i]);
    }
    auto r = c.list(all, name, tags);
    if (!r) return fail(r.error);
    std::printf("%-25s  %-16s  %-11s  %7s  %s\n", "ID", "NAME", "STATUS", "AGE", "NODE");
    const auto now = now_ms();
    for (const auto& v : *r.value) print_sandbox_line(v, now);
    return 0;
  }
  if (sub == "logs") {
    // The entrypoint's output: re-attach to its exec id (never starts anything, P1) and replay.
    if (args.size() != 1) return usage("sandbox logs: give one sandbox id");
    client::exec_options o;
    o.exec_id = "entrypoint";
    o.argv = {"(entrypoint)"};
    return run_exec(c, args[0], o, /*forward_stdin=*/false);
  }
  if (sub == "tags") {
    if (args.empty()) return usage("sandbox tags: missing sandbox id");
    std::optional<std::vector<std::pair<std::string, std::string>>> set;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (!set) set.emplace();
      if (args[i] == "--clear") continue;
      std::pair<std::string, std::string> p;
      if (!parse_pair(args[i], p)) return usage("bad tag " + args[i] + " (K=V)");
      set->push_back(p);
    }
    auto r = c.tags(args[0], set);
    if (!r) return fail(r.error);
    for (const auto& [k, v] : r.value->tags) std::printf("%s=%s\n", k.c_str(), v.c_str());
    return 0;
  }
  if (sub == "info" || sub == "rm" || sub == "wait") {
    if (args.empty()) return usage("sandbox " + sub + ": missing sandbox id");
    std::string id = args[0];
    if (id == "--name") {
      // By name: the tenant's live sandbox of that name (names are unique among live ones).
      if (args.size() < 2) return usage("--name needs a name");
      auto found = c.list(false, args[1], {});
      if (!found) return fail(found.error);
      if (found.value->empty()) return fail({wire::ErrorCode::not_found, "no live sandbox named " + args[1], "name"});
      id = found.value->front().id;
      args.erase(args.begin());
    }
    int64_t timeout = 60000;
    bool until_ready = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--ready" && sub == "wait") until_ready = true;
      else if (args[i] == "--timeout" && i + 1 < args.size()) { if (!parse_seconds(args[++i], timeout)) return usage("bad --timeout"); }
      else return usage("unknown argument " + args[i]);
    }
    auto r = sub == "info" ? c.info(id) : sub == "rm" ? c.terminate(id) : c.wait(id, timeout, until_ready);
    if (!r) return fail(r.error);
    if (sub == "rm") {
      std::printf("%s %s\n", r.value->id.c_str(), wire::to_string(r.value->state));
      return 0;
    }
    print_info(*r.value);
    return 0;
  }
  return usage("sandbox: unknown subcommand " + sub);
}

// Splits "[options] SANDBOX -- ARGV..." / "[options] -- ARGV...".
int parse_exec_args(const std::vector<std::string>& args, bool want_sandbox, std::string& sandbox,
                    client::exec_options& o, int64_t* sandbox_timeout) {
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--") { ++i; break; }
    auto need = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
    const std::string* v = nullptr;
    if (a == "--exec-timeout" || (a == "--timeout" && want_sandbox)) {
      if (!(v = need()) || !parse_seconds(*v, o.timeout_ms)) return usage("bad " + a);
    } else if (a == "--timeout" && sandbox_timeout) {
      if (!(v = need()) || !parse_seconds(*v, *sandbox_timeout)) return usage("bad --timeout");
    } else if (a == "--workdir" && (v = need())) {
      o.workdir = *v;
    } else if (a == "--env" && (v = need())) {
      std::pair<std::string, std::string> p;
      if (!parse_pair(*v, p)) return usage("bad --env");
      o.env.push_back(p);
    } else if (a == "--id" && (v = need())) {
      o.exec_id = *v;
    } else if (a == "-t" || a == "--tty") {
      o.pty = true;
    } else if (want_sandbox && sandbox.empty() && !a.empty() && a[0] != '-') {
      sandbox = a;
    } else {
      return usage("unknown argument " + a);
    }
  }
  for (; i < args.size(); ++i) o.argv.push_back(args[i]);
  if (want_sandbox && sandbox.empty()) return usage("exec: missing sandbox id");
  if (o.argv.empty()) return usage("missing command after --");
  return 0;
}


// `corral token create --tenant T [--data DIR] [--tokens FILE]`: the tenant's NATS identity in
// the deployment under DIR (default ./var; made once, and the running nats-server reloads its
// users), and a new gateway token: sha256(token) and the tenant appended to the tokens file
// (default DIR/tokens, created 0600). Prints the token; only its hash is stored.
int cmd_token(const std::vector<std::string>& args, const std::string& default_tenant) {
  if (args.empty() || (args[0] != "create" && args[0] != "revoke"))
    return usage("token: 'token create' or 'token revoke'");
  const bool revoke = args[0] == "revoke";
  std::string tenant = default_tenant, data = "var", file;
  if (const char* e = std::getenv("CORRAL_TOKENS"); e && *e) file = e;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--tenant" && i + 1 < args.size()) tenant = args[++i];
    else if (args[i] == "--data" && i + 1 < args.size()) data = args[++i];
    else if (args[i] == "--tokens" && i + 1 < args.size()) file = args[++i];
    else return usage("token create: unknown argument " + args[i]);
  }
  if (!wire::valid_token(tenant)) return usage("token create: bad tenant " + tenant);
  if (wire::subjects::reserved_tenant(tenant))
    return usage("token create: '" + tenant + "' is reserved by the protocol");
  if (file.empty()) file = cli::up_layout{data}.tokens_file();
  std::string error;
  if (revoke) {
    bool removed = false;
    if (!cli::revoke_tenant_identity(data, tenant, &removed, &error)) {
      std::cerr << "corral: " << error << "\n";
      return 1;
    }
    auto tokens = cli::remove_tokens(tenant, file, &error);
    if (!tokens) {
      std::cerr << "corral: " << error << "\n";
      return 1;
    }
    std::cerr << "corral: tenant '" << tenant << "': "
              << (removed ? "NATS identity removed" : "no NATS identity") << ", " << *tokens
              << " gateway token(s) removed\n";
    return 0;
  }
  bool created = false;
  auto seed = cli::ensure_tenant_identity(data, tenant, &created, &error);
  if (!seed) {
    std::cerr << "corral: " << error << "\n";
    return 1;
  }
  auto token = cli::create_token(tenant, file, &error);
  if (!token) {
    std::cerr << "corral: " << error << "\n";
    return 1;
  }
  std::cerr << "corral: tenant '" << tenant << "': NATS credentials " << *seed
            << (created ? " (new)" : "") << "; reply subjects under "
            << wire::subjects::tenant_inbox_prefix(tenant)
            << ". The HTTP token, printed once:\n";
  std::cout << *token << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  client::session::config cfg;
  if (const char* e = std::getenv("CORRAL_NATS_URL"); e && *e) cfg.nats_url = e;
  if (const char* e = std::getenv("CORRAL_NATS_CREDS"); e && *e) cfg.nats_creds = e;
  if (const char* e = std::getenv("CORRAL_NATS_CA"); e && *e) cfg.nats_ca = e;
  if (const char* e = std::getenv("CORRAL_TENANT"); e && *e) cfg.tenant = e;
  if (const char* e = std::getenv("CORRAL_POOL"); e && *e) cfg.pool = e;
  std::vector<std::string> args(argv + 1, argv + argc);
  while (!args.empty() && args[0].rfind("--", 0) == 0 && args[0] != "--") {
    if (args.size() < 2 && args[0] != "--help") return usage("missing value for " + args[0]);
    if (args[0] == "--help") return usage(), 0;
    if (args[0] == "--nats") cfg.nats_url = args[1];
    else if (args[0] == "--nats-creds") cfg.nats_creds = args[1];
    else if (args[0] == "--nats-ca") cfg.nats_ca = args[1];
    else if (args[0] == "--tenant") cfg.tenant = args[1];
    else if (args[0] == "--pool") cfg.pool = args[1];
    else return usage("unknown option " + args[0]);
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty()) return usage();
  const auto cmd = args[0];
  args.erase(args.begin());
  if (cmd == "help" || cmd == "-h") return usage(), 0;
  if (cfg.nats_creds.empty()) {
    // `corral up`'s own layout, from the directory it was started in.
    const std::string local = cli::up_layout{"var"}.tenant_seed_file(cfg.tenant);
    if (::access(local.c_str(), F_OK) == 0) cfg.nats_creds = local;
  }
  if (cmd == "up") return cli::run_up(args, argv[0]);
  if (cmd == "token") return cmd_token(args, cfg.tenant);
  if (cmd == "sweep") return cli::sweep::run_command(args, cfg);  // connects when it has work

  std::string error;
  auto c = client::session::connect(cfg, &error);
  if (!c) {
    std::cerr << "corral: cannot reach NATS at " << cfg.nats_url << ": " << error << "\n";
    return 1;
  }
  if (cmd == "sandbox" || cmd == "sb") return cmd_sandbox(*c, args);
  if (cmd == "usage") return cmd_usage(*c, args);
  if (cmd == "fs") return cli::run_fs_command(*c, args);
  if (cmd == "exec") {
    std::string sandbox;
    client::exec_options o;
    if (int rc = parse_exec_args(args, true, sandbox, o, nullptr)) return rc;
    leave(run_exec(*c, sandbox, o));
  }
  if (cmd == "run") {
    std::string unused;
    client::exec_options o;
    int64_t sandbox_timeout = 0;
    if (int rc = parse_exec_args(args, false, unused, o, &sandbox_timeout)) return rc;
    client::create_options co;
    co.timeout_ms = sandbox_timeout;
    auto sb = c->create(co);
    if (!sb) return fail(sb.error);
    const int code = run_exec(*c, sb.value->id, o);
    auto t = c->terminate(sb.value->id);
    if (!t) std::cerr << "corral: could not remove " << sb.value->id << ": " << t.error.message << "\n";
    leave(code);
  }
  return usage("unknown command " + cmd);
}
