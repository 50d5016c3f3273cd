#include "cli/commands/exec_io.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <vector>

#include "cli/commands/command.hpp"
#include "client/write_all.hpp"

namespace corral::cli {

namespace {

constexpr std::size_t stdin_read_bytes = 256 * 1024;

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

// SIGWINCH: the local terminal changed size. The handler only raises the flag; the exec's loop
// reads the new size (window_changed below).
std::atomic<bool> window_flag{false};
extern "C" void on_sigwinch(int) { window_flag.store(true); }

bool terminal_size(uint16_t& rows, uint16_t& cols) {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0) return false;
  rows = ws.ws_row;
  cols = ws.ws_col;
  return true;
}

}  // namespace

[[noreturn]] void leave(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

int run_exec(client::session& c, const std::string& sandbox, exec_options opts, bool forward_stdin) {
  // Without a pty, a terminal's stdin is not forwarded (it would never end); with one, it is:
  // the remote program reads the keys.
  opts.stdin_open = forward_stdin && (opts.pty || ::isatty(STDIN_FILENO) == 0);
  std::optional<raw_terminal> raw;
  if (opts.pty) {
    struct sigaction sa {};
    sa.sa_handler = on_sigwinch;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGWINCH, &sa, nullptr);
    (void)terminal_size(opts.rows, opts.cols);
    opts.window_changed = [rows = opts.rows, cols = opts.cols](uint16_t& r, uint16_t& c) mutable {
      if (!window_flag.exchange(false)) return false;
      uint16_t nr = 0, nc = 0;
      if (!terminal_size(nr, nc) || (nr == rows && nc == cols)) return false;
      rows = r = nr;
      cols = c = nc;
      return true;
    };
    raw.emplace();
  }
  client::session::stdin_fn source;
  if (opts.stdin_open) {
    source = []() -> std::optional<std::vector<uint8_t>> {
      std::vector<uint8_t> buf(stdin_read_bytes);
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
                    (void)client::write_all(fd, p, n);
                  },
                  source);
  if (!r) return fail(r.error());
  const auto& x = *r;
  if (x.outcome != wire::Outcome::exited && x.outcome != wire::Outcome::signaled) {
    std::cerr << "corral: exec " << wire::to_string(x.outcome)
              << (x.message.empty() ? "" : ": " + x.message) << "\n";
  }
  return x.exit_code;
}

}  // namespace corral::cli

namespace corral::cli {

int parse_exec_args(const verb& v, const std::vector<std::string>& args, bool want_sandbox,
                    std::string& sandbox, exec_options& o, int64_t* sandbox_timeout) {
  arg_reader r(args);
  std::string val;
  while (r.next()) {
    const auto& a = r.arg();
    if (a == "--exec-timeout" || (a == "--timeout" && want_sandbox)) {
      if (!r.value(val) || !parse_seconds(val, o.timeout_ms)) return usage_error(v, "bad " + a);
    } else if (a == "--timeout" && sandbox_timeout) {
      if (!r.value(val) || !parse_seconds(val, *sandbox_timeout)) return usage_error(v, "bad --timeout");
    } else if (a == "--workdir") {
      if (!r.value(o.workdir)) return usage_error(v, "--workdir needs a directory");
    } else if (a == "--env") {
      std::pair<std::string, std::string> p;
      if (!r.value(val) || !parse_pair(val, p)) return usage_error(v, "bad --env (K=V)");
      o.env.push_back(p);
    } else if (a == "--id") {
      if (!r.value(o.exec_id)) return usage_error(v, "--id needs an exec id");
    } else if (a == "-t" || a == "--tty") {
      o.pty = true;
    } else if (want_sandbox && sandbox.empty() && !a.empty() && a[0] != '-') {
      sandbox = a;
    } else {
      return usage_error(v, "unknown argument " + a);
    }
  }
  o.argv = r.rest();
  if (want_sandbox && sandbox.empty()) return usage_error(v, "missing sandbox id");
  if (o.argv.empty()) return usage_error(v, "missing command after --");
  return 0;
}

}  // namespace corral::cli
