// Fuzz target: Heartbeat. No component of this tree consumes heartbeats (the node actor only
// publishes them; tests/support/heartbeat_watch.hpp is a test's reader), so this target reads
// every field as a consumer would, through the verifier and the generated accessors, and the
// tags through wire::pairs_of: a verifier gap on any field shows here.
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* h = wire::verify<wire::Heartbeat>(data, size);
  if (h == nullptr) return 0;
  // FlatBuffers may point many tags at one string: a consumer counts what it would copy and
  // refuses a heartbeat that decodes to more than its own size (as client/replies.cpp does), then
  // copies; the copy must come to exactly what was counted.
  std::size_t bytes = wire::str(h->node()).size() + wire::str(h->pool()).size();
  if (h->tags() != nullptr)
    for (const auto* kv : *h->tags()) bytes += wire::str(kv->key()).size() + wire::str(kv->value()).size();
  if (bytes > size) return 0;
  std::size_t copied = wire::str(h->node()).size() + wire::str(h->pool()).size();
  for (const auto& [k, v] : wire::pairs_of(h->tags())) copied += k.size() + v.size();
  if (copied != bytes) fuzz::fail("the tags copied differ from what the accessors read");
  (void)(h->capacity() + h->running() + h->warm() + h->time_ms());
  return 0;
}
