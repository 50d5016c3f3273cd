// `corral sweep --direct` end to end: the sample problems run as expected and bad lines are
// reported; resume from a cut output file runs only what is missing; strict isolation.
#include "tests/sweep_harness.hpp"

namespace corral::sweep_test {
namespace {

TEST_F(Sweep, DirectRunsTheSampleAsExpectedAndReportsBadLines) {
  // The sample, then a line that is not JSON and one that repeats an id.
  const std::string input = dir_ + "/problems.jsonl";
  std::ofstream(input, std::ios::binary)
      << read_file(sample) << "not json\n"
      << R"J({"id": "corral/0", "source": "print(1)"})J" << "\n";
  const std::string out = dir_ + "/results.jsonl";
  auto r = sweep({input, "--out", out, "--concurrency", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = results_by_id(out);
  EXPECT_EQ(got.size(), sample_size + 2);
  expect_sample_results(got, "sweep-node", "fresh");
  EXPECT_EQ(got.at("line-18")["status"], "invalid");
  EXPECT_EQ(got.at("line-18")["message"], "not valid JSON");
  EXPECT_EQ(got.at("line-19")["status"], "invalid");
  EXPECT_NE(got.at("line-19")["message"].get<std::string>().find("duplicate id"), std::string::npos);
  EXPECT_NE(r.err.find(input + ":18: not valid JSON"), std::string::npos) << r.err;
  EXPECT_EQ(summary_of(r).find("corral sweep: 19 programs: 8 passed, 9 failed, 2 invalid, 0 errors"),
            0u) << r.err;
  EXPECT_NE(summary_of(r).find("17 new results, 0 already in"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "no progress bar off a terminal";
}

TEST_F(Sweep, ResumeRunsOnlyTheProgramsWithoutAResult) {
  const std::string out = dir_ + "/results.jsonl";
  auto first = sweep({sample, "--out", out, "--concurrency", "4"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto all = lines_of(read_file(out));
  ASSERT_EQ(all.size(), sample_size);

  // A crash after 6 lines, in the middle of the 7th.
  constexpr std::size_t kept = 6;
  std::string cut;
  for (std::size_t i = 0; i < kept; ++i) cut += all[i] + "\n";
  std::ofstream(out, std::ios::binary | std::ios::trunc) << cut << all[kept].substr(0, 25);

  auto again = sweep({sample, "--out", out, "--concurrency", "4"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("cut off a partial last line"), std::string::npos) << again.err;
  EXPECT_NE(summary_of(again).find(std::to_string(sample_size - kept) + " new results, " +
                                   std::to_string(kept) + " already in"),
            std::string::npos)
      << again.err;
  EXPECT_EQ(summary_of(again).find("corral sweep: 17 programs: 8 passed, 9 failed, 0 invalid, 0 errors"),
            0u) << again.err;
  const auto text = read_file(out);
  EXPECT_EQ(text.substr(0, cut.size()), cut);  // the finished lines, byte for byte
  auto got = results_by_id(out);               // one line per id
  EXPECT_EQ(got.size(), sample_size);
  EXPECT_EQ(lines_of(text).size(), sample_size);
  expect_sample_results(got, "sweep-node", "fresh");

  // Everything done: a third run runs nothing and writes nothing.
  auto third = sweep({sample, "--out", out});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_NE(summary_of(third).find("0 new results, 17 already in"), std::string::npos) << third.err;
  EXPECT_EQ(read_file(out), text);
}

TEST_F(Sweep, StrictIsolationGetsASandboxPerProgram) {
  const std::string input = dir_ + "/three.jsonl";
  const auto sample_lines = lines_of(read_file(sample));
  std::ofstream(input, std::ios::binary)
      << sample_lines[0] << "\n" << sample_lines[2] << "\n" << sample_lines[6] << "\n";
  const std::string out = dir_ + "/strict.jsonl";
  auto r = sweep({input, "--out", out, "--isolation", "strict", "--concurrency", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = results_by_id(out);
  ASSERT_EQ(got.size(), 3u);
  for (const auto& [id, j] : got) EXPECT_EQ(j["isolation"], "strict") << id;
  EXPECT_EQ(got.at("corral/0")["passed"], true);
  EXPECT_EQ(got.at("corral/2")["passed"], false);
  EXPECT_EQ(got.at("corral/6")["passed"], false);
  EXPECT_EQ(got.at("corral/6")["returncode"], 0);
}

}  // namespace
}  // namespace corral::sweep_test
