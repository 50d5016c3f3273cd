// Expected output, the meaning of "passed", the output lines and reading JobResults:
// client/sweep/verdict.hpp.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/sweep/verdict.hpp"
#include "client/sweep/job.hpp"
#include "schemas/ids.hpp"
#include "tests/sweep_unit_support.hpp"

namespace corral::sweep {
namespace {

using nlohmann::json;
using namespace corral::sweep::test;

// -- expected output and "passed" ---------------------------------------------------------------

TEST(SweepOutput, TrailingWhitespaceOfLinesAndEndIsIgnored) {
  EXPECT_TRUE(stdout_matches("15   \n\n\n", "15"));
  EXPECT_TRUE(stdout_matches("a \r\nb\t\r\n", "a\nb\n"));
  EXPECT_TRUE(stdout_matches("", "\n"));
  EXPECT_FALSE(stdout_matches(" 15", "15"));       // leading whitespace counts
  EXPECT_FALSE(stdout_matches("a\n\nb", "a\nb"));  // so do blank lines inside
  EXPECT_FALSE(stdout_matches("15", "16"));
  EXPECT_EQ(normalize_output("x  \ny \n\n"), "x\ny");
}

TEST(SweepPassed, HumanEvalMeaningWithTests) {
  program p;
  p.has_tests = true;
  EXPECT_TRUE(passed(p, exited(0, true)));
  EXPECT_FALSE(passed(p, exited(0, false)));  // sys.exit(0) before the tests ran
  EXPECT_FALSE(passed(p, exited(1, false)));  // an assertion failed, or it raised
  EXPECT_FALSE(passed(p, exited(3, true)));
  job_result t = exited(124, false);
  t.outcome = wire::Outcome::timeout;
  EXPECT_FALSE(passed(p, t));
  job_result killed = exited(137, true);
  killed.outcome = wire::Outcome::signaled;
  EXPECT_FALSE(passed(p, killed));
  // Neither tests nor expected: the program must still have run to its end.
  program plain;
  EXPECT_TRUE(passed(plain, exited(0, true)));
  EXPECT_FALSE(passed(plain, exited(0, false)));
}

TEST(SweepPassed, ExpectedOutputMustMatchWholly) {
  program p;
  p.expected = "15\n";
  EXPECT_TRUE(passed(p, exited(0, true, "15  \n")));
  EXPECT_TRUE(passed(p, exited(0, false, "15\n")));  // printing and exit(0) is fine here
  EXPECT_FALSE(passed(p, exited(0, true, "16\n")));
  EXPECT_FALSE(passed(p, exited(1, true, "15\n")));
  job_result cut = exited(0, true, "15\n");
  cut.stdout_truncated = true;
  EXPECT_FALSE(passed(p, cut));
  program both = p;
  both.has_tests = true;
  EXPECT_FALSE(passed(both, exited(0, false, "15\n")));
  EXPECT_TRUE(passed(both, exited(0, true, "15\n")));
}

// -- output lines -------------------------------------------------------------------------------

TEST(SweepOutput, ResultLineFieldsInOrderWithCappedStreams) {
  program p = must_parse(R"J({"id": "HumanEval/3", "source": "x", "test": "t"})J");
  job_result r = exited(0, true);
  r.job_id = "b-7-0123abcd";
  r.stdout_data = std::string(out_stream_cap - 1, 'a') + "\xc3\xa9" + "tail";  // é across the cap
  r.stderr_data = "bad \xff byte";
  r.node = "n1";
  r.isolation = wire::Isolation::strict;
  r.attempt = 2;
  r.wall_ms = 11;
  r.cpu_ms = 7;
  r.memory_peak_kib = 9000;
  const auto line = result_line(p, r);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_EQ(keys_of(line),
            (std::vector<std::string>{"id", "line", "passed", "status", "returncode", "completed",
                                      "stdout", "stderr", "stdout_truncated", "stderr_truncated",
                                      "wall_ms", "cpu_ms", "memory_peak_kib", "node", "isolation",
                                      "attempt", "job_id"}));
  auto j = json::parse(line);
  EXPECT_EQ(j["id"], "HumanEval/3");
  EXPECT_EQ(j["line"], 7);
  EXPECT_EQ(j["passed"], true);
  EXPECT_EQ(j["status"], "exited");
  EXPECT_EQ(j["returncode"], 0);
  EXPECT_EQ(j["stdout"].get<std::string>(), std::string(out_stream_cap - 1, 'a'));  // not half an é
  EXPECT_EQ(j["stdout_truncated"], true);
  EXPECT_EQ(j["stderr"].get<std::string>(), "bad \xef\xbf\xbd byte");  // replaced, still JSON
  EXPECT_EQ(j["stderr_truncated"], false);
  EXPECT_EQ(j["isolation"], "strict");
  EXPECT_EQ(j["attempt"], 2);
  EXPECT_EQ(j["memory_peak_kib"], 9000);

  job_result t = exited(124, false);
  t.outcome = wire::Outcome::timeout;
  t.message = "timed out after 2000 ms";
  auto k = json::parse(result_line(p, t));
  EXPECT_EQ(k["status"], "timeout");
  EXPECT_EQ(k["passed"], false);
  EXPECT_EQ(k["message"], "timed out after 2000 ms");
}

TEST(SweepOutput, InvalidLine) {
  const auto line = invalid_line(4, "line-4", "not valid JSON");
  auto j = json::parse(line);
  EXPECT_EQ(j["id"], "line-4");
  EXPECT_EQ(j["line"], 4);
  EXPECT_EQ(j["passed"], false);
  EXPECT_EQ(j["status"], "invalid");
  EXPECT_TRUE(j["returncode"].is_null());
  EXPECT_EQ(j["message"], "not valid JSON");
}

}  // namespace
}  // namespace corral::sweep
