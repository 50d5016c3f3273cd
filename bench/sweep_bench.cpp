// Sweep throughput (docs/jobs.md, "Speed"): 500 small Python programs with tests, each run in a
// fresh sandbox, as programs per second — next to the same programs run as bare `python3`
// subprocesses with no isolation, measured in the same run on the same machine.
//
//   bare:   /usr/bin/python3 -c <program>, `--bare-concurrency` at once (default: 2 and 4, the better one)
//   fresh:  `corral sweep FILE --direct --concurrency S --isolation fresh` against a real
//           corral-executor (--job-slots S) whose warm pool is full: the runner recycles one
//           sandbox per slot between programs; run twice (the first time the leases start
//           during the sweep; the second time they are up, as in a long sweep)
//   strict: the same with --isolation strict (a new gVisor sandbox per program, from the warm
//           pool), on the first --strict-programs programs, after the fresh runs: their leases
//           are still up, so (executor default --warm-loans 1) the pool boots their two
//           replacements when the strict sweep's first create arrives, and strict pays for them
// Every program must pass in every mode (its tests ran to their end): a run with a failure is
// reported as invalid, not as a figure. Goal: fresh >= 0.5 x bare. For both fresh runs it also
// prints the mean wall time inside the sandbox of the first 50 results and of the rest (a new
// lease's first jobs run slower: docs/jobs.md).
//
// Usage: sweep_bench [--programs N] [--slots S] [--concurrency C] [--strict-programs M]
//                    [-- EXECUTOR FLAGS...]   (C: requests in flight, default S)
// Needs root, nats-server, python3 and the built corral-executor, corral-init, corral-runsc.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/config.hpp"
#include "bench/bench_support.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/heartbeat_watch.hpp"

extern char** environ;

namespace {

using corral::bench::load_average;
using corral::bench::wall_ms;

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

double secs_since(clk::time_point t0) {
  return std::chrono::duration<double>(clk::now() - t0).count();
}

// Small programs in HumanEval's shape: a function, then check(candidate) with its asserts.
std::vector<std::string> make_programs(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const int k = 3 + i % 7, m = 11 + i % 13;
    std::string p;
    switch (i % 4) {
      case 0:
        p = "def f(xs):\n    return sorted(set(x * " + std::to_string(k) + " % " + std::to_string(m) +
            " for x in xs))\n\n"
            "def check(candidate):\n"
            "    assert candidate([]) == []\n"
            "    assert candidate([0]) == [0]\n"
            "    assert candidate(list(range(20))) == sorted({x * " + std::to_string(k) + " % " +
            std::to_string(m) + " for x in range(20)})\n"
            "    assert len(candidate([1, 1, 1])) == 1\n\ncheck(f)\n";
        break;
      case 1:
        p = "def f(s):\n    words = s.split()\n    return ' '.join(w[::-1] for w in words[:" +
            std::to_string(k) + "])\n\n"
            "def check(candidate):\n"
            "    assert candidate('') == ''\n"
            "    assert candidate('ab cd') == 'ba dc'\n"
            "    assert candidate('x ' * 30).count('x') == min(30, " + std::to_string(k) + ")\n\n"
            "check(f)\n";
        break;
      case 2:
        p = "def f(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, (a + b) % " +
            std::to_string(1000 + m) + "\n    return a\n\n"
            "def check(candidate):\n"
            "    assert candidate(0) == 0\n"
            "    assert candidate(1) == 1\n"
            "    assert candidate(10) == 55 % " + std::to_string(1000 + m) + "\n"
            "    assert isinstance(candidate(" + std::to_string(50 + i) + "), int)\n\ncheck(f)\n";
        break;
      default:
        p = "import math\n\ndef f(xs):\n    return [math.gcd(x, " + std::to_string(k * m) +
            ") for x in xs if x % 2 == 0]\n\n"
            "def check(candidate):\n"
            "    assert candidate([1, 3]) == []\n"
            "    assert candidate([2, 4]) == [math.gcd(2, " + std::to_string(k * m) + "), math.gcd(4, " +
            std::to_string(k * m) + ")]\n"
            "    assert all(v >= 1 for v in candidate(list(range(2, 40, 2))))\n\ncheck(f)\n";
    }
    out.push_back(std::move(p));
  }
  return out;
}

// Runs every program as `python3 -c` with `conc` at once; programs per second, failures.
std::pair<double, int> run_bare(const std::vector<std::string>& programs, int conc) {
  std::atomic<size_t> next{0};
  std::atomic<int> failed{0};
  const auto t0 = clk::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < conc; ++t) {
    threads.emplace_back([&] {
      for (size_t i; (i = next++) < programs.size();) {
        // The interpreter the sandboxes run (the host image's /usr), not whatever is first on
        // PATH (e.g. a pyenv shim, a shell script that costs more than Python itself).
        const char* argv[] = {"/usr/bin/python3", "-c", programs[i].c_str(), nullptr};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        pid_t pid = 0;
        if (posix_spawn(&pid, argv[0], &fa, nullptr, const_cast<char**>(argv), environ) != 0) {
          ++failed;
          posix_spawn_file_actions_destroy(&fa);
          continue;
        }
        posix_spawn_file_actions_destroy(&fa);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  return {static_cast<double>(programs.size()) / secs_since(t0), failed.load()};
}

struct corral_run {
  double rate = 0;
  int passed = 0, lines = 0;
  std::string failure;  // why the run is not a valid figure
  std::vector<long> wall_ms;  // each result's wall_ms inside the sandbox, in the order they came

  // "first 50: X ms, rest: Y ms" of wall_ms: a lease's first jobs run slower (docs/jobs.md).
  [[nodiscard]] std::string warmup() const {
    const std::size_t head = std::min<std::size_t>(50, wall_ms.size() / 2);
    if (head == 0) return {};
    auto mean = [&](std::size_t from, std::size_t to) {
      double sum = 0;
      for (std::size_t i = from; i < to; ++i) sum += static_cast<double>(wall_ms[i]);
      return sum / static_cast<double>(to - from);
    };
    char buf[128];
    std::snprintf(buf, sizeof buf, "first %zu: %.1f ms, rest: %.1f ms", head, mean(0, head),
                  mean(head, wall_ms.size()));
    return buf;
  }
};

std::string json_escape(const std::string& in) {
  std::string out;
  for (unsigned char c : in) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

// `corral sweep` over the first `count` programs, written as a problems file; the rate is
// programs over the command's whole wall time. Every line must say passed.
corral_run run_sweep(corral::test::deployment& d, const std::string& dir,
                     const std::vector<std::string>& programs, size_t count, int conc,
                     const std::string& isolation, const std::string& name) {
  corral_run out;
  const std::string in = dir + "/" + name + ".jsonl", res = dir + "/" + name + ".out.jsonl";
  {
    FILE* f = std::fopen(in.c_str(), "w");
    for (size_t i = 0; i < count; ++i)
      std::fprintf(f, "{\"id\": \"p%zu\", \"language\": \"python\", \"source\": \"%s\"}\n", i,
                   json_escape(programs[i]).c_str());
    std::fclose(f);
  }
  const auto t0 = clk::now();
  auto r = corral::test::run(d.cli({"sweep", in, "--out", res, "--direct", "--concurrency",
                                    std::to_string(conc), "--isolation", isolation}),
                             {}, std::chrono::seconds(1800));
  out.rate = static_cast<double>(count) / secs_since(t0);
  if (r.exit_code != 0) out.failure = "corral sweep exited " + std::to_string(r.exit_code) + ": " + r.err;
  FILE* f = std::fopen(res.c_str(), "r");
  if (f != nullptr) {
    char line[65536];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      ++out.lines;
      if (const char* w = std::strstr(line, "\"wall_ms\":")) out.wall_ms.push_back(std::strtol(w + 10, nullptr, 10));
      if (std::strstr(line, "\"passed\":true") != nullptr || std::strstr(line, "\"passed\": true") != nullptr)
        ++out.passed;
      else if (out.failure.empty())
        out.failure = std::string("not passed: ") + line;
    }
    std::fclose(f);
  }
  if (out.lines != static_cast<int>(count) && out.failure.empty())
    out.failure = std::to_string(out.lines) + " result lines for " + std::to_string(count) + " programs";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace corral;
  // One slot per core (the executor's default --job-slots): measured on the 2-core VM, 2 slots
  // gave 67/76 programs/s, 4 gave 58/70, 6 gave 55/62 (fresh / fresh again).
  int n = 500, slots = 2, strict_n = 40, conc = 0;
  std::vector<std::string> executor_flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      for (++i; i < argc; ++i) executor_flags.emplace_back(argv[i]);
      break;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usage: sweep_bench [--programs N] [--slots S] [--concurrency C] [--strict-programs M] [-- EXECUTOR FLAGS]\n");
      return 2;
    }
    if (a == "--programs") n = std::atoi(argv[++i]);
    else if (a == "--slots") slots = std::atoi(argv[++i]);
    else if (a == "--strict-programs") strict_n = std::atoi(argv[++i]);
    else if (a == "--concurrency") conc = std::atoi(argv[++i]);
    else return 2;
  }
  if (conc <= 0) conc = slots;
  const auto programs = make_programs(n);
  const int max_sandboxes = slots * 3 + 4;  // the leases, the strict sandboxes and the pool
  std::string shown;
  for (const auto& f : executor_flags) shown += " " + f;
  std::printf("sweep_bench: %d programs, executor flags: --job-slots %d --max-sandboxes %d%s; load %s\n",
              n, slots, max_sandboxes, shown.c_str(), load_average().c_str());

  // Bare first (nothing else runs yet), at 2 and 4 at once: the better is the baseline.
  auto bare2 = run_bare(programs, 2);
  auto bare4 = run_bare(programs, 4);
  const double bare = std::max(bare2.first, bare4.first);
  std::printf("  bare python3       %7.1f programs/s (2 at once: %.1f, 4 at once: %.1f)%s\n", bare,
              bare2.first, bare4.first, bare2.second + bare4.second ? "  FAILURES" : "");

  // A real single-node deployment (nats-server, corral-executor, runsc), cleaned up at the end.
  test::deployment::options dopts;
  dopts.node = "bench";
  dopts.tenant = "bench";
  dopts.executor_args = {"--job-slots", std::to_string(slots), "--max-sandboxes",
                         std::to_string(max_sandboxes)};
  dopts.executor_args.insert(dopts.executor_args.end(), executor_flags.begin(), executor_flags.end());
  test::deployment d(dopts);
  std::string why;
  if (!d.start(&why)) {
    std::fprintf(stderr, "deployment: %s\n", why.c_str());
    return 1;
  }
  // A running executor, as on a machine where corral has been up for a while: its warm pool is
  // full before the first sweep (the sweep's leases then start from pooled sandboxes). Without
  // this wait the first sweep also measured the executor's own start (sandboxes booting).
  uint32_t warm_pool = node_config{}.warm_pool;
  for (std::size_t i = 0; i + 1 < executor_flags.size(); ++i)
    if (executor_flags[i] == "--warm-pool") warm_pool = static_cast<uint32_t>(std::stoul(executor_flags[i + 1]));
  test::heartbeat_watch heartbeats;
  if (!heartbeats.start(d.nats().url(), dopts.node, &why)) {
    std::fprintf(stderr, "cannot watch the executor's heartbeats: %s\n", why.c_str());
    return 1;
  }
  if (warm_pool > 0 && !heartbeats.wait_warm(warm_pool, wall_ms(), std::chrono::seconds(60))) {
    std::fprintf(stderr, "the warm pool did not fill to %u within 60 s\n", warm_pool);
    return 1;
  }
  const std::string dir = d.dir();
  auto fresh = run_sweep(d, dir, programs, programs.size(), conc, "fresh", "fresh1");
  std::printf("  corral fresh       %7.1f programs/s (corral sweep --concurrency %d, %d/%d passed)%s%s\n",
              fresh.rate, conc, fresh.passed, fresh.lines, fresh.failure.empty() ? "" : "  INVALID: ",
              fresh.failure.c_str());
  auto fresh2 = run_sweep(d, dir, programs, programs.size(), conc, "fresh", "fresh2");
  std::printf("  corral fresh again %7.1f programs/s (leases up, %d/%d passed)%s%s\n", fresh2.rate,
              fresh2.passed, fresh2.lines, fresh2.failure.empty() ? "" : "  INVALID: ",
              fresh2.failure.c_str());
  std::printf("    guest wall per job, fresh: %s; again: %s\n", fresh.warmup().c_str(),
              fresh2.warmup().c_str());
  const size_t sn = std::min<size_t>(static_cast<size_t>(strict_n), programs.size());
  auto strict = run_sweep(d, dir, programs, sn, conc, "strict", "strict");
  std::printf("  corral strict      %7.1f programs/s (%zu programs, a new sandbox each, %d/%d passed)%s%s\n",
              strict.rate, sn, strict.passed, strict.lines, strict.failure.empty() ? "" : "  INVALID: ",
              strict.failure.c_str());
  std::printf("  fresh / bare = %.2f (goal >= 0.5); again %.2f; strict / bare = %.3f; load %s\n",
              fresh.rate / bare, fresh2.rate / bare, strict.rate / bare, load_average().c_str());
  return fresh.failure.empty() && fresh2.failure.empty() && strict.failure.empty() ? 0 : 1;
}
