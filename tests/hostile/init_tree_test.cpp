// Process trees that end whole (docs/promises.md P5; docs/protocol.md "corral-init's boundary"):
// an exec's timeout, its output_limit kill and an executor restart (init's session change) end
// every process the exec started: setsid, setpgid and double-forked descendants included,
// checked from another exec. A background process that an exec leaves when it exits normally
// (`nohup server &`) keeps running, stays visible to other execs and can be killed by them.
// A sandbox's terminate leaves nothing of it on the host. Real runsc, executor and CLI.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "schemas/ids.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"

namespace corral {
namespace {

using namespace std::chrono_literals;
using test::background_process;
using test::bin;
using test::deployment;
using test::run_result;

deployment::options tree_options() {
  deployment::options o;
  o.node = "tree-node";
  o.tenant = "tree";
  o.executor_args = {"--max-sandboxes", "4", "--warm-pool", "0", "--max-output-mib", "1"};
  return o;
}

// A shell line that leaves one descendant of each kind the exec must not outlive, each a
// `sleep` with its own marker duration: setsid (a new session), setpgid (a new process group
// in the same session), a double fork that also calls setsid (the classic daemon), and a plain
// double fork (an orphan in the exec's own group). Then it waits for them to exist.
std::string daemons(const std::string& prefix) {
  const std::string a = prefix + "1", b = prefix + "2", c = prefix + "3", d = prefix + "4";
  return "setsid sh -c 'exec sleep " + a + "' & "
         "python3 -c 'import os; os.setpgid(0, 0); os.execvp(\"sleep\", [\"sleep\", \"" + b +
         "\"])' & "
         "(setsid sh -c 'sleep " + c + " & exit 0' &) ; "
         "(sh -c 'sleep " + d + " &' &) ; "
         "i=0; while [ $i -lt 300 ] && [ $(ps -eo args | grep -c '^sleep " + prefix +
         "') -lt 4 ]; do sleep 0.1; i=$((i+1)); done; echo daemons-up; ";
}

run_result exec(deployment& d, const std::string& sb, std::vector<std::string> argv,
                std::vector<std::string> flags = {}) {
  std::vector<std::string> args = {"exec"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back(sb);
  args.push_back("--");
  args.insert(args.end(), argv.begin(), argv.end());
  return d.corral(args);
}

// The `sleep <prefix>N` processes that another exec of the sandbox still sees.
std::string survivors(deployment& d, const std::string& sb, const std::string& prefix) {
  auto ps = exec(d, sb, {"ps", "-eo", "pid,stat,args"});
  std::string found;
  std::size_t pos = 0;
  while ((pos = ps.out.find("sleep " + prefix, pos)) != std::string::npos) {
    const auto begin = ps.out.rfind('\n', pos);
    const auto end = ps.out.find('\n', pos);
    found += ps.out.substr(begin == std::string::npos ? 0 : begin + 1,
                           end == std::string::npos ? std::string::npos : end - begin) ;
    pos = end == std::string::npos ? ps.out.size() : end;
  }
  return found;
}

// Waits (one `ps` exec per look) until no `sleep <prefix>N` is left; returns what is left at
// the deadline (empty: none). SIGKILLed processes take a moment to be gone.
std::string wait_all_gone(deployment& d, const std::string& sb, const std::string& prefix) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  std::string left;
  do {
    left = survivors(d, sb, prefix);
    if (left.empty()) return left;
  } while (std::chrono::steady_clock::now() < deadline);
  return left;
}

class InitTree : public test::deployment_test<tree_options> {};

TEST_F(InitTree, ATimeoutEndsSetsidSetpgidAndDoubleForkedDescendants) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  auto r = exec(*d_, sb, {"sh", "-c", daemons("710") + "sleep 7100"}, {"--timeout", "8"});
  EXPECT_EQ(r.exit_code, 124) << r.out << r.err;
  EXPECT_NE(r.out.find("daemons-up"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(wait_all_gone(*d_, sb, "710"), "") << "outlived the exec's timeout";
  d_->corral({"sandbox", "rm", sb});
}

TEST_F(InitTree, TheOutputLimitKillEndsTheWholeTree) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  // 1 MiB of output is allowed (the deployment's --max-output-mib 1); this writes more.
  auto r = exec(*d_, sb, {"sh", "-c", daemons("720") + "yes corral | head -c 3000000; sleep 7200"});
  EXPECT_NE(r.err.find("output_limit"), std::string::npos) << r.err;
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(wait_all_gone(*d_, sb, "720"), "") << "outlived the output_limit kill";
  d_->corral({"sandbox", "rm", sb});
}

TEST_F(InitTree, ABackgroundProcessOfANormalExitKeepsRunningAndOtherExecsSeeAndKillIt) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  auto start = exec(*d_, sb, {"sh", "-c", "nohup sleep 7390 >/dev/null 2>&1 & echo started"});
  EXPECT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(start.out, "started\n");
  // Another exec's timeout leaves it alone: trees are per exec.
  auto other = exec(*d_, sb, {"sh", "-c", daemons("731") + "sleep 7310"}, {"--timeout", "8"});
  EXPECT_EQ(other.exit_code, 124) << other.err;
  EXPECT_NE(other.out.find("daemons-up"), std::string::npos) << other.out << other.err;
  EXPECT_EQ(wait_all_gone(*d_, sb, "731"), "");
  EXPECT_NE(survivors(*d_, sb, "7390"), "") << "the nohup'ed server did not survive";
  // Execs see each other's processes and may signal them.
  auto kill = exec(*d_, sb, {"sh", "-c", "kill -KILL $(pgrep -f '^sleep 7390$') && echo killed"});
  EXPECT_EQ(kill.exit_code, 0) << kill.err;
  EXPECT_EQ(kill.out, "killed\n");
  EXPECT_EQ(wait_all_gone(*d_, sb, "7390"), "");
  d_->corral({"sandbox", "rm", sb});
}

TEST_F(InitTree, TerminateLeavesNothingOfTheSandboxOnTheHost) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  background_process running;
  ASSERT_TRUE(running.start(d_->cli({"exec", sb, "--", "sh", "-c", daemons("740") + "sleep 7400"})));
  ASSERT_TRUE(running.wait_for_output("daemons-up", 60s)) << running.output();
  EXPECT_EQ(d_->corral({"sandbox", "rm", sb}).exit_code, 0);
  EXPECT_EQ(running.wait(60s), 137) << running.output();
  // Its runsc container, its processes (each a host task of the sandbox) and its directory
  // are gone.
  EXPECT_TRUE(test::wait_path_gone(d_->dir() + "/executor/runtime/sandboxes/" + sb, 30s));
  auto left = test::run({bin("corral-runsc"), "--root", d_->runsc_root(), "list", "-quiet"});
  EXPECT_EQ(left.exit_code, 0) << left.err;
  EXPECT_EQ(left.out.find(sb), std::string::npos) << left.out;
}

// The executor is killed with -9 while an exec with daemons runs; the restarted executor's new
// session makes init end the lost exec's whole tree, not just its process group.
TEST(InitTreeRestart, AnExecutorRestartEndsTheTreesOfLostExecs) {
  deployment d(tree_options());
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  const auto sb = d.create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  background_process lost;
  ASSERT_TRUE(lost.start(d.cli({"exec", sb, "--", "sh", "-c", daemons("750") + "sleep 7500"})));
  ASSERT_TRUE(lost.wait_for_output("daemons-up", 60s)) << lost.output();
  d.executor().kill9();
  ASSERT_TRUE(d.start_executor(&why)) << why;
  EXPECT_EQ(lost.wait(60s), 255) << lost.output();
  EXPECT_EQ(wait_all_gone(d, sb, "750"), "") << "outlived the session that started them";
  EXPECT_EQ(d.corral({"sandbox", "rm", sb}).exit_code, 0);
}

}  // namespace
}  // namespace corral
