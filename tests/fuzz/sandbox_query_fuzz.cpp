// Fuzz target: SandboxQuery, as the sandbox actor consumes it (actors/sandbox.cpp on_op, wait):
// an empty payload is accepted; otherwise verify, then the wait's timeout (clamped to the
// node's max_timeout_ms, a non-positive one answers at once) and until_ready are read, and the
// answer is the SandboxReply of the sandbox.
#include <algorithm>
#include <chrono>

#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  node_config cfg;
  int64_t timeout_ms = 0;
  bool until_ready = false;
  if (size != 0) {
    const auto* q = wire::verify<wire::SandboxQuery>(data, size);
    if (q == nullptr) return 0;
    timeout_ms = q->wait_timeout_ms();
    until_ready = q->until_ready();
  }
  storage::sandbox_record rec;
  rec.id = "sb-0123456789abcdef0123456789abcdef";
  rec.state = until_ready ? wire::SandboxState::running : wire::SandboxState::starting;
  // A wait that does not answer at once arms a timer of the timeout, clamped.
  if (timeout_ms > 0) (void)std::chrono::milliseconds(std::min(timeout_ms, cfg.max_timeout_ms));
  fuzz::expect_answer<wire::SandboxReply>(make_sandbox_reply(rec));
  return 0;
}
