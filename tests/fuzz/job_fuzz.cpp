// Fuzz target: Job, as the executor's job runner consumes it (executor/jobs/job_runner.cpp):
// plan_job (verify, ids, image, language or argv, limits, files' paths, env) decides what runs;
// a rejected job gets its JobResult (unrun_result, read back as corral sweep reads it); an
// accepted one's request is framed for the guest runner (guest.hpp encode_frame, as run() sends
// it) and read back by the guest framing's reader, which must yield exactly that request (JSON
// carries text only: bytes that are not UTF-8 would reach the guest changed).
#include <nlohmann/json.hpp>

#include "client/sweep/job.hpp"
#include "client/sweep/out_file.hpp"
#include "client/sweep/program.hpp"
#include "client/sweep/verdict.hpp"
#include "executor/jobs/guest.hpp"
#include "executor/jobs/job_runner.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  jobs::runner_config cfg;
  cfg.node_id = "node-fuzz";
  const jobs::job_plan plan = jobs::plan_job(cfg, data, size);
  if (!plan.rejected.empty()) {
    const auto result = jobs::unrun_result(plan.job_id, plan.batch_id, wire::Outcome::rejected,
                                           plan.rejected, cfg.node_id, 1);
    fuzz::expect_answer<wire::JobResult>(result);
    const auto read = sweep::read_result(result.data(), result.size());
    if (!read || read->job_id != plan.job_id || read->outcome != wire::Outcome::rejected)
      fuzz::fail("the result of a rejected job does not read back");
    return 0;
  }
  if (plan.timeout_ms <= 0 || plan.timeout_ms > cfg.max_timeout_ms)
    fuzz::fail("an accepted job with a timeout out of range");
  const std::vector<uint8_t> frame = jobs::encode_frame(plan.request);
  // What the runner sends on is bounded by what it was sent: JSON escaping makes at most six
  // bytes of one, base64 four of three. More means parts of the Job were decoded many times.
  if (frame.size() > 6 * size + 65536) fuzz::fail("the guest request is many times the Job's size");
  jobs::frame_reader reader;
  // As run() sends it: in StdinWrites of stdin_chunk_bytes.
  for (std::size_t at = 0; at < frame.size(); at += cfg.stdin_chunk_bytes) {
    const std::size_t n = std::min(cfg.stdin_chunk_bytes, frame.size() - at);
    if (!reader.feed(frame.data() + at, n)) fuzz::fail("the guest framing rejects our own frame");
  }
  auto back = reader.next();
  if (!back || *back != plan.request || reader.next()) fuzz::fail("the guest reads another request");
  return 0;
}
