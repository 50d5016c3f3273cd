// Fuzz target: ResultsRead, as an executor consumes it (executor/jobs/job_service.cpp,
// plan_results_read) for a tenant's subject: either a plan within the cap, for that tenant and a
// valid batch, or an ErrorReply to answer; the end of the answer (an Ack "done|more <next>")
// read back by the client (client/replies.hpp results_page_of) as the executor wrote it.
#include "client/replies.hpp"
#include "executor/jobs/job_service.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr uint32_t cap = 256;
  std::vector<uint8_t> refusal;
  const auto plan = jobs::plan_results_read(wire::subjects::results_read("t"), data, size, cap,
                                            &refusal);
  if (!plan) {
    fuzz::expect_answer<wire::ErrorReply>(refusal);
    return 0;
  }
  if (plan->tenant != "t") fuzz::fail("a read planned for another tenant");
  if (!wire::valid_token(plan->batch)) fuzz::fail("a read of an invalid batch");
  if (plan->max_results < 1 || plan->max_results > cap) fuzz::fail("a read past the cap");
  if (plan->from_seq < 1) fuzz::fail("a read from sequence 0");
  for (const bool more : {false, true}) {
    auto ack = wire::make_page_end(more, plan->from_seq);
    fuzz::expect_answer<wire::Ack>(ack);
    auto page = client::results_page_of(ack.data(), ack.size());
    if (!page || page->next != plan->from_seq || page->more != more)
      fuzz::fail("the client misreads the end of a results read");
  }
  return 0;
}
