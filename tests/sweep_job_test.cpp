// Job and batch ids, and the Job built: client/sweep/job.hpp.
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

#include "client/sweep/job.hpp"
#include "client/sweep/verdict.hpp"
#include "schemas/ids.hpp"
#include "tests/sweep_unit_support.hpp"

namespace corral::sweep {
namespace {

using nlohmann::json;
using namespace corral::sweep::test;

// -- ids and the Job ----------------------------------------------------------------------------

TEST(SweepIds, BatchDerivedFromBothPaths) {
  const auto a = default_batch_id("/tmp/p.jsonl", "/tmp/r.jsonl");
  EXPECT_EQ(a, default_batch_id("/tmp/p.jsonl", "/tmp/r.jsonl"));
  EXPECT_EQ(a, default_batch_id("/tmp/./p.jsonl", "/tmp/x/../r.jsonl"));
  EXPECT_NE(a, default_batch_id("/tmp/p.jsonl", "/tmp/r2.jsonl"));
  EXPECT_NE(a, default_batch_id("/tmp/p2.jsonl", "/tmp/r.jsonl"));
  EXPECT_TRUE(wire::valid_token(a, max_batch_chars)) << a;
  // A relative path is the absolute one it names.
  const auto cwd = std::filesystem::current_path().string();
  EXPECT_EQ(default_batch_id("p.jsonl", "r.jsonl"),
            default_batch_id(cwd + "/p.jsonl", cwd + "/r.jsonl"));
}

TEST(SweepIds, JobIdsAreTokensThatChangeWithTheProgram) {
  program p = must_parse(R"J({"id": "HumanEval/1", "source": "print(1)"})J");
  const std::string batch(max_batch_chars, 'b');
  const auto id = job_id(batch, p);
  EXPECT_EQ(id, job_id(batch, p));
  EXPECT_EQ(id.rfind(batch + "-7-", 0), 0u) << id;
  p.line = 9'999'999'999ull;  // far more lines than anyone sweeps: still a token
  EXPECT_TRUE(wire::valid_token(job_id(batch, p))) << job_id(batch, p);
  p.line = 7;
  program q = p;
  q.source = "print(2)";
  EXPECT_NE(job_id(batch, q), id);
  q = p;
  q.stdin_data = "x";
  EXPECT_NE(job_id(batch, q), id);
  q = p;
  q.timeout_ms += 1;
  EXPECT_NE(job_id(batch, q), id);
  q = p;
  q.id = "HumanEval/2";
  EXPECT_NE(job_id(batch, q), id);
}

TEST(SweepIds, BuildsTheJob) {
  program p = must_parse(R"J({"id": "x", "language": "javascript", "source": "console.log(1)",
                             "stdin": "in", "timeout": 3})J");
  options o;
  o.isolation = wire::Isolation::strict;
  o.output_limit = 5000;
  const auto bytes = build_job(p, "batch-1", "batch-1-7-00000000", o);
  const auto* job = wire::verify<wire::Job>(bytes.data(), bytes.size());
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(wire::str(job->job_id()), "batch-1-7-00000000");
  EXPECT_EQ(wire::str(job->batch_id()), "batch-1");
  EXPECT_EQ(wire::str(job->language()), "javascript");
  EXPECT_EQ(wire::str(job->source()), "console.log(1)");
  ASSERT_NE(job->stdin(), nullptr);
  EXPECT_EQ(std::string(job->stdin()->begin(), job->stdin()->end()), "in");
  EXPECT_EQ(job->timeout_ms(), 3000);
  EXPECT_EQ(job->isolation(), wire::Isolation::strict);
  EXPECT_EQ(job->output_limit_bytes(), 5000u);
  EXPECT_EQ(job->argv(), nullptr);
}

TEST(SweepResults, ReadsAJobResultAndRefusesGarbage) {
  flatbuffers::FlatBufferBuilder fbb;
  auto status = wire::CreateExitStatusDirect(fbb, wire::Outcome::exited, 0, 0, "", 3, 0);
  const std::vector<uint8_t> out = {'o', 'k', '\n'};
  auto res = wire::CreateJobResultDirect(fbb, "b-1-abc", "b", status, true, &out, nullptr, false,
                                         false, "node-a", wire::Isolation::fresh, 1, 100, 25, 12,
                                         4096);
  fbb.Finish(res, wire::JobResultIdentifier());
  const auto bytes = wire::release(fbb);
  auto r = read_result(bytes.data(), bytes.size());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->job_id, "b-1-abc");
  EXPECT_EQ(r->outcome, wire::Outcome::exited);
  EXPECT_TRUE(r->completed);
  EXPECT_EQ(r->stdout_data, "ok\n");
  EXPECT_EQ(r->node, "node-a");
  EXPECT_EQ(r->attempt, 1u);
  EXPECT_EQ(r->wall_ms, 25);
  EXPECT_EQ(r->cpu_ms, 12);
  EXPECT_EQ(r->memory_peak_kib, 4096u);
  const std::vector<uint8_t> junk = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  EXPECT_FALSE(read_result(junk.data(), junk.size()).has_value());
  const auto err = wire::make_error_reply(wire::ErrorCode::unavailable, "busy");
  EXPECT_FALSE(read_result(err.data(), err.size()).has_value());
}

}  // namespace
}  // namespace corral::sweep
