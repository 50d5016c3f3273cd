// The gateway's two figures (docs/operations.md, "The gateway"), each next to its baseline measured in the
// same run, against a real nats-server, corral-executor (runsc sandboxes) and corral-gateway:
//
//  1. overhead: the exec round trip of `echo x` in a warm sandbox, request to exit status,
//     (a) through HTTP as a client makes it: POST .../exec, then GET .../output?follow=1 read
//         until the exit frame, on one keep-alive connection (a new one when the gateway closed
//         it: that cost is the gateway's too);
//     (b) straight over NATS with the corral client library (client::session::exec), the baseline;
//     (c) straight over NATS with bus/ alone, the leanest client: subscribe to the output
//         (nats.c's shared delivery pool, as the gateway does), the exec request, wait for the
//         exit frame;
//     interleaved run by run (the order rotating). Goal: p50(a) - p50(b) <= 2 ms; (a) - (c) is
//     printed too.
//  2. fan-out: N WebSocket output streams open at once through one gateway (default 1,000).
//     They follow E execs (default 200: 10 sandboxes x 20), V = N / E streams per exec (5):
//     each stream is a WebSocket, a NATS subscription and an output pump of its own in the
//     gateway, so the gateway does the work of N streams, while the host runs E sandboxed
//     processes (under runsc's ptrace platform one process costs ~40 host tasks, and 1,000 of
//     them hit this host's pid_max of 32768; --viewers 1 runs one exec per stream where the
//     host allows). Each exec is a small static program that writes one line every interval
//     (default 200 ms, a random phase each) holding its CLOCK_REALTIME; the bench (one thread,
//     asynchronous Asio/Beast clients) stamps each line on receipt, on the same host clock.
//     Chunk latency = receipt - write, over the lines written while all N streams are open
//     (older lines replayed to a late viewer do not count). A text "eof" on every WebSocket
//     then closes the programs' stdin, and every stream must end with its exit frame (exit 0).
//     Goal: p99 <= 50 ms.
//
//  3. fairness: tenant B's latency, p50 and p99, of a sandbox info (GET) and of the exec round
//     trip of (1a), first with the gateway otherwise idle, then while tenant A holds its maximum
//     of output streams (--hog-streams, its token's max_streams) and keeps --hog-stdin stdin
//     POSTs of 1.3 MiB pending to processes that never read (each re-sent when answered), in the
//     same run. Goal (docs/security.md, "A tenant vs. the gateway"): p99 under load <= 2x idle.
//
// The figures are printed with the host's load average and the CPU each component used during
// the fan-out window: on a shared 2-core machine, read them with the load.
//
// Usage: gateway_bench [--runs N] [--streams N] [--sandboxes N] [--viewers V] [--interval-ms MS]
//                      [--seconds S] [--hog-streams N] [--hog-stdin N]
//                      [--only overhead|streams|fairness] [-- EXECUTOR FLAGS...]
// Needs root (runsc), nats-server, the built corral, corral-executor, corral-init, corral-gateway
// and corral-runsc (deploy/build.sh), and a C compiler for the ticking program.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "bench/bench_support.hpp"
#include "bus/connection.hpp"
#include "client/client.hpp"
#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"
#include "tests/gateway_harness.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"

namespace {

using corral::bench::load_average;
using corral::bench::ms_since;
using corral::bench::stats;
using corral::bench::summarize;

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void print(const char* what, const stats& s) {
  std::printf("  %-46s p50 %7.2f ms   p95 %7.2f ms   min %7.2f ms\n", what, s.p50, s.p95, s.min);
}

// CPU seconds (user + system) a process used so far, from /proc/PID/stat.
double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(all.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) {
      stime = std::stod(field);
      break;
    }
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}
double own_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}
// CPU seconds the sandboxes used (runsc's sentry, gofer and their tasks), from their cgroups
// (v1 cpuacct, as corral-executor lays them out); negative when not found.
double sandboxes_cpu_seconds(const std::vector<std::string>& ids) {
  double total = 0;
  for (const auto& id : ids) {
    std::ifstream f("/sys/fs/cgroup/cpuacct/corral/" + id + "/cpuacct.usage");
    unsigned long long ns = 0;
    if (!(f >> ns)) return -1;
    total += static_cast<double>(ns) / 1e9;
  }
  return total;
}
// Host CPU seconds busy (all cores), from /proc/stat.
double host_busy_seconds() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  f >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The program each fan-out exec runs: a line "<n> <CLOCK_REALTIME ns>" every interval_ms (after a
// random phase), until its stdin ends; with a line count, that many lines (no waiting).
const char* ticker_source = R"(
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char** argv) {
  int interval = argc > 1 ? atoi(argv[1]) : 200;
  long lines = argc > 2 ? atol(argv[2]) : 0;
  struct pollfd in = {0, POLLIN, 0};
  struct timespec ts;
  char buf[64];
  clock_gettime(CLOCK_REALTIME, &ts);
  if (lines == 0 && interval > 0 &&
      poll(&in, 1, (int)((ts.tv_nsec / 1000 + getpid() * 7919L) % interval)) != 0)
    return 0;
  for (long i = 0; lines == 0 || i < lines; ++i) {
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(buf, sizeof buf, "%ld %lld\n", i, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    if (write(1, buf, n) != n) return 1;
    if (lines != 0) continue;
    if (poll(&in, 1, interval) != 0) return 0; /* stdin ended: the bench says stop */
  }
  return 0;
}
)";

// A blocking HTTP/1.1 client on one keep-alive connection (reconnects when the server closed it).
class http_client {
 public:
  explicit http_client(uint16_t port, std::string token) : port_(port), token_(std::move(token)) {}

  struct reply {
    unsigned status = 0;
    std::string body;
  };
  reply call(http::verb method, const std::string& target, const std::string& body = {}) {
    reply out;
    if (!connect()) return out;
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + token_);
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    beast::error_code ec;
    http::write(*stream_, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (!ec) http::read(*stream_, buffer_, parser, ec);
    if (ec) {
      stream_.reset();
      return out;
    }
    out.status = parser.get().result_int();
    out.body = parser.get().body();
    if (!parser.get().keep_alive()) stream_.reset();
    return out;
  }

  // GET of an NDJSON output stream; returns once the exit frame has arrived (the rest of the
  // response is then read, outside the caller's timing, through finish_stream()).
  std::optional<json> follow_until_exit(const std::string& target, std::string* stdout_data) {
    if (!connect()) return std::nullopt;
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + token_);
    req.keep_alive(true);
    beast::error_code ec;
    http::write(*stream_, req, ec);
    if (ec) return fail();
    parser_.emplace();
    parser_->body_limit(64 * 1024 * 1024);
    std::size_t scanned = 0;
    for (;;) {
      http::read_some(*stream_, buffer_, *parser_, ec);
      if (ec) return fail();
      auto& body = parser_->get().body();
      for (auto nl = body.find('\n', scanned); nl != std::string::npos; nl = body.find('\n', scanned)) {
        auto line = json::parse(body.substr(scanned, nl - scanned), nullptr, false);
        scanned = nl + 1;
        if (line.is_discarded()) continue;
        if (line.contains("exit")) return line["exit"];
        if (line.contains("error")) return std::nullopt;
        if (stdout_data && line.value("stream", "") == "stdout") *stdout_data += line.value("data", "");
      }
      if (parser_->is_done()) return std::nullopt;
    }
  }
  void finish_stream() {
    if (!stream_ || !parser_) return;
    beast::error_code ec;
    while (!parser_->is_done() && !ec) http::read_some(*stream_, buffer_, *parser_, ec);
    if (ec || !parser_->get().keep_alive()) stream_.reset();
    parser_.reset();
  }
  int connects() const { return connects_; }

 private:
  std::nullopt_t fail() {
    stream_.reset();
    parser_.reset();
    return std::nullopt;
  }
  bool connect() {
    if (stream_) return true;
    stream_.emplace(ioc_);
    buffer_.clear();
    beast::error_code ec;
    stream_->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    if (ec) {
      stream_.reset();
      return false;
    }
    stream_->socket().set_option(tcp::no_delay(true), ec);
    ++connects_;
    return true;
  }

  asio::io_context ioc_;
  uint16_t port_;
  std::string token_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  int connects_ = 0;
};

// -- fan-out: one asynchronous client per stream, all on one thread --------------------------

struct fanout {
  asio::io_context ioc;
  uint16_t port = 0;
  std::string token;
  int interval_ms = 200;
  std::size_t total = 0;
  std::size_t setup_parallel = 32;  // streams being set up (connect, handshake) at once

  std::size_t launched = 0, flowing = 0, ended = 0, failed = 0, bad_exit = 0;
  bool window_open = false, window_done = false;
  clk::time_point window_start, window_end;
  int64_t window_start_ns = 0, window_end_ns = 0;  // CLOCK_REALTIME
  std::vector<double> latencies_ms;  // lines written in the window
  std::size_t lines_total = 0;
  std::vector<std::string> errors;
  bool aborted = false;  // a stream failed before all were flowing: no more launches
  std::function<void()> on_all_flowing;
  std::function<void()> launch_next;
  std::function<void()> on_stream_end;
};

class stream_client : public std::enable_shared_from_this<stream_client> {
 public:
  stream_client(fanout& f, std::string sandbox, std::string exec_id)
      : f_(f), sb_(std::move(sandbox)), eid_(std::move(exec_id)), ws_(asio::make_strand(f.ioc)) {}

  void start() {
    auto& s = beast::get_lowest_layer(ws_);
    s.expires_after(120s);
    s.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), f_.port),
                    [self = shared_from_this()](beast::error_code ec) { self->on_connect(ec); });
  }
  // Closes the program's stdin: it exits, and the stream ends with the exit frame.
  void send_eof() {
    if (done_ || !open_ || eof_sent_) return;
    eof_sent_ = writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(eof_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      if (ec) return self->fail("eof: " + ec.message());
      if (self->done_) self->close();
    });
  }

 private:
  void on_connect(beast::error_code ec) {
    if (ec) return fail("connect: " + ec.message());
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
    ws_.set_option(websocket::stream_base::decorator([token = f_.token](websocket::request_type& r) {
      r.set(http::field::authorization, "Bearer " + token);
    }));
    ws_.read_message_max(1024 * 1024);
    ws_.async_handshake("127.0.0.1", "/v1/sandboxes/" + sb_ + "/execs/" + eid_ + "/ws",
                        [self = shared_from_this()](beast::error_code ec) {
                          if (ec) return self->fail("handshake: " + ec.message());
                          beast::get_lowest_layer(self->ws_).expires_never();
                          self->open_ = true;
                          self->opened_ns_ = realtime_ns();
                          ++self->f_.launched;
                          if (self->f_.launch_next) self->f_.launch_next();
                          self->read_next();
                        });
  }
  void read_next() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      const int64_t now = realtime_ns();
      if (ec) return self->fail("read: " + ec.message());
      self->on_frame(now);
    });
  }
  void on_frame(int64_t now) {
    const std::string data = beast::buffers_to_string(buf_.data());
    buf_.consume(buf_.size());
    if (!ws_.got_binary()) {  // the exit frame
      auto j = json::parse(data, nullptr, false);
      if (j.is_discarded() || j.value("returncode", -1) != 0) {
        ++f_.bad_exit;
        if (f_.errors.size() < 5) f_.errors.push_back("exit: " + data);
      }
      done_ = true;
      ++f_.ended;
      if (!writing_) close();  // else once the eof is written
      if (f_.on_stream_end) f_.on_stream_end();
      return;
    }
    if (!data.empty() && data[0] == 1) {
      carry_.append(data, 1, std::string::npos);
      std::size_t at = 0;
      for (auto nl = carry_.find('\n'); nl != std::string::npos; nl = carry_.find('\n', at)) {
        std::istringstream line(carry_.substr(at, nl - at));
        long n = 0;
        long long stamp = 0;
        at = nl + 1;
        if (!(line >> n >> stamp)) continue;
        ++f_.lines_total;
        if (f_.window_start_ns != 0 && stamp >= f_.window_start_ns &&
            (f_.window_end_ns == 0 || stamp < f_.window_end_ns))
          f_.latencies_ms.push_back((now - stamp) / 1e6);
        if (!flowing_ && stamp >= opened_ns_) {  // a live line, not one replayed
          flowing_ = true;
          if (++f_.flowing == f_.total && f_.on_all_flowing) f_.on_all_flowing();
        }
      }
      carry_.erase(0, at);
    }
    read_next();
  }
  void close() {
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {});
  }
  void fail(const std::string& why) {
    if (done_) return;
    done_ = true;
    ++f_.failed;
    if (f_.errors.size() < 5) f_.errors.push_back(sb_ + ": " + why);
    if (!open_) {
      ++f_.launched;
      if (f_.launch_next) f_.launch_next();
    }
    if (f_.on_stream_end) f_.on_stream_end();
  }

  fanout& f_;
  std::string sb_, eid_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  int64_t opened_ns_ = 0;
  std::string carry_;
  const std::string eof_ = "eof";
  bool open_ = false, flowing_ = false, done_ = false, eof_sent_ = false, writing_ = false;
};

// Tenant A of the fairness figure, on an io_context of its own: output streams held open, and
// stdin POSTs kept pending (each re-sent once answered) until stop().
class hog {
 public:
  hog(uint16_t port, std::string token) : port_(port), token_(std::move(token)) {}
  ~hog() { stop(); }

  void hold_stream(const std::string& target) {
    auto s = std::make_shared<tcp::socket>(ioc_);
    auto buf = std::make_shared<std::string>();
    s->async_connect({asio::ip::make_address("127.0.0.1"), port_}, [this, s, buf, target](beast::error_code ec) {
      if (ec) return;
      *buf = request("GET", target, 0);
      asio::async_write(*s, asio::buffer(*buf), [this, s, buf](beast::error_code ec, std::size_t) {
        if (ec) return;
        buf->clear();
        asio::async_read_until(*s, asio::dynamic_buffer(*buf), "\r\n\r\n",
                               [this, s, buf](beast::error_code ec, std::size_t) {
                                 if (ec) return;
                                 if (buf->rfind("HTTP/1.1 200", 0) == 0) ++streams_open;
                                 else ++refused;
                                 drain(s);
                               });
      });
    });
  }

  void keep_posting(const std::string& target, std::shared_ptr<const std::string> body) {
    if (stopped_) return;
    auto s = std::make_shared<tcp::socket>(ioc_);
    auto buf = std::make_shared<std::string>(request("POST", target, body->size()) + *body);
    s->async_connect({asio::ip::make_address("127.0.0.1"), port_}, [this, s, buf, target, body](beast::error_code ec) {
      if (ec) return;
      asio::async_write(*s, asio::buffer(*buf), [this, s, buf, target, body](beast::error_code ec, std::size_t) {
        if (ec) return;
        ++posts_sent;
        buf->clear();
        asio::async_read_until(*s, asio::dynamic_buffer(*buf), "\r\n\r\n",
                               [this, s, buf, target, body](beast::error_code, std::size_t) {
                                 ++posts_answered;
                                 beast::error_code ignored;
                                 s->close(ignored);
                                 keep_posting(target, body);
                               });
      });
    });
  }

  void run() { thread_ = std::thread([this] { ioc_.run(); }); }
  void stop() {
    stopped_ = true;
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  std::atomic<int> streams_open{0}, refused{0}, posts_sent{0}, posts_answered{0};

 private:
  std::string request(const std::string& method, const std::string& target, std::size_t body) {
    std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                    token_ + "\r\n";
    if (body > 0) r += "Content-Length: " + std::to_string(body) + "\r\n";
    return r + "\r\n";
  }
  void drain(const std::shared_ptr<tcp::socket>& s) {
    auto chunk = std::make_shared<std::array<char, 4096>>();
    s->async_read_some(asio::buffer(*chunk), [this, s, chunk](beast::error_code ec, std::size_t) {
      if (!ec) drain(s);
    });
  }

  uint16_t port_;
  std::string token_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

int main(int argc, char** argv) {
  int runs = 200;
  std::size_t streams = 1000, sandboxes = 10, viewers = 5;
  int interval_ms = 200;
  int seconds = 20;
  std::size_t hog_streams = 64, hog_stdin = 12;
  std::string only;
  std::vector<std::string> executor_args;  // after "--": passed to corral-executor
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      executor_args.assign(argv + i + 1, argv + argc);
      break;
    }
    if (i + 1 >= argc) {
      std::cerr << "missing value for " << a << "\n";
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--runs") runs = std::max(10, std::stoi(v));
    else if (a == "--streams") streams = std::max<std::size_t>(1, std::stoul(v));
    else if (a == "--sandboxes") sandboxes = std::max<std::size_t>(1, std::stoul(v));
    else if (a == "--viewers") viewers = std::max<std::size_t>(1, std::stoul(v));
    else if (a == "--interval-ms") interval_ms = std::max(10, std::stoi(v));
    else if (a == "--seconds") seconds = std::max(1, std::stoi(v));
    else if (a == "--only") only = v;
    else if (a == "--hog-streams") hog_streams = std::max<std::size_t>(1, std::stoul(v));
    else if (a == "--hog-stdin") hog_stdin = std::stoul(v);
    else {
      std::cerr << "usage: gateway_bench [--runs N] [--streams N] [--sandboxes N] [--viewers V] [--interval-ms MS]"
                   " [--seconds S] [--hog-streams N] [--hog-stdin N] [--only overhead|streams|fairness]"
                   " [-- EXECUTOR FLAGS...]\n";
      return 2;
    }
  }
  // Two sockets per stream here, one more in the gateway: lift the descriptor limit (inherited
  // by the children).
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &nofile);
  }
  const std::string load_before = load_average();

  corral::test::deployment::options o;
  o.node = "gwbench";
  o.tenant = "bench";
  // The tenant's exec rate quota (100/s by default) is not what is measured here: on a quiet
  // machine the interleaved round trips run faster than it and would be refused.
  o.executor_args = {"--max-sandboxes", std::to_string(std::max<std::size_t>(16, sandboxes + 4)),
                     "--tenant-execs-per-second", "100000"};
  o.executor_args.insert(o.executor_args.end(), executor_args.begin(), executor_args.end());
  corral::test::deployment d(o);
  std::string why;
  if (!d.start(&why)) {
    std::cerr << why << "\n";
    return 1;
  }
  corral::test::gateway_process gw;
  // The fan-out is one tenant's: its limit is the gateway's (only then is the flag given, so
  // that --only overhead|fairness also run against an older gateway: CORRAL_TEST_GATEWAY_BIN).
  const auto max_streams = std::to_string(streams + hog_streams + 64);
  std::vector<std::string> gw_flags = {"--max-streams", max_streams};
  if (only.empty() || only == "streams") {
    gw_flags.push_back("--tenant-max-streams");
    gw_flags.push_back(max_streams);
  }
  if (!gw.start(d, &why, gw_flags)) {
    std::cerr << why << "\n";
    return 1;
  }
  const std::string token = gw.new_token(d, "bench");
  const uint16_t port = gw.port();

  corral::client::session::config cc;
  cc.nats_url = d.nats().url();
  cc.tenant = "bench";
  auto nats = corral::client::session::connect(cc, &why);
  if (!nats) {
    std::cerr << why << "\n";
    return 1;
  }
  http_client web(port, token);
  auto create = [&]() -> std::string {
    auto r = web.call(http::verb::post, "/v1/sandboxes", json{{"timeout", 1800}}.dump());
    if (r.status != 201) {
      std::cerr << "create: " << r.status << " " << r.body << "\n";
      return {};
    }
    return json::parse(r.body).value("id", "");
  };

  // -- 1. overhead ----------------------------------------------------------------------------
  if (only.empty() || only == "overhead") {
    const std::string sb = create();
    if (sb.empty()) return 1;
    std::vector<double> http_post, http_get;  // the two requests of (a), apart
    std::vector<double> bus_request;          // the exec request of (c)
    auto over_http = [&]() -> bool {
      const auto t0 = clk::now();
      auto r = web.call(http::verb::post, "/v1/sandboxes/" + sb + "/exec",
                        R"({"args": ["echo", "x"], "stdin": false})");
      http_post.push_back(ms_since(t0));
      if (r.status != 201) {
        std::cerr << "POST exec: " << r.status << " " << r.body << "\n";
        return false;
      }
      const auto eid = json::parse(r.body).value("exec_id", "");
      std::string out;
      const auto t1 = clk::now();
      auto exit = web.follow_until_exit("/v1/sandboxes/" + sb + "/execs/" + eid + "/output?follow=1", &out);
      http_get.push_back(ms_since(t1));
      return exit && (*exit)["returncode"] == 0 && out == "eAo=";  // base64 of "x\n"
    };
    auto over_nats = [&]() -> bool {
      corral::client::exec_options eo;
      eo.argv = {"echo", "x"};
      std::string out;
      auto r = nats->exec(sb, eo, [&](corral::wire::Stream, const uint8_t* p, std::size_t n) {
        out.append(reinterpret_cast<const char*>(p), n);
      });
      return r && r->exit_code == 0 && out == "x\n";
    };
    corral::bus::options bo;
    bo.urls = {d.nats().url()};
    bo.delivery_pool_threads = 4;
    auto raw = corral::bus::connection::connect(bo, &why);
    if (!raw) {
      std::cerr << why << "\n";
      return 1;
    }
    auto over_bus = [&]() -> bool {
      namespace wire = corral::wire;
      const auto eid = wire::new_exec_id();
      struct exec_state {
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        int code = -1;
        std::string out;
      };
      auto st = std::make_shared<exec_state>();
      auto sub = raw->subscribe(wire::subjects::output("bench", sb, eid), "", [st](corral::bus::message&& m) {
        std::lock_guard<std::mutex> lock(st->mu);
        if (const auto* c = wire::verify<wire::OutputChunk>(m.data.data(), m.data.size())) {
          if (c->data()) st->out.append(reinterpret_cast<const char*>(c->data()->data()), c->data()->size());
        } else if (const auto* x = wire::verify<wire::ExecExit>(m.data.data(), m.data.size())) {
          st->done = true;
          st->code = x->status() ? x->status()->exit_code() : -1;
          st->cv.notify_all();
        }
      });
      if (!sub) return false;
      flatbuffers::FlatBufferBuilder fbb(256);
      auto id = fbb.CreateString(eid);
      auto argv = fbb.CreateVectorOfStrings(std::vector<std::string>{"echo", "x"});
      auto env = wire::build_pairs(fbb, {});
      auto wd = fbb.CreateString("");
      fbb.Finish(wire::CreateExecRequest(fbb, id, argv, env, wd, 0, false, false, 0, 0),
                 wire::ExecRequestIdentifier());
      const auto payload = wire::release(fbb);
      const auto t0 = clk::now();
      auto r = raw->request(wire::subjects::sandbox_op("bench", sb, "exec"), payload.data(), payload.size(), 30000);
      bus_request.push_back(ms_since(t0));
      if (!r || !wire::verify<wire::ExecReply>(r.value().data.data(), r.value().data.size())) return false;
      std::unique_lock<std::mutex> lock(st->mu);
      st->cv.wait_for(lock, 30s, [&] { return st->done; });
      return st->done && st->code == 0 && st->out == "x\n";
    };
    const char* names[3] = {"HTTP", "NATS client library", "NATS bus only"};
    std::function<bool()> variants[3] = {over_http, over_nats, over_bus};
    for (int i = 0; i < 10; ++i) {  // warm up every path
      for (int k = 0; k < 3; ++k)
        if (!variants[k]()) {
          std::cerr << "warm-up exec failed: " << names[k] << "\n";
          return 1;
        }
      web.finish_stream();
    }
    const int connects_before = web.connects();
    http_post.clear();
    http_get.clear();
    bus_request.clear();
    std::vector<double> times[3];
    for (int i = 0; i < runs; ++i) {
      for (int k = 0; k < 3; ++k) {
        const int v = (i + k) % 3;
        const auto t0 = clk::now();
        const bool ok = variants[v]();
        const double t = ms_since(t0);
        if (!ok) {
          std::cerr << names[v] << " exec failed\n";
          return 1;
        }
        times[v].push_back(t);
        if (v == 0) web.finish_stream();
      }
    }
    const int reconnects = web.connects() - connects_before;
    (void)web.call(http::verb::post, "/v1/sandboxes/" + sb + "/terminate");
    const auto h = summarize(times[0]), n = summarize(times[1]), b = summarize(times[2]);
    std::printf("gateway_bench: exec round trip of `echo x`, request to exit status, %d runs each, "
                "interleaved (load before: %s; now: %s)\n",
                runs, load_before.c_str(), load_average().c_str());
    print("(a) HTTP: POST exec + GET output?follow=1", h);
    print("    of which POST exec (201)", summarize(http_post));
    print("    of which GET output until the exit frame", summarize(http_get));
    print("(b) NATS: corral client library", n);
    print("(c) NATS: bus/ alone (pooled delivery)", b);
    print("    of which the exec request (reply)", summarize(bus_request));
    std::printf("  p50 (a) - (b): %+.2f ms (goal <= +2 ms)   p50 (a) - (c): %+.2f ms   "
                "p95 (a) - (b): %+.2f ms   HTTP connections opened: %d for %d runs\n",
                h.p50 - n.p50, h.p50 - b.p50, h.p95 - n.p95, reconnects, runs);
    std::fflush(stdout);
  }

  // -- 3. fairness ----------------------------------------------------------------------------
  if (only == "fairness" || only.empty()) {
    const std::string sb_b = create();
    if (sb_b.empty()) return 1;
    const std::string a_token = gw.add_token("hog", "max_streams=" + std::to_string(hog_streams));
    http_client a_web(port, a_token);
    auto r = a_web.call(http::verb::post, "/v1/sandboxes", json{{"timeout", 1800}}.dump());
    if (r.status != 201) {
      std::cerr << "A's create: " << r.status << " " << r.body << "\n";
      return 1;
    }
    const std::string sb_a = json::parse(r.body).value("id", "");
    auto a_exec = [&](bool stdin_open) -> std::string {
      auto e = a_web.call(http::verb::post, "/v1/sandboxes/" + sb_a + "/exec",
                          json{{"args", {"sleep", "3600"}}, {"stdin", stdin_open}}.dump());
      return e.status == 201 ? json::parse(e.body).value("exec_id", "") : std::string();
    };
    const std::string a_quiet = a_exec(false);
    std::vector<std::string> a_readers;
    for (std::size_t i = 0; i < hog_stdin; ++i) a_readers.push_back(a_exec(true));
    if (a_quiet.empty() || std::count(a_readers.begin(), a_readers.end(), std::string()) > 0) {
      std::cerr << "A's execs failed\n";
      return 1;
    }
    // B: a sandbox info, then an exec round trip; interleaved, `runs` of each.
    std::vector<double> info_times, exec_times;
    auto measure = [&](int n) -> bool {
      info_times.clear();
      exec_times.clear();
      for (int i = 0; i < n; ++i) {
        auto t0 = clk::now();
        auto info = web.call(http::verb::get, "/v1/sandboxes/" + sb_b);
        info_times.push_back(ms_since(t0));
        if (info.status != 200) {
          std::cerr << "B's info: " << info.status << " " << info.body << "\n";
          return false;
        }
        t0 = clk::now();
        auto e = web.call(http::verb::post, "/v1/sandboxes/" + sb_b + "/exec",
                          R"({"args": ["echo", "x"], "stdin": false})");
        if (e.status != 201) {
          std::cerr << "B's exec: " << e.status << " " << e.body << "\n";
          return false;
        }
        auto exit = web.follow_until_exit(
            "/v1/sandboxes/" + sb_b + "/execs/" + json::parse(e.body).value("exec_id", "") + "/output?follow=1",
            nullptr);
        exec_times.push_back(ms_since(t0));
        web.finish_stream();
        if (!exit || (*exit)["returncode"] != 0) {
          std::cerr << "B's exec did not end well\n";
          return false;
        }
      }
      return true;
    };
    if (!measure(10)) return 1;  // warm up
    const std::string load_idle_before = load_average();
    if (!measure(runs)) return 1;
    const auto info_idle = summarize(info_times), exec_idle = summarize(exec_times);
    const std::string load_idle = load_average();

    hog h(port, a_token);
    for (std::size_t i = 0; i < hog_streams + 1; ++i)  // one more than A may have
      h.hold_stream("/v1/sandboxes/" + sb_a + "/execs/" + a_quiet + "/output?follow=1");
    auto body = std::make_shared<const std::string>(1300 * 1024, 'z');
    for (const auto& eid : a_readers)
      h.keep_posting("/v1/sandboxes/" + sb_a + "/execs/" + eid + "/stdin", body);
    h.run();
    const auto deadline = clk::now() + 60s;
    while ((static_cast<std::size_t>(h.streams_open.load()) < hog_streams ||
            static_cast<std::size_t>(h.posts_sent.load()) < hog_stdin) &&
           clk::now() < deadline)
      std::this_thread::sleep_for(20ms);
    const int open_at_start = h.streams_open.load();
    const std::string load_busy_before = load_average();
    const bool ok = measure(runs);
    const std::string load_busy = load_average();
    const int open = h.streams_open.load(), refused = h.refused.load();
    const int sent = h.posts_sent.load(), answered = h.posts_answered.load();
    h.stop();
    if (!ok) return 1;
    const auto info_busy = summarize(info_times), exec_busy = summarize(exec_times);
    (void)a_web.call(http::verb::post, "/v1/sandboxes/" + sb_a + "/terminate");
    (void)web.call(http::verb::post, "/v1/sandboxes/" + sb_b + "/terminate");
    std::printf("gateway_bench: fairness, tenant B's latency, %d runs each, idle vs while tenant A holds "
                "%d of its %zu streams (%d more refused) and %zu stdin POSTs of 1.3 MiB to processes that "
                "never read (%d sent, %d answered meanwhile)\n",
                runs, open_at_start, hog_streams, refused, hog_stdin, sent, answered);
    std::printf("  load idle: %s -> %s; under A: %s -> %s\n", load_idle_before.c_str(),
                load_idle.c_str(), load_busy_before.c_str(), load_busy.c_str());
    auto row = [](const char* what, const stats& idle, const stats& busy) {
      std::printf("  %-34s idle p50 %7.2f ms  p99 %7.2f ms   under A p50 %7.2f ms  p99 %7.2f ms   "
                  "p99 ratio %.2f (goal <= 2)\n",
                  what, idle.p50, idle.p99, busy.p50, busy.p99, idle.p99 > 0 ? busy.p99 / idle.p99 : 0.0);
    };
    row("B: GET sandbox info", info_idle, info_busy);
    row("B: exec round trip (POST + output)", exec_idle, exec_busy);
    if (open < static_cast<int>(hog_streams))
      std::printf("  note: A had only %d streams open at the end\n", open);
    std::fflush(stdout);
  }

  // -- 2. fan-out -----------------------------------------------------------------------------
  if (only.empty() || only == "streams") {
    char tmpl[] = "/tmp/corral-gwbench-XXXXXX";
    if (!mkdtemp(tmpl)) return 1;
    const std::string dir = tmpl;
    const std::string src = dir + "/ticker.c", exe = dir + "/ticker";
    std::ofstream(src) << ticker_source;
    auto cc_run = corral::test::run({"cc", "-O2", "-static", "-o", exe, src});
    if (cc_run.exit_code != 0) {
      std::cerr << "cc: " << cc_run.err << "\n";
      return 1;
    }
    std::ifstream in(exe, std::ios::binary);
    const std::string ticker((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    fs::remove_all(dir);

    std::vector<std::string> sbs;
    for (std::size_t i = 0; i < sandboxes; ++i) {
      auto sb = create();
      if (sb.empty()) return 1;
      auto put = web.call(http::verb::put, "/v1/sandboxes/" + sb + "/files?path=/tmp/ticker", ticker);
      auto chmod = web.call(http::verb::post, "/v1/sandboxes/" + sb + "/exec",
                            R"({"args": ["chmod", "755", "/tmp/ticker"], "stdin": false})");
      if (put.status != 200 || chmod.status != 201) {
        std::cerr << "ticker upload: " << put.status << " " << put.body << " " << chmod.body << "\n";
        return 1;
      }
      auto exit = web.follow_until_exit(
          "/v1/sandboxes/" + sb + "/execs/" + json::parse(chmod.body).value("exec_id", "") + "/output?follow=1",
          nullptr);
      web.finish_stream();
      if (!exit || (*exit)["returncode"] != 0) {
        std::cerr << "chmod of the ticker failed\n";
        return 1;
      }
      sbs.push_back(sb);
    }
    // The sandbox's clock is the host's: a line's stamp falls between the request and the answer.
    double clock_skew_ms = 0;
    for (int i = 0; i < 5; ++i) {
      const int64_t before = realtime_ns();
      corral::client::exec_options eo;
      eo.argv = {"/tmp/ticker", "0", "1"};
      std::string out;
      auto r = nats->exec(sbs.front(), eo, [&](corral::wire::Stream, const uint8_t* p, std::size_t n) {
        out.append(reinterpret_cast<const char*>(p), n);
      });
      const int64_t after = realtime_ns();
      long n = 0;
      long long stamp = 0;
      std::istringstream line(out);
      if (!r || !(line >> n >> stamp)) {
        std::cerr << "ticker calibration failed: " << out << "\n";
        return 1;
      }
      if (stamp < before) clock_skew_ms = std::max(clock_skew_ms, (before - stamp) / 1e6);
      if (stamp > after) clock_skew_ms = std::max(clock_skew_ms, (stamp - after) / 1e6);
    }

    // The execs, round-robin over the sandboxes; then `viewers` streams follow each.
    const std::size_t execs = (streams + viewers - 1) / viewers;
    std::vector<std::pair<std::string, std::string>> started;  // sandbox, exec id
    const std::string args = json{{"args", {"/tmp/ticker", std::to_string(interval_ms)}}, {"stdin", true}}.dump();
    for (std::size_t e = 0; e < execs; ++e) {
      const auto& sb = sbs[e % sbs.size()];
      auto r = web.call(http::verb::post, "/v1/sandboxes/" + sb + "/exec", args);
      if (r.status != 201) {
        std::cerr << "POST exec: " << r.status << " " << r.body << "\n";
        return 1;
      }
      started.emplace_back(sb, json::parse(r.body).value("exec_id", ""));
    }
    // Baseline in the same run: the same lines straight from NATS (bus/, pooled delivery), so
    // what the gateway adds shows apart from what the sandbox, the executor and NATS take.
    struct nats_side {
      std::mutex mu;
      std::atomic<int64_t> start_ns{0}, end_ns{0};
      std::vector<double> latencies_ms;
    };
    auto direct = std::make_shared<nats_side>();
    corral::bus::options dbo;
    dbo.urls = {d.nats().url()};
    dbo.delivery_pool_threads = 2;
    auto direct_conn = corral::bus::connection::connect(dbo, &why);
    if (!direct_conn) {
      std::cerr << why << "\n";
      return 1;
    }
    std::vector<std::unique_ptr<corral::bus::subscription>> direct_subs;
    for (const auto& [sb, eid] : started) {
      auto sub = direct_conn->subscribe(
          corral::wire::subjects::output("bench", sb, eid), "", [direct](corral::bus::message&& m) {
            const int64_t now = realtime_ns();
            const auto* c = corral::wire::verify<corral::wire::OutputChunk>(m.data.data(), m.data.size());
            if (c == nullptr || c->data() == nullptr) return;
            std::istringstream lines(std::string(reinterpret_cast<const char*>(c->data()->data()),
                                                 c->data()->size()));
            long n = 0;
            long long stamp = 0;
            const int64_t from = direct->start_ns, to = direct->end_ns;
            while (lines >> n >> stamp) {
              if (from == 0 || stamp < from || (to != 0 && stamp >= to)) continue;
              std::lock_guard<std::mutex> lock(direct->mu);
              direct->latencies_ms.push_back((now - stamp) / 1e6);
            }
          });
      if (!sub) {
        std::cerr << "subscribe: " << sub.error().message << "\n";
        return 1;
      }
      direct_subs.push_back(std::move(sub).value());
    }
    fanout f;
    f.port = port;
    f.token = token;
    f.interval_ms = interval_ms;
    f.total = streams;
    std::vector<std::shared_ptr<stream_client>> clients;
    for (std::size_t i = 0; i < streams; ++i) {
      const auto& [sb, eid] = started[i % execs];
      clients.push_back(std::make_shared<stream_client>(f, sb, eid));
    }
    std::size_t next_launch = 0;
    f.launch_next = [&] {
      if (!f.aborted && next_launch < clients.size()) clients[next_launch++]->start();
    };
    asio::steady_timer window(f.ioc), deadline(f.ioc);
    double gw_cpu0 = 0, ex_cpu0 = 0, nats_cpu0 = 0, own_cpu0 = 0, host0 = 0, sb_cpu0 = 0;
    double gw_cpu = 0, ex_cpu = 0, nats_cpu = 0, own_cpu = 0, host = 0, sb_cpu = 0;
    const auto setup_start = clk::now();
    double setup_s = 0;
    auto stop_all = [&] {
      for (auto& c : clients) c->send_eof();
    };
    f.on_all_flowing = [&] {
      setup_s = ms_since(setup_start) / 1000;
      f.window_open = true;
      f.window_start = clk::now();
      f.window_start_ns = realtime_ns();
      direct->start_ns = f.window_start_ns;
      gw_cpu0 = cpu_seconds(gw.process().pid());
      ex_cpu0 = cpu_seconds(d.executor().pid());
      nats_cpu0 = cpu_seconds(d.nats().pid());
      own_cpu0 = own_cpu_seconds();
      host0 = host_busy_seconds();
      sb_cpu0 = sandboxes_cpu_seconds(sbs);
      window.expires_after(std::chrono::seconds(seconds));
      window.async_wait([&](beast::error_code) {
        f.window_open = false;
        f.window_done = true;
        f.window_end = clk::now();
        f.window_end_ns = realtime_ns();
        direct->end_ns = f.window_end_ns;
        gw_cpu = cpu_seconds(gw.process().pid()) - gw_cpu0;
        ex_cpu = cpu_seconds(d.executor().pid()) - ex_cpu0;
        nats_cpu = cpu_seconds(d.nats().pid()) - nats_cpu0;
        own_cpu = own_cpu_seconds() - own_cpu0;
        host = host_busy_seconds() - host0;
        sb_cpu = sb_cpu0 < 0 ? -1 : sandboxes_cpu_seconds(sbs) - sb_cpu0;
        stop_all();
      });
    };
    f.on_stream_end = [&] {
      if (f.failed > 0 && !f.aborted && !f.window_open && !f.window_done) {
        // A stream failed before all were flowing: the window never opens; end it all.
        f.aborted = true;
        stop_all();
      }
      if (f.ended + f.failed == (f.aborted ? next_launch : f.total)) {
        window.cancel();
        deadline.cancel();
      }
    };
    deadline.expires_after(std::chrono::seconds(180 + seconds));
    deadline.async_wait([&](beast::error_code ec) {
      if (ec) return;
      std::cerr << "fan-out: deadline passed (" << f.flowing << " flowing, " << f.ended
                << " ended, " << f.failed << " failed)\n";
      f.ioc.stop();
    });
    for (std::size_t i = 0; i < std::min(f.setup_parallel, clients.size()); ++i) f.launch_next();
    f.ioc.run();
    direct_subs.clear();
    std::vector<double> direct_ms;
    {
      std::lock_guard<std::mutex> lock(direct->mu);
      direct_ms = direct->latencies_ms;
    }
    const auto base = summarize(direct_ms);

    const auto s = summarize(f.latencies_ms);
    const double window_s = std::chrono::duration<double>(f.window_end - f.window_start).count();
    std::printf("gateway_bench: %zu concurrent WebSocket output streams through one gateway: %zu execs"
                " (%zu sandboxes), %zu streams each, one line every %d ms per exec (load before: %s;"
                " now: %s)\n",
                streams, execs, sandboxes, viewers, interval_ms, load_before.c_str(),
                load_average().c_str());
    std::printf("  streams: %zu flowing at once, %zu ended with exit 0, %zu failed, %zu bad exits;"
                " set-up %.1f s\n", f.flowing, f.ended - f.bad_exit, f.failed, f.bad_exit, setup_s);
    std::printf("  chunk latency (receipt - CLOCK_REALTIME write stamp), %zu lines written in a %.1f s"
                " window (%.0f lines/s):\n", s.n, window_s, window_s > 0 ? s.n / window_s : 0.0);
    std::printf("    WebSocket through the gateway: p50 %7.2f ms   p95 %7.2f ms   p99 %7.2f ms   max %7.2f ms"
                "   (goal p99 <= 50 ms)\n", s.p50, s.p95, s.p99, s.max);
    std::printf("    baseline, NATS subscriber:     p50 %7.2f ms   p95 %7.2f ms   p99 %7.2f ms   max %7.2f ms"
                "   (%zu lines, one per exec)\n", base.p50, base.p95, base.p99, base.max, base.n);
    std::printf("  sandbox clock vs host: stamp outside [request, answer] by at most %.3f ms\n",
                clock_skew_ms);
    if (window_s > 0)
      std::printf("  CPU in the window (cores): gateway %.2f  executor %.2f  sandboxes %.2f  nats-server %.2f  "
                  "bench %.2f  whole host %.2f of %ld\n",
                  gw_cpu / window_s, ex_cpu / window_s, sb_cpu / window_s, nats_cpu / window_s,
                  own_cpu / window_s, host / window_s, sysconf(_SC_NPROCESSORS_ONLN));
    for (const auto& e : f.errors) std::printf("  error: %s\n", e.c_str());
    for (const auto& sb : sbs) (void)web.call(http::verb::post, "/v1/sandboxes/" + sb + "/terminate");
    if (f.failed > 0 || f.bad_exit > 0 || f.flowing < streams) {
      auto tail = [](const std::string& s) { return s.substr(s.size() > 4000 ? s.size() - 4000 : 0); };
      std::fprintf(stderr, "executor output (tail):\n%s\ngateway output (tail):\n%s\n",
                   tail(d.executor().output()).c_str(), tail(gw.process().output()).c_str());
      return 1;
    }
  }
  return 0;
}
