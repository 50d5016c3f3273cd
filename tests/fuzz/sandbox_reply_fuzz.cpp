// Fuzz target: SandboxReply, as the client consumes it (client/replies.hpp sandbox_reply_of and
// view_of: every field of the SandboxInfo; used by `corral` and the gateway for create, info,
// wait, terminate and tags), then the age `corral` prints.
#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto v = client::sandbox_reply_of(data, size);
  if (!v) return 0;
  (void)wire::to_string(v->state);
  (void)client::format_age(v->ended_at_ms);
  std::size_t tag_bytes = 0;
  for (const auto& [k, val] : v->tags) tag_bytes += k.size() + val.size();
  if (tag_bytes > size) fuzz::fail("tags read larger than their bytes");
  return 0;
}
