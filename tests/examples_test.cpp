// examples/ end to end: each example program run as a subprocess (python3 examples/x.py, as its
// header says) against a real corral-gateway, nats-server and corral-executor (runsc sandboxes),
// with inputs chosen here so its output can only be right if the sandbox really computed it.
// Also the Python client's stream resume across gateway restarts (tests/python/).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <random>
#include <sstream>

#include "tests/gateway_harness.hpp"

namespace corral {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using test::deployment;

deployment::options examples_options() {
  deployment::options o;
  o.node = "examples-node";
  o.tenant = "examples";
  o.executor_args = {"--max-sandboxes", "8"};
  return o;
}

class Examples : public test::deployment_test<examples_options> {
 protected:
  static void SetUpTestSuite() {
    test::deployment_test<examples_options>::SetUpTestSuite();
    if (d_ == nullptr) return;
    auto r = d_->corral({"token", "create", "--tenant", d_->tenant(), "--tokens",
                         d_->dir() + "/gateway-tokens"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    token_ = test::trim(r.out);
    gw_ = new test::gateway_process();
    std::string why;
    ASSERT_TRUE(gw_->start(*d_, &why)) << why;
  }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
    test::deployment_test<examples_options>::TearDownTestSuite();
  }
  void SetUp() override {
    test::deployment_test<examples_options>::SetUp();
    ASSERT_NE(gw_, nullptr);
    ASSERT_NE(gw_->port(), 0);
  }

  static std::map<std::string, std::string> client_env() {
    return {{"CORRAL_URL", gw_->url()}, {"CORRAL_TOKEN", token_}, {"PYTHONDONTWRITEBYTECODE", "1"}};
  }
  // python3 examples/<name> args..., as a user runs it (no PYTHONPATH: it finds the client).
  static test::run_result run_example(const std::string& name, const std::vector<std::string>& args,
                                      std::chrono::milliseconds timeout = 300s) {
    std::vector<std::string> argv = {"python3", std::string(CORRAL_SOURCE_DIR) + "/examples/" + name};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv, {}, timeout, client_env());
  }
  // Every line of a --json run's stdout, parsed (a line that is not JSON fails the test).
  static std::vector<json> json_lines(const std::string& out) {
    std::vector<json> all;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      auto j = json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
      if (!j.is_discarded()) all.push_back(std::move(j));
    }
    return all;
  }
  static uint64_t random_in(uint64_t lo, uint64_t hi) {
    static std::mt19937_64 gen{std::random_device{}()};
    return std::uniform_int_distribution<uint64_t>(lo, hi)(gen);
  }

  static inline test::gateway_process* gw_ = nullptr;
  static inline std::string token_;
};

// Cells keep their variables (and the process: same pid), stdout and stderr come apart, a final
// expression shows its value, an exception or a cell past its timeout is reported and the
// interpreter goes on.
TEST_F(Examples, CodeInterpreterKeepsStateAcrossCells) {
  const uint64_t n = random_in(1000, 1000000);
  auto r = run_example("code_interpreter.py",
                       {"--json", "--timeout", "3", "x = " + std::to_string(n),
                        "print(x * 2)",
                        "import os, sys\npid = os.getpid()\nprint('to stderr', file=sys.stderr)\nx += 1",
                        "x",
                        "undefined_name",
                        "while True:\n    pass",
                        "print(x, os.getpid() == pid)"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto cells = json_lines(r.out);
  ASSERT_EQ(cells.size(), 7u) << r.out;
  for (std::size_t i = 0; i < cells.size(); ++i) EXPECT_EQ(cells[i]["cell"], i + 1) << cells[i];

  EXPECT_EQ(cells[0]["stdout"], "");
  EXPECT_TRUE(cells[0]["error"].is_null()) << cells[0];
  EXPECT_EQ(cells[1]["stdout"], std::to_string(2 * n) + "\n") << cells[1];
  EXPECT_EQ(cells[2]["stdout"], "") << cells[2];
  EXPECT_EQ(cells[2]["stderr"], "to stderr\n") << cells[2];
  EXPECT_EQ(cells[3]["stdout"], std::to_string(n + 1) + "\n") << cells[3];
  ASSERT_TRUE(cells[4]["error"].is_string()) << cells[4];
  EXPECT_NE(cells[4]["error"].get<std::string>().find("NameError: name 'undefined_name' is not defined"),
            std::string::npos) << cells[4];
  ASSERT_TRUE(cells[5]["error"].is_string()) << cells[5];
  EXPECT_NE(cells[5]["error"].get<std::string>().find("CellTimeout"), std::string::npos) << cells[5];
  EXPECT_EQ(cells[6]["stdout"], std::to_string(n + 1) + " True\n") << cells[6];
  EXPECT_TRUE(cells[6]["error"].is_null()) << cells[6];
}

// The documented command without arguments: the demo's values are computed in the sandbox.
TEST_F(Examples, CodeInterpreterDemo) {
  auto r = run_example("code_interpreter.py", {});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("area = 19.635\n"), std::string::npos) << r.out;   // pi * 2.5^2
  EXPECT_NE(r.out.find("39.269908169872416\n"), std::string::npos) << r.out;  // cell 2: area * 2
  EXPECT_NE(r.out.find("\n285\n"), std::string::npos) << r.out;            // sum of squares < 10
  EXPECT_NE(r.out.find("ZeroDivisionError: division by zero"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("squares still has 10 items"), std::string::npos) << r.out;
}

// Node, Ruby and PHP compute what this test asks, each in its own sandbox; an error is reported
// with its exit code and stderr.
TEST_F(Examples, UntrustedSnippetsComputeInEachLanguage) {
  const uint64_t a = random_in(1000, 40000000), b = random_in(1000, 40000000);  // a*b < 2^53
  const uint64_t m = random_in(100, 100000);
  const std::string word = "corral" + std::to_string(random_in(10, 99));
  const std::string reversed(word.rbegin(), word.rend());
  auto r = run_example("untrusted_snippets.py",
                       {"--json", "--timeout", "20",
                        "--snippet", "node", "console.log(" + std::to_string(a) + " * " + std::to_string(b) + ")",
                        "--snippet", "ruby", "puts (1.." + std::to_string(m) + ").reduce(:+)",
                        "--snippet", "php", "<?php echo strrev(\"" + word + "\"), \"\\n\";",
                        "--snippet", "ruby", "def broken(\n  puts 1"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto runs = json_lines(r.out);
  ASSERT_EQ(runs.size(), 4u) << r.out;
  const std::string want[] = {std::to_string(a * b) + "\n", std::to_string(m * (m + 1) / 2) + "\n",
                              reversed + "\n"};
  const std::string lang[] = {"node", "ruby", "php"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(runs[i]["language"], lang[i]) << runs[i];
    EXPECT_EQ(runs[i]["status"], "exited") << runs[i];
    EXPECT_EQ(runs[i]["returncode"], 0) << runs[i];
    EXPECT_EQ(runs[i]["stdout"], want[i]) << runs[i];
  }
  EXPECT_EQ(runs[3]["status"], "exited") << runs[3];
  EXPECT_EQ(runs[3]["returncode"], 1) << runs[3];
  EXPECT_NE(runs[3]["stderr"].get<std::string>().find("syntax error"), std::string::npos) << runs[3];
}

// The demo: one useful snippet per language, then an infinite loop per language, each ended by
// its timeout (status "timeout", return code 124) instead of hanging, then a memory hog ended by
// the sandbox's memory limit.
TEST_F(Examples, UntrustedSnippetsDemoEndsHostileSnippets) {
  auto r = run_example("untrusted_snippets.py", {"--json", "--timeout", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto runs = json_lines(r.out);
  ASSERT_EQ(runs.size(), 7u) << r.out;
  EXPECT_EQ(runs[0]["stdout"], "2 3 5 7 11 13 17 19 23 29\n") << runs[0];
  EXPECT_EQ(runs[1]["stdout"], "CORRAL,GVISOR,NATS,SANDBOX\n") << runs[1];
  EXPECT_EQ(runs[2]["stdout"], "55\n") << runs[2];
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(runs[i]["status"], "exited") << runs[i];
    EXPECT_EQ(runs[i]["returncode"], 0) << runs[i];
  }
  const std::string lang[] = {"node", "ruby", "php"};
  for (int i = 3; i < 6; ++i) {
    EXPECT_EQ(runs[i]["language"], lang[i - 3]) << runs[i];
    EXPECT_EQ(runs[i]["status"], "timeout") << runs[i];
    EXPECT_EQ(runs[i]["returncode"], 124) << runs[i];
    // Ended by the snippet's 3 s timeout, not by the sandbox's lifetime (timeout + 120 s).
    EXPECT_GE(runs[i]["seconds"].get<double>(), 3.0) << runs[i];
    EXPECT_LT(runs[i]["seconds"].get<double>(), 60.0) << runs[i];
  }
  EXPECT_EQ(runs[6]["language"], "node") << runs[6];
  EXPECT_EQ(runs[6]["status"], "oom_killed") << runs[6];
  EXPECT_EQ(runs[6]["returncode"], 137) << runs[6];
}

uint64_t fib(unsigned n) {
  uint64_t a = 0, b = 1;
  for (unsigned i = 0; i < n; ++i) {
    const uint64_t next = a + b;
    a = b;
    b = next;
  }
  return a;
}

// The loop fails twice for two different reasons the sandbox reports (a NameError with exit 1,
// then a timeout), revises the program from each, and passes on the third attempt with the
// number this test asked for.
TEST_F(Examples, AgentLoopRetriesUntilItPasses) {
  const auto n = static_cast<unsigned>(random_in(30, 90));
  auto r = run_example("agent_loop.py", {"--json", "--n", std::to_string(n), "--timeout", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto events = json_lines(r.out);
  ASSERT_EQ(events.size(), 4u) << r.out;
  EXPECT_EQ(events[0]["attempt"], 1);
  EXPECT_EQ(events[0]["status"], "exited") << events[0];
  EXPECT_EQ(events[0]["returncode"], 1) << events[0];
  EXPECT_NE(events[0]["stderr"].get<std::string>().find("NameError: name 'fibb'"), std::string::npos)
      << events[0];
  EXPECT_EQ(events[1]["attempt"], 2);
  EXPECT_EQ(events[1]["status"], "timeout") << events[1];
  EXPECT_EQ(events[1]["returncode"], 124) << events[1];
  EXPECT_EQ(events[2]["attempt"], 3);
  EXPECT_EQ(events[2]["status"], "exited") << events[2];
  EXPECT_EQ(events[2]["returncode"], 0) << events[2];
  const std::string answer = "fib(" + std::to_string(n) + ") = " + std::to_string(fib(n)) + "\n";
  EXPECT_EQ(events[2]["stdout"], answer) << events[2];
  EXPECT_EQ(events[3]["succeeded"], true) << events[3];
  EXPECT_EQ(events[3]["attempts"], 3) << events[3];
  EXPECT_EQ(events[3]["answer"], answer) << events[3];
}

TEST_F(Examples, AgentLoopDemo) {
  auto r = run_example("agent_loop.py", {});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("succeeded on attempt 3: fib(40) = " + std::to_string(fib(40)) + "\n"),
            std::string::npos)
      << r.out;
}

// The Python client's StreamReader resumes a followed output stream from its last offset when
// the gateway is killed and restarted under it: every line exactly once, in order.
TEST_F(Examples, PythonStreamResume) {
  const std::string src = CORRAL_SOURCE_DIR;
  auto env = client_env();
  env["PYTHONPATH"] = src + "/clients/python";
  test::background_process py;
  ASSERT_TRUE(py.start({"python3", src + "/tests/python/test_stream_resume.py"}, env));
  for (int k = 1; k <= 2; ++k) {
    const std::string ask = "RESTART-GATEWAY " + std::to_string(k) + " ";
    ASSERT_TRUE(py.wait_for_output(ask, 120s)) << py.output();
    const auto out = py.output();
    const auto at = out.find(ask) + ask.size();
    const std::string sb = out.substr(at, out.find('\n', at) - at);
    std::string why;
    ASSERT_TRUE(gw_->restart(*d_, &why)) << why;
    // Open the sandbox's gate over NATS (not through the gateway): the rest of the output comes.
    auto w = d_->corral({"fs", "write", sb, "/tmp/go-" + std::to_string(k)}, "go");
    ASSERT_EQ(w.exit_code, 0) << w.out << w.err;
  }
  EXPECT_EQ(py.wait(180s), 0) << py.output();
  EXPECT_NE(py.output().find("Ran 1 test"), std::string::npos) << py.output();
  EXPECT_NE(py.output().find("\nOK"), std::string::npos) << py.output();
}

// The same resume logic against a scripted fake gateway (no deployment): overlapping frames, a
// frame cut in its middle, a clean end without the exit, a gap; the reader asks again from
// exactly its offset each time.
TEST(PythonStreamReader, ResumesFromItsOffset) {
  const std::string src = CORRAL_SOURCE_DIR;
  auto r = test::run({"python3", src + "/tests/python/test_stream_reader.py"}, {}, 60s,
                     {{"PYTHONPATH", src + "/clients/python"}, {"PYTHONDONTWRITEBYTECODE", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("Ran 1 test"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\nOK"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace corral
