// The spine's two latency figures, each next to its baselines measured in the same run
// (docs/architecture.md, "The walk of one exec"):
//
//  1. exec round trip: request to exit status of `true` in a warm sandbox, through NATS, the
//     executor's actors and corral-init; next to (a) `runsc exec` of `true` on the same running
//     sandbox and (b) the floor: fork+exec+wait of `true` by a small static C program inside the
//     same sandbox. Goal: p50 <= floor + 3 ms and <= 1/3 of (a). Measured on a quiet node: once
//     the executor's warm pool has refilled behind the bench's own create (a heartbeat reports
//     it full), so that no sandbox boots beside the execs.
//  2. create to ready-for-exec; next to `runsc run -detach` of the same kind of bundle.
//     Goal: p50 <= 1.3x the baseline.
//
// Usage: spine_bench [--runs N] [--exec-only] [--accounts] [-- EXECUTOR FLAGS...]
// (e.g. -- --disk-limit-mib 0). --exec-only measures figure 1 alone (for comparing changes of the
// exec path quickly). --accounts runs NATS as `corral up` does (docs/security.md): the executor
// with its own identity in account CORRAL, the client as a tenant in an account of its own, whose
// requests cross a service import; without it, everyone is one anonymous account. Needs
// root, nats-server, the built corral-executor, corral-init, corral-runsc (deploy/build.sh) and
// a C compiler for the floor program.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "actors/config.hpp"
#include "bench/bench_support.hpp"
#include "bus/connection.hpp"
#include "bus/nats_auth.hpp"
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

void print(const char* what, const stats& s) {
  std::printf("  %-44s p50 %8.2f ms   p95 %8.2f ms   min %8.2f ms\n", what, s.p50, s.p95, s.min);
}

const char* floor_source = R"(
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 50;
  for (int i = 0; i < n; ++i) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid == 0) { execl("/usr/bin/true", "true", (char*)0); _exit(127); }
    int st;
    waitpid(pid, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.3f\n", (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
  }
  return 0;
}
)";

}  // namespace

int main(int argc, char** argv) {
  int runs = 50;
  bool exec_only = false;
  bool accounts = false;
  std::vector<std::string> executor_args;  // after "--": passed to corral-executor
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--") {
      executor_args.assign(argv + i + 1, argv + argc);
      break;
    }
    if (std::string(argv[i]) == "--runs" && i + 1 < argc) runs = std::max(5, std::atoi(argv[++i]));
    if (std::string(argv[i]) == "--exec-only") exec_only = true;
    if (std::string(argv[i]) == "--accounts") accounts = true;
  }

  const std::string load_before = load_average();
  char tmpl[] = "/tmp/corral-bench-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string dir = tmpl;
  // --accounts: the identities, and an anonymous user in CORRAL for the bench's own watchers.
  corral::test::nats_server_process::options nats_options;
  std::string executor_seed, tenant_seed;
  if (accounts) {
    corral::bus::nats_auth_dir auth(dir + "/auth");
    std::string e;
    auto ex = auth.ensure(corral::bus::nats_role::executor, "bench", nullptr, &e);
    auto te = ex ? auth.ensure(corral::bus::nats_role::tenant, "bench", nullptr, &e) : std::nullopt;
    auto ids = te ? auth.identities(&e) : std::nullopt;
    if (!ids) {
      std::cerr << "NATS identities: " << e << "\n";
      return 1;
    }
    executor_seed = *ex;
    tenant_seed = *te;
    nats_options.config =
        corral::bus::accounts_config(*ids, "      {user: \"bench\", password: \"bench-watch\", "
                                           "permissions: {publish: \">\", subscribe: \">\"}}\n") +
        "no_auth_user: \"bench\"\n";
  }
  corral::test::nats_server_process nats(nats_options);
  if (!nats.start()) {
    std::cerr << "nats-server: " << nats.error() << "\n";
    return 1;
  }
  corral::test::background_process executor;
  std::vector<std::string> executor_argv = {bin("corral-executor"), "--data", dir + "/executor",
                                            "--nats", nats.url(), "--node", "bench", "--runsc",
                                            bin("corral-runsc")};
  if (accounts) {
    executor_argv.push_back("--nats-creds");
    executor_argv.push_back(executor_seed);
  }
  executor_argv.insert(executor_argv.end(), executor_args.begin(), executor_args.end());
  if (!executor.start(executor_argv) ||
      !executor.wait_for_output("corral-executor: ready", 60s)) {
    std::cerr << "executor did not start: " << executor.output() << "\n";
    return 1;
  }
  const std::string runsc_root = dir + "/executor/runtime/runsc";
  uint32_t warm_pool = corral::node_config{}.warm_pool;
  for (std::size_t i = 0; i + 1 < executor_args.size(); ++i)
    if (executor_args[i] == "--warm-pool")
      warm_pool = static_cast<uint32_t>(std::stoul(executor_args[i + 1]));
  heartbeat_watch heartbeats;
  if (!heartbeats.start(nats.url(), "bench")) {
    std::cerr << "cannot watch the executor's heartbeats\n";
    return 1;
  }

  std::string error;
  corral::client::session::config cfg;
  cfg.nats_url = nats.url();
  cfg.tenant = "bench";
  cfg.nats_creds = tenant_seed;
  auto c = corral::client::session::connect(cfg, &error);
  if (!c) {
    std::cerr << error << "\n";
    return 1;
  }
  auto sb = c->create({});
  if (!sb) {
    std::cerr << "create: " << sb.error().message << "\n";
    return 1;
  }
  const std::string id = sb->id;
  // The create took a warm sandbox: the pool boots another one behind it. Wait for that.
  if (warm_pool > 0 && !heartbeats.wait_warm(warm_pool, wall_ms(), 60s)) {
    std::cerr << "the warm pool did not refill to " << warm_pool << " within 60 s\n";
    return 1;
  }
  auto sink = [](corral::wire::Stream, const uint8_t*, std::size_t) {};
  auto exec = [&](std::vector<std::string> argv, std::string* out = nullptr,
                  const std::string& input = {}) {
    corral::client::exec_options o;
    o.argv = std::move(argv);
    o.stdin_open = !input.empty();
    bool sent = false;
    auto r = c->exec(
        id, o,
        [&](corral::wire::Stream s, const uint8_t* p, std::size_t n) {
          if (out && s == corral::wire::Stream::stdout) out->append(reinterpret_cast<const char*>(p), n);
        },
        input.empty() ? corral::client::session::stdin_fn{}
                      : corral::client::session::stdin_fn([&]() -> std::optional<std::vector<uint8_t>> {
                          if (sent) return std::nullopt;
                          sent = true;
                          return std::vector<uint8_t>(input.begin(), input.end());
                        }));
    return r && r->exit_code == 0;
  };
  (void)sink;

  // -- 1. exec round trip ---------------------------------------------------------------------
  for (int i = 0; i < 5; ++i) exec({"true"});  // warm up
  std::vector<double> corral_exec;
  for (int i = 0; i < runs; ++i) {
    auto t0 = clk::now();
    if (!exec({"true"})) {
      std::cerr << "exec failed\n";
      return 1;
    }
    corral_exec.push_back(ms_since(t0));
  }
  std::vector<double> runsc_exec;
  for (int i = 0; i < std::min(runs, 30); ++i) {
    auto t0 = clk::now();
    const int rc = corral::test::run_quiet({bin("corral-runsc"), "--root", runsc_root, "exec", id, "/usr/bin/true"});
    if (rc != 0) {
      std::cerr << "runsc exec failed: " << rc << "\n";
      return 1;
    }
    runsc_exec.push_back(ms_since(t0));
  }
  // The floor program, compiled on the host (static) and uploaded through stdin.
  const std::string src = dir + "/floor.c", exe = dir + "/floor";
  std::ofstream(src) << floor_source;
  auto cc = corral::test::run({"cc", "-O2", "-static", "-o", exe, src});
  if (cc.exit_code != 0) {
    std::cerr << "cc: " << cc.err << "\n";
    return 1;
  }
  std::ifstream in(exe, std::ios::binary);
  std::string binary((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!exec({"sh", "-c", "cat > /tmp/floor && chmod +x /tmp/floor"}, nullptr, binary)) {
    std::cerr << "upload of the floor program failed\n";
    return 1;
  }
  std::string floor_out;
  if (!exec({"/tmp/floor", std::to_string(runs + 5)}, &floor_out)) {
    std::cerr << "floor program failed\n";
    return 1;
  }
  std::vector<double> floor;
  std::istringstream fl(floor_out);
  for (double v; fl >> v;) floor.push_back(v);
  if (floor.size() > 5) floor.erase(floor.begin(), floor.begin() + 5);

  // -- 2. create to ready ---------------------------------------------------------------------
  std::vector<double> create;
  const int create_runs = exec_only ? 0 : std::min(runs, 20);
  for (int i = 0; i < create_runs; ++i) {
    auto t0 = clk::now();
    auto s = c->create({});
    if (!s) {
      std::cerr << "create failed: " << s.error().message << "\n";
      return 1;
    }
    create.push_back(ms_since(t0));
    (void)c->terminate(s->id);
  }
  // Baseline: runsc run -detach of this sandbox's own OCI spec over the image (no overlay, so the
  // baseline does less than corral's create), then delete outside the timing.
  const std::string bundle = dir + "/baseline";
  fs::create_directories(bundle);
  std::string cfg_json;
  {
    std::ifstream f(dir + "/executor/runtime/sandboxes/" + id + "/bundle/config.json");
    cfg_json.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    std::ifstream img(dir + "/executor/runtime/sandboxes/" + id + "/image");
    std::string image;
    std::getline(img, image);
    const auto rootpos = cfg_json.find("\"root\"");
    const auto pathpos = cfg_json.find("\"path\"", rootpos);
    const auto q1 = cfg_json.find('"', pathpos + 6);
    const auto q2 = cfg_json.find('"', q1 + 1);
    cfg_json.replace(q1 + 1, q2 - q1 - 1, image);
    const auto cg = cfg_json.find("\"cgroupsPath\"");
    if (cg != std::string::npos) {
      const auto c1 = cfg_json.find('"', cg + 13);
      const auto c2 = cfg_json.find('"', c1 + 1);
      cfg_json.replace(c1 + 1, c2 - c1 - 1, "/corral-bench/baseline");
    }
    std::ofstream(bundle + "/config.json") << cfg_json;
  }
  std::vector<double> runsc_run;
  for (int i = 0; i < create_runs; ++i) {
    const std::string cid = "bench-" + fs::path(dir).filename().string() + "-" + std::to_string(1000 + i);
    auto t0 = clk::now();
    const int rc = corral::test::run_quiet({bin("corral-runsc"), "--root", dir + "/baseline-root",
                                            "--platform=ptrace", "--network=none", "run", "-detach",
                                            "--bundle", bundle, cid},
                                           60s, dir + "/baseline.err");
    const double t = ms_since(t0);
    if (rc != 0) {
      std::ifstream e(dir + "/baseline.err");
      std::cerr << "runsc run -detach failed: " << rc << ": " << e.rdbuf() << "\n";
      return 1;
    }
    runsc_run.push_back(t);
    (void)corral::test::run_quiet({bin("corral-runsc"), "--root", dir + "/baseline-root", "delete", "-force", cid});
  }
  (void)c->terminate(id);

  const auto ce = summarize(corral_exec), re = summarize(runsc_exec), fe = summarize(floor);
  const auto cc_ = summarize(create), rr = summarize(runsc_run);
  std::string flags;
  for (const auto& a : executor_args) flags += " " + a;
  std::printf("spine_bench (%d runs; 2-core VM, runsc ptrace platform; executor flags:%s; NATS: %s)\n",
              runs, flags.empty() ? " (defaults)" : flags.c_str(),
              accounts ? "accounts, the tenant through a service import" : "one anonymous account");
  std::printf("load average (1, 5, 15 min) %s at the start, %s at the end\n", load_before.c_str(),
              load_average().c_str());
  std::printf("exec round trip, request to exit status of `true` in a warm sandbox:\n");
  print("corral exec (client library over NATS)", ce);
  print("(a) runsc exec on the running sandbox", re);
  print("(b) floor: fork+exec+wait inside the sandbox", fe);
  std::printf("  p50 over floor: %+.2f ms (goal <= +3 ms)   p50 / runsc exec: %.2f (goal <= 0.33)\n",
              ce.p50 - fe.p50, ce.p50 / re.p50);
  if (!exec_only) {
    std::printf("create to ready-for-exec:\n");
    print("corral create", cc_);
    print("runsc run -detach (same spec, no overlay)", rr);
    std::printf("  p50 ratio: %.2f (goal <= 1.30)\n", cc_.p50 / rr.p50);
  }
  executor.stop();
  fs::remove_all(dir);
  return 0;
}
