// The command line as people use it: every verb's --help, --version, usage errors that name
// the verb, the --json outputs (sandbox ls, sandbox info, usage, node ls) against a real
// deployment, and a pty exec that follows the terminal's size changes (exec_options::
// window_changed).
#include <gtest/gtest.h>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/client.hpp"
#include "schemas/ids.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"

namespace corral {
namespace {

using nlohmann::json;
using test::bin;

test::run_result corral(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {bin("corral")};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run(argv);
}

// -- help, version, usage errors (no NATS needed) -----------------------------------------------

TEST(CliHelp, EveryVerbAnswersItsOwnHelp) {
  const std::vector<std::vector<std::string>> verbs = {
      {"up"}, {"run"}, {"exec"}, {"sandbox", "create"}, {"sandbox", "ls"}, {"sandbox", "info"},
      {"sandbox", "wait"}, {"sandbox", "rm"}, {"sandbox", "tags"}, {"sandbox", "logs"},
      {"fs", "cat"}, {"fs", "write"}, {"fs", "ls"}, {"fs", "stat"}, {"fs", "mkdir"},
      {"fs", "rm"}, {"usage"}, {"node", "ls"}, {"token", "create"}, {"token", "revoke"},
      {"sweep"}};
  const auto overview = corral({"--help"});
  EXPECT_EQ(overview.exit_code, 0) << overview.err;
  for (const auto& v : verbs) {
    std::string name = v[0] + (v.size() > 1 ? " " + v[1] : "");
    auto args = v;
    args.push_back("--help");
    const auto r = corral(args);
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_EQ(r.out.rfind("usage: corral " + name + " ", 0), 0u) << name << ": " << r.out;
    EXPECT_EQ(r.err, "") << name;
    EXPECT_NE(overview.out.find("  " + name + " "), std::string::npos) << name << " not in --help";
  }
  // -h too, and `corral help VERB`.
  EXPECT_EQ(corral({"sandbox", "create", "-h"}).exit_code, 0);
  const auto help = corral({"help", "exec"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(help.out.rfind("usage: corral exec ", 0), 0u) << help.out;
  // A group alone lists its subcommands.
  const auto group = corral({"sandbox", "--help"});
  EXPECT_EQ(group.exit_code, 0);
  EXPECT_NE(group.out.find("sandbox create"), std::string::npos) << group.out;
}

TEST(CliHelp, HelpAfterTheSeparatorIsTheCommandsOwn) {
  // `exec SB -- prog --help` passes --help to prog: here it is a usage error of exec's own
  // arguments (no sandbox id), not exec's help.
  const auto r = corral({"exec", "--", "prog", "--help"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("corral: exec: missing sandbox id"), std::string::npos) << r.err;
}

TEST(CliHelp, VersionPrintsVersionAndBuild) {
  const auto r = corral({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(std::string("corral ") + CORRAL_EXPECTED_VERSION + "\nbuild: ", 0), 0u)
      << r.out;
  // The commit (or "unknown") and the build type.
  EXPECT_NE(r.out.find(std::string("(") + CORRAL_EXPECTED_BUILD_TYPE + ")"), std::string::npos)
      << r.out;
}

TEST(CliHelp, UsageErrorsNameTheVerbAndItsSynopsis) {
  const auto r = corral({"sandbox", "create", "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("corral: sandbox create: unknown argument --bogus"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("usage: corral sandbox create "), std::string::npos) << r.err;
  const auto u = corral({"sandbox", "frobnicate"});
  EXPECT_EQ(u.exit_code, 2);
  EXPECT_NE(u.err.find("unknown subcommand frobnicate"), std::string::npos) << u.err;
  const auto c = corral({"frobnicate"});
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.err.find("unknown command frobnicate"), std::string::npos) << c.err;
  const auto g = corral({"--tenant"});
  EXPECT_EQ(g.exit_code, 2);
  EXPECT_NE(g.err.find("missing value for --tenant"), std::string::npos) << g.err;
}

// -- against a deployment ------------------------------------------------------------------------

test::deployment::options cli_options() {
  test::deployment::options o;
  o.node = "cli-node";
  o.tenant = "cli";
  o.executor_args = {"--max-sandboxes", "4", "--tag", "zone=test", "--heartbeat-ms", "500"};
  return o;
}

class CliJson : public test::deployment_test<cli_options> {};

TEST_F(CliJson, SandboxLsInfoUsageAndNodeLsAreOneJsonDocument) {
  const auto sb = d_->create({"--name", "jsonbox", "--tag", "k=v", "--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;

  const auto ls = d_->corral({"sandbox", "ls", "--json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  const auto list = json::parse(ls.out);
  ASSERT_TRUE(list["sandboxes"].is_array()) << ls.out;
  bool found = false;
  for (const auto& s : list["sandboxes"]) {
    if (s["id"] != sb) continue;
    found = true;
    EXPECT_EQ(s["name"], "jsonbox");
    EXPECT_EQ(s["tags"]["k"], "v");
    EXPECT_EQ(s["node"], "cli-node");
  }
  EXPECT_TRUE(found) << ls.out;

  const auto info = d_->corral({"sandbox", "info", "--name", "jsonbox", "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const auto i = json::parse(info.out);
  EXPECT_EQ(i["id"], sb);
  EXPECT_EQ(i["status"], "running") << info.out;
  EXPECT_EQ(i["tenant"], "cli");
  EXPECT_TRUE(i["returncode"].is_null());
  EXPECT_EQ(i["timeout_ms"], 600000);
  for (const char* k : {"image", "created_at_ms", "started_at_ms", "ended_at_ms", "ready", "message"})
    EXPECT_TRUE(i.contains(k)) << k;

  // The meter reports a sandbox from its first sample on.
  test::run_result usage;
  json u;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    usage = d_->corral({"usage", sb, "--json"});
    ASSERT_EQ(usage.exit_code, 0) << usage.err;
    u = json::parse(usage.out);
    ASSERT_TRUE(u["sandboxes"].is_array()) << usage.out;
  } while (u["sandboxes"].empty() && std::chrono::steady_clock::now() < until);
  ASSERT_EQ(u["sandboxes"].size(), 1u) << usage.out;
  EXPECT_EQ(u["sandboxes"][0]["sandbox_id"], sb);
  EXPECT_TRUE(u["sandboxes"][0]["cpu_core_seconds"].is_number());
  EXPECT_TRUE(u["total"]["cost"].is_number()) << usage.out;

  // The operator's view: a connection with every permission (the test's own), as the
  // operator's identity has.
  const auto nodes = test::run({bin("corral"), "--nats", d_->nats().url(), "node", "ls", "--json"});
  ASSERT_EQ(nodes.exit_code, 0) << nodes.err;
  const auto n = json::parse(nodes.out);
  ASSERT_TRUE(n["nodes"].is_array()) << nodes.out;
  ASSERT_EQ(n["nodes"].size(), 1u) << nodes.out;
  EXPECT_EQ(n["nodes"][0]["node"], "cli-node");
  EXPECT_EQ(n["nodes"][0]["capacity"], 4);
  EXPECT_EQ(n["nodes"][0]["tags"]["zone"], "test");
  EXPECT_GE(n["nodes"][0]["running"].get<int>(), 1);

  EXPECT_EQ(d_->corral({"sandbox", "rm", sb}).exit_code, 0);
}

// A pty exec follows the terminal: after its first output the terminal "grows"
// (window_changed reports 50x132 once), and `stty size` inside sees the new size.
TEST_F(CliJson, PtyExecFollowsTerminalResizes) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  client::session::config cfg;
  cfg.nats_url = d_->nats().url();
  cfg.nats_creds = d_->creds(d_->tenant());
  cfg.tenant = d_->tenant();
  std::string error;
  auto c = client::session::connect(cfg, &error);
  ASSERT_NE(c, nullptr) << error;

  client::exec_options o;
  o.pty = true;
  o.stdin_open = true;
  o.rows = 24;
  o.cols = 80;
  o.timeout_ms = 60'000;
  // Up to 20 s: prints the size until it is the new one.
  o.argv = {"sh", "-c",
            "i=0; while [ $i -lt 200 ]; do s=$(stty size); echo \"size $s\"; "
            "[ \"$s\" = \"50 132\" ] && exit 0; sleep 0.1; i=$((i+1)); done; exit 1"};
  std::atomic<bool> saw_output{false}, reported{false};
  std::atomic<int> asked{0};
  o.window_changed = [&](uint16_t& rows, uint16_t& cols) {
    ++asked;
    if (!saw_output || reported.exchange(true)) return false;
    rows = 50;
    cols = 132;
    return true;
  };
  std::string out;
  auto r = c->exec(sb, o, [&](wire::Stream, const uint8_t* p, std::size_t n) {
    out.append(reinterpret_cast<const char*>(p), n);
    saw_output = true;
  });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 0) << out;
  EXPECT_NE(out.find("size 24 80"), std::string::npos) << out;
  EXPECT_NE(out.find("size 50 132"), std::string::npos) << out;
  EXPECT_TRUE(reported);
  EXPECT_GT(asked.load(), 1);
  EXPECT_EQ(d_->corral({"sandbox", "rm", sb}).exit_code, 0);
}


// The CLI's side of it: `corral exec -t` on a terminal (a pty this test holds the master of)
// sends the new size when the terminal is resized (SIGWINCH), and `stty size` inside sees it.
TEST_F(CliJson, ExecTtyOnATerminalSendsItsNewSize) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  const auto argv = d_->cli({"exec", "-t", sb, "--", "sh", "-c",
                             "i=0; while [ $i -lt 200 ]; do s=$(stty size); echo \"size $s\"; "
                             "[ \"$s\" = \"40 100\" ] && exit 0; sleep 0.1; i=$((i+1)); done; "
                             "exit 1"});
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  winsize first{};
  first.ws_row = 24;
  first.ws_col = 80;
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &first);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  // Reads the terminal until `what` has been seen or the deadline; false at EOF or deadline.
  std::string seen;
  auto read_until = [&](const std::string& what, std::chrono::seconds within) {
    const auto until = std::chrono::steady_clock::now() + within;
    while (seen.find(what) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{master, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) return false;  // EIO: the child closed the terminal
      seen.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  };
  EXPECT_TRUE(read_until("size 24 80", std::chrono::seconds(30))) << seen;
  winsize grown{};
  grown.ws_row = 40;
  grown.ws_col = 100;
  ASSERT_EQ(::ioctl(master, TIOCSWINSZ, &grown), 0);  // the kernel sends corral SIGWINCH
  EXPECT_TRUE(read_until("size 40 100", std::chrono::seconds(30))) << seen;
  (void)read_until("\n<never>", std::chrono::seconds(5));  // drain until corral exits (EIO)
  int status = 0;
  pid_t waited = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((waited = ::waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < until)
    (void)read_until("\n<never>", std::chrono::seconds(1));
  if (waited == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ::close(master);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << ": " << seen;
  EXPECT_EQ(d_->corral({"sandbox", "rm", sb}).exit_code, 0);
}

}  // namespace
}  // namespace corral
