// Limits and metering end to end: corral CLI -> nats-server -> corral-executor -> runsc.
// A memory bomb's exec ends oom_killed (137) and its sandbox failed with "out of memory" while a
// neighbour keeps working; `corral usage` reports billed core-seconds, GiB-seconds and cost per
// sandbox and per tenant, never another tenant's, and what was billed survives kill -9 of the
// executor. Waits are on events (a command's answer) with deadlines, never sleeps.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "schemas/ids.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/nats_server.hpp"

namespace corral {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using test::background_process;
using test::run_result;

using test::bin;
using test::deployment;
using test::trim;

struct billed {
  bool found = false;
  double cpu = 0, gib = 0, cost = 0;
};

// The line of `corral usage` that starts with key (a sandbox id, or "TOTAL").
billed parse_usage(const std::string& out, const std::string& key) {
  std::istringstream in(out);
  std::string line;
  billed b;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    const auto rest = key == "TOTAL" ? line.substr(line.find(')') + 1) : line.substr(key.size());
    b.found = std::sscanf(rest.c_str(), "%lf %lf %lf", &b.cpu, &b.gib, &b.cost) == 3;
  }
  return b;
}

class UsageE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "runsc needs root";
    deployment::options o;
    o.node = "usage-node";
    o.tenant = "meter";
    o.executor_args = {"--usage-sample-ms", "200"};
    d_ = std::make_unique<deployment>(o);
    std::string why;
    ASSERT_TRUE(d_->start(&why)) << why;
  }

  void start_executor() {
    std::string why;
    ASSERT_TRUE(d_->start_executor(&why)) << why;
  }

  run_result corral(const std::vector<std::string>& args, const std::string& tenant = "meter") {
    return d_->corral(args, {}, 120s, tenant);
  }

  std::string create(const std::vector<std::string>& extra = {}) { return d_->create(extra); }

  // Asks `corral usage` until pred holds for the sandbox's line, or the deadline.
  template <class Pred>
  billed wait_usage(const std::string& sb, Pred pred, std::chrono::seconds deadline = 20s) {
    const auto end = steady::now() + deadline;
    billed b;
    do {
      b = parse_usage(corral({"usage"}).out, sb);
      if (b.found && pred(b)) return b;
    } while (steady::now() < end);
    return b;
  }

  std::unique_ptr<deployment> d_;
};

TEST_F(UsageE2E, MemoryBombExecEndsOomKilledAndTheNeighbourWorks) {
  const auto bomber = create({"--memory", "160"});
  const auto neighbour = create();
  ASSERT_TRUE(wire::valid_id(bomber, "sb-") && wire::valid_id(neighbour, "sb-"));
  const auto t0 = steady::now();
  auto bomb = corral({"exec", bomber, "--", "python3", "-c",
                      "a = []\nwhile True:\n    a.append(bytearray(16 << 20))\n"});
  const auto took = steady::now() - t0;
  EXPECT_EQ(bomb.exit_code, 137) << bomb.out << bomb.err;
  EXPECT_LT(took, 15s);
  auto info = corral({"sandbox", "info", bomber});
  EXPECT_NE(info.out.find("failed"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("out of memory"), std::string::npos) << info.out;
  auto ok = corral({"exec", neighbour, "--", "echo", "neighbour ok"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "neighbour ok\n");
  EXPECT_EQ(corral({"sandbox", "rm", neighbour}).exit_code, 0);
}

TEST_F(UsageE2E, UsageIsBilledPerTenantAndSurvivesKill9) {
  const auto sb = create();
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  // ~1 s of one busy core: billed cpu is max(request 0.125 core x time, the cpu actually used).
  auto busy = corral({"exec", sb, "--", "python3", "-c",
                      "import time\nt = time.time()\nwhile time.time() - t < 1.0: pass\n"});
  ASSERT_EQ(busy.exit_code, 0) << busy.err;
  const auto before = wait_usage(sb, [](const billed& b) { return b.cpu >= 0.8; });
  ASSERT_TRUE(before.found) << corral({"usage"}).out;
  EXPECT_GE(before.cpu, 0.8);
  EXPECT_GT(before.gib, 0);  // at least the 128 MiB request for as long as it ran
  EXPECT_NEAR(before.cost, before.cpu * 0.00003942 + before.gib * 0.00000672, 1e-6);
  const auto total = parse_usage(corral({"usage"}).out, "TOTAL");
  EXPECT_TRUE(total.found);
  EXPECT_GE(total.cpu, before.cpu);
  // Another tenant never sees it.
  auto other = corral({"usage"}, "someone-else");
  EXPECT_EQ(other.exit_code, 0) << other.err;
  EXPECT_EQ(other.out.find(sb), std::string::npos) << other.out;
  EXPECT_FALSE(parse_usage(corral({"usage", sb}, "someone-else").out, sb).found);

  // kill -9 and restart: billing resumes from what was stored, it never starts over.
  d_->executor().signal(SIGKILL);
  EXPECT_NE(d_->executor().wait(30s), -1);
  start_executor();
  const auto after = wait_usage(sb, [&](const billed& b) { return b.gib > before.gib; });
  EXPECT_TRUE(after.found) << corral({"usage"}).out;
  EXPECT_GE(after.cpu, before.cpu);
  EXPECT_GT(after.gib, before.gib);
  EXPECT_GE(after.cost, before.cost);
  corral({"sandbox", "rm", sb});
}

}  // namespace
}  // namespace corral
