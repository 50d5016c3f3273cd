// What `jetstream { sync_interval: always }` costs (docs/jobs.md, "Durability of JetStream"):
// JetStream publish-to-ack latency, one publisher waiting for each ack (as corral's producers and
// executors publish jobs and results), on a file-backed work-queue stream with msg ids (like
// CORRAL_JOBS), measured in the same run on three servers whose stores share one disk:
//   always   corral-nats-server with sync_interval: always (an fsync per message before its ack)
//   default  corral-nats-server without the setting (blocks fsynced every 2 minutes)
//   stock    Debian's nats-server 2.9.10 (the same as default: the baseline of the patch itself)
// The servers take turns in rounds of --batch publishes, so that drifting load on a shared
// machine spreads over all three.
//
// Usage: jetstream_sync_bench [--count N] [--bytes B] [--batch M]
//   N publishes per server (default 2000), B bytes each (default 1024), M per turn (default 100).
// Needs <build>/bin/corral-nats-server (deploy/build.sh) and nats-server.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_support.hpp"
#include "bus/connection.hpp"
#include "bus/jetstream.hpp"
#include "tests/support/nats_server.hpp"

namespace {

using corral::bench::load_average;
using corral::bench::ms_since;
using corral::bench::stats;
using corral::bench::summarize;
using corral::test::nats_server_process;
using clk = std::chrono::steady_clock;

struct target {
  std::string label;
  std::string binary;
  std::string config;
  std::unique_ptr<nats_server_process> server;
  std::unique_ptr<corral::bus::connection> conn;
  std::unique_ptr<corral::bus::jetstream> js;
  std::vector<double> latencies_ms;
  int published = 0;
};

// A nats-server of `binary` with `config`.
std::unique_ptr<nats_server_process> server_of(const std::string& binary,
                                               const std::string& config) {
  nats_server_process::options o;
  o.config = config;
  o.binary = binary;
  return std::make_unique<nats_server_process>(o);
}

bool open_target(target& t, std::string* why) {
  t.server = server_of(t.binary, t.config);
  if (!t.server->start()) {
    *why = t.server->error();
    return false;
  }
  corral::bus::options o;
  o.urls = {t.server->url()};
  o.name = "jetstream-sync-bench";
  t.conn = corral::bus::connection::connect(o, why);
  if (!t.conn) return false;
  t.js = corral::bus::jetstream::open(*t.conn, why);
  if (!t.js) return false;
  corral::bus::stream_config cfg;
  cfg.name = "BENCH_JOBS";
  cfg.subjects = {"bench.jobs"};
  cfg.work_queue = true;
  cfg.duplicate_window_ms = 3600 * 1000;
  auto st = t.js->ensure_stream(cfg);
  if (!st) {
    *why = st.error().message;
    return false;
  }
  return true;
}

void print(const target& t) {
  const stats s = summarize(t.latencies_ms);
  std::printf(
      "  %-8s publish->ack  p50 %7.3f ms  p95 %7.3f ms  p99 %7.3f ms  min %7.3f  max %8.3f  "
      "(n=%zu)\n",
      t.label.c_str(), s.p50, s.p95, s.p99, s.min, s.max, s.n);
}

}  // namespace

int main(int argc, char** argv) {
  int count = 2000;
  std::size_t bytes = 1024;
  int batch = 100;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--count")
      count = std::max(10, std::atoi(argv[++i]));
    else if (a == "--bytes")
      bytes = static_cast<std::size_t>(std::max(1, std::atoi(argv[++i])));
    else if (a == "--batch")
      batch = std::max(1, std::atoi(argv[++i]));
  }
  const std::string patched = std::string(CORRAL_BIN_DIR) + "/corral-nats-server";
  if (!std::filesystem::exists(patched)) {
    std::cerr << "missing " << patched << ": build with deploy/build.sh\n";
    return 1;
  }

  const std::string load_before = load_average();
  std::vector<target> targets(3);
  auto set = [](target& t, std::string label, std::string binary, std::string config) {
    t.label = std::move(label);
    t.binary = std::move(binary);
    t.config = std::move(config);
  };
  set(targets[0], "always", patched, "jetstream {\n  sync_interval: always\n}\n");
  set(targets[1], "default", patched, "");
  set(targets[2], "stock", CORRAL_STOCK_NATS_SERVER, "");
  for (auto& t : targets) {
    std::string why;
    if (!open_target(t, &why)) {
      std::cerr << t.label << ": " << why << "\n";
      return 1;
    }
  }

  const std::string body(bytes, 'j');
  const auto t0 = clk::now();
  int64_t id = 0;
  while (targets[0].published < count) {
    for (auto& t : targets) {
      for (int i = 0; i < batch && t.published < count; ++i, ++t.published) {
        const std::string msg_id = "bench-" + std::to_string(++id);
        const auto start = clk::now();
        auto a = t.js->publish("bench.jobs", body.data(), body.size(), msg_id);
        const double ms = ms_since(start);
        if (!a || a.value().duplicate) {
          std::cerr << t.label << ": publish failed: " << a.error().message << "\n";
          return 1;
        }
        t.latencies_ms.push_back(ms);
      }
    }
  }
  const double total_s = ms_since(t0) / 1000.0;

  std::printf("jetstream_sync_bench: %d publishes of %zu bytes per server, turns of %d, %.1f s\n",
              count, bytes, batch, total_s);
  std::printf("  stores on: %s\n", targets[0].server->store_dir().c_str());
  for (const auto& t : targets) print(t);
  const stats a = summarize(targets[0].latencies_ms), d = summarize(targets[1].latencies_ms);
  std::printf("  always - default: p50 +%.3f ms, p99 +%.3f ms\n", a.p50 - d.p50, a.p99 - d.p99);
  std::printf("  load average before: %s   after: %s\n", load_before.c_str(),
              load_average().c_str());
  return 0;
}
