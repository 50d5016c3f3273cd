// The warm pool's figures (docs/protocol.md, "Warm pool"), measured in one run:
//
//  a. create to first exec ready: create returned and a `true` exec completed, through the
//     client library over NATS. From the warm pool (an executor with --warm-pool 2) and cold (an
//     executor with --warm-pool 0), each over --runs runs. Between two runs the bench waits until
//     the previous sandbox is torn down (its directory gone) and, warm, until the pool has
//     refilled (a heartbeat saying 2 booted warm sandboxes): every run sees a quiet node with a
//     full pool. Goal: warm p50 <= 50 ms.
//  b. sustained creates: --concurrency clients each loop create + terminate for --seconds on the
//     warm executor while its pool refills (teardown and refills run behind the creates).
//     Creates per second, p50/p99 create latency, and how many were served from the pool (a
//     claimed sandbox starts within a few ms of its creation; a cold one boots first).
//
// The load average (1, 5, 15 min) is printed before and after each section: 2 cores shared
// with other work make the figures comparable only at similar load (the sustained section's own
// boots and teardowns raise it).
//
// Usage: warm_pool_bench [--runs N] [--seconds S] [--concurrency C] [-- EXECUTOR FLAGS...]
// Needs root, nats-server, the built corral-executor, corral-init and corral-runsc
// (deploy/build.sh).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.hpp"
#include "bus/connection.hpp"
#include "client/client.hpp"
#include "schemas/codec.hpp"
#include "schemas/subjects.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/heartbeat_watch.hpp"
#include "tests/support/nats_server.hpp"

namespace {

using corral::bench::load_average;
using corral::bench::ms_since;
using corral::bench::stats;
using corral::bench::summarize;
using corral::bench::wall_ms;
using corral::test::bin;
using corral::test::heartbeat_watch;

namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

// One executor on its own data dir, and a client of it.
struct executor_under_test {
  std::string data;
  std::string node;
  corral::test::background_process proc;
  std::unique_ptr<corral::client::session> client;

  bool start(const std::string& dir, const std::string& name, const std::string& nats_url,
             const std::vector<std::string>& flags) {
    data = dir + "/" + name;
    node = name;
    std::vector<std::string> argv = {bin("corral-executor"), "--data", data, "--nats", nats_url,
                                     "--node", name, "--runsc", bin("corral-runsc"),
                                     "--pool", name, "--heartbeat-ms", "100"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    if (!proc.start(argv) || !proc.wait_for_output("corral-executor: ready", 60s)) {
      std::cerr << name << " did not start: " << proc.output() << "\n";
      return false;
    }
    corral::client::session::config cfg;
    cfg.nats_url = nats_url;
    cfg.tenant = "bench";
    cfg.pool = name;
    std::string error;
    client = corral::client::session::connect(cfg, &error);
    if (!client) std::cerr << error << "\n";
    return client != nullptr;
  }
  std::string sandbox_dir(const std::string& id) const {
    return data + "/runtime/sandboxes/" + id;
  }
};

bool exec_true(corral::client::session& c, const std::string& id) {
  corral::client::exec_options o;
  o.argv = {"true"};
  auto r = c.exec(id, o, [](corral::wire::Stream, const uint8_t*, std::size_t) {});
  return r && r->exit_code == 0;
}

// Figure a on one executor; waits for a full pool between runs when `pool` > 0.
bool create_to_first_exec(executor_under_test& ex, heartbeat_watch* hb, uint32_t pool, int runs,
                          std::vector<double>& out, int& served_warm) {
  int64_t since = 0;
  for (int i = 0; i < runs + 2; ++i) {  // 2 warm-up runs
    if (hb != nullptr && !hb->wait_warm(pool, since)) {
      std::cerr << "the pool did not refill\n";
      return false;
    }
    const auto t0 = clk::now();
    auto s = ex.client->create({});
    if (!s) {
      std::cerr << "create failed: " << s.error().message << "\n";
      return false;
    }
    if (!exec_true(*ex.client, s->id)) {
      std::cerr << "exec failed\n";
      return false;
    }
    const double t = ms_since(t0);
    since = wall_ms();
    if (i >= 2) {
      out.push_back(t);
      served_warm += s->started_at_ms - s->created_at_ms < 50 ? 1 : 0;
    }
    (void)ex.client->terminate(s->id);
    if (!corral::test::wait_path_gone(ex.sandbox_dir(s->id), 60s)) {
      std::cerr << "teardown of " << s->id << " did not finish\n";
      return false;
    }
  }
  return true;
}

struct sustained_result {
  std::vector<double> create_ms;
  int served_warm = 0;
  int failures = 0;
  double seconds = 0;
};

// Figure b: `concurrency` clients loop create + terminate until the deadline.
sustained_result sustained(const std::string& nats_url, const std::string& pool, int concurrency,
                           int seconds) {
  sustained_result res;
  std::mutex mu;
  const auto t0 = clk::now();
  const auto deadline = t0 + std::chrono::seconds(seconds);
  std::vector<std::thread> workers;
  for (int w = 0; w < concurrency; ++w) {
    workers.emplace_back([&] {
      corral::client::session::config cfg;
      cfg.nats_url = nats_url;
      cfg.tenant = "bench";
      cfg.pool = pool;
      std::string error;
      auto c = corral::client::session::connect(cfg, &error);
      if (!c) {
        std::lock_guard<std::mutex> lock(mu);
        ++res.failures;
        return;
      }
      while (clk::now() < deadline) {
        const auto c0 = clk::now();
        auto s = c->create({});
        const double t = ms_since(c0);
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!s) {
            ++res.failures;
            continue;
          }
          res.create_ms.push_back(t);
          res.served_warm += s->started_at_ms - s->created_at_ms < 50 ? 1 : 0;
        }
        (void)c->terminate(s->id);
      }
    });
  }
  for (auto& t : workers) t.join();
  res.seconds = std::chrono::duration<double>(clk::now() - t0).count();
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 30, seconds = 60, concurrency = 3;
  std::vector<std::string> executor_args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      executor_args.assign(argv + i + 1, argv + argc);
      break;
    }
    if (a == "--runs" && i + 1 < argc) runs = std::max(30, std::atoi(argv[++i]));
    else if (a == "--seconds" && i + 1 < argc) seconds = std::max(5, std::atoi(argv[++i]));
    else if (a == "--concurrency" && i + 1 < argc) concurrency = std::clamp(std::atoi(argv[++i]), 1, 16);
    else {
      std::cerr << "usage: warm_pool_bench [--runs N>=30] [--seconds S] [--concurrency C] [-- EXECUTOR FLAGS...]\n";
      return 2;
    }
  }

  char tmpl[] = "/tmp/corral-warmbench-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string dir = tmpl;
  corral::test::nats_server_process nats;
  if (!nats.start()) {
    std::cerr << "nats-server: " << nats.error() << "\n";
    return 1;
  }
  std::string flags;
  for (const auto& a : executor_args) flags += " " + a;
  std::printf("warm_pool_bench (2-core VM, runsc ptrace platform; executor flags:%s)\n",
              flags.empty() ? " (defaults)" : flags.c_str());

  // -- a. warm ----------------------------------------------------------------------------------
  std::vector<double> warm_ms, cold_ms;
  int warm_hits = 0, cold_hits = 0;
  std::string load_warm, load_cold, load_sustained;
  sustained_result sus;
  {
    executor_under_test warm;
    auto args = executor_args;
    args.insert(args.end(), {"--warm-pool", "2"});
    if (!warm.start(dir, "warm", nats.url(), args)) return 1;
    heartbeat_watch hb;
    if (!hb.start(nats.url(), "warm")) {
      std::cerr << "cannot watch heartbeats\n";
      return 1;
    }
    load_warm = load_average();
    if (!create_to_first_exec(warm, &hb, 2, runs, warm_ms, warm_hits)) return 1;
    load_warm += " -> " + load_average();
    warm.proc.stop(60s);
  }
  // -- a. cold ----------------------------------------------------------------------------------
  {
    executor_under_test cold;
    auto args = executor_args;
    args.insert(args.end(), {"--warm-pool", "0"});
    if (!cold.start(dir, "cold", nats.url(), args)) return 1;
    load_cold = load_average();
    if (!create_to_first_exec(cold, nullptr, 0, runs, cold_ms, cold_hits)) return 1;
    load_cold += " -> " + load_average();
    cold.proc.stop(60s);
  }
  // -- b. sustained, on a warm executor of its own ------------------------------------------------
  {
    executor_under_test warm;
    auto args = executor_args;
    args.insert(args.end(), {"--warm-pool", "2"});
    if (!warm.start(dir, "sustained", nats.url(), args)) return 1;
    heartbeat_watch hb;
    if (!hb.start(nats.url(), "sustained") || !hb.wait_warm(2, 0)) {
      std::cerr << "the pool did not fill\n";
      return 1;
    }
    load_sustained = load_average();
    sus = sustained(nats.url(), "sustained", concurrency, seconds);
    load_sustained += " -> " + load_average();
    warm.proc.stop(60s);
  }

  auto print = [](const char* what, const stats& s) {
    std::printf("  %-40s p50 %8.2f ms   p95 %8.2f ms   min %8.2f ms   max %8.2f ms\n", what, s.p50,
                s.p95, s.min, s.max);
  };
  const auto w = summarize(warm_ms), c = summarize(cold_ms), cr = summarize(sus.create_ms);
  std::printf("a. create to first exec ready (create returned + `true` exec completed), %d runs each,\n"
              "   quiet node between runs (previous sandbox torn down, pool refilled):\n",
              runs);
  print("from the warm pool (--warm-pool 2)", w);
  std::printf("    served from the pool: %d/%zu   load avg %s\n", warm_hits, warm_ms.size(),
              load_warm.c_str());
  print("cold (--warm-pool 0)", c);
  std::printf("    served from the pool: %d/%zu   load avg %s\n", cold_hits, cold_ms.size(),
              load_cold.c_str());
  std::printf("  warm p50 %.2f ms (goal <= 50 ms); cold / warm p50: %.1fx\n", w.p50,
              w.p50 > 0 ? c.p50 / w.p50 : 0.0);
  std::printf("b. sustained creates for %.0f s, %d clients looping create + terminate, pool refilling:\n",
              sus.seconds, concurrency);
  std::printf("  %zu creates, %.2f creates/s; create latency p50 %.2f ms, p99 %.2f ms, max %.2f ms;\n"
              "  served from the pool %d/%zu; failures %d   load avg %s\n",
              sus.create_ms.size(), sus.create_ms.size() / sus.seconds, cr.p50, cr.p99, cr.max,
              sus.served_warm, sus.create_ms.size(), sus.failures, load_sustained.c_str());
  fs::remove_all(dir);
  return 0;
}
