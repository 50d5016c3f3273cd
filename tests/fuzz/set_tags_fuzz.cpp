// Fuzz target: SetTags, as the sandbox actor consumes it (actors/sandbox.cpp on_tags): an empty
// payload reads the tags; otherwise verify, check_tags, and the new set replaces the record's;
// the record is stored (read back) and the SandboxReply answered (read back by the client).
#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  node_config cfg;
  storage::sandbox_record rec;
  rec.id = "sb-0123456789abcdef0123456789abcdef";
  rec.state = wire::SandboxState::running;
  rec.tags = {{"old", "tag"}};
  if (size != 0) {
    const auto* msg = wire::verify<wire::SetTags>(data, size);
    if (msg == nullptr) return 0;
    if (auto e = check_tags(cfg, msg->tags())) {
      fuzz::expect_answer<wire::SandboxReply>(wire::make_error_reply(e.code, e.message(), e.field));
      return 0;
    }
    rec.tags = wire::pairs_of(msg->tags());
  }
  fuzz::expect_round_trip(rec, [](const std::string& b) { return storage::decode_sandbox(b); });
  const auto reply = make_sandbox_reply(rec);
  fuzz::expect_answer<wire::SandboxReply>(reply);
  const auto view = client::sandbox_reply_of(reply.data(), reply.size());
  if (!view) fuzz::fail("the client cannot read the answer");
  // The answer carries the set sorted by key (a FlatBuffers key vector), the same pairs.
  auto want = rec.tags, got = view->tags;
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  if (want != got) fuzz::fail("the answer's tags are not the tags set");
  return 0;
}
