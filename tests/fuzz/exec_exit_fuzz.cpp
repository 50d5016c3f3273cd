// Fuzz target: ExecExit, as a client consumes it: the output sequencer (client/output_sequencer.hpp) takes
// it among an exec's real frames and, in sequence, ends the exec with result_of(status); the
// result is then used as `corral exec` and the gateway use it (outcome and error names).
#include "client/output_sequencer.hpp"
#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

namespace {
wire::bytes chunk(uint64_t seq) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto id = fbb.CreateString("ex-1");
  const uint8_t text[] = {'h', 'i', '\n'};
  auto d = fbb.CreateVector(text, sizeof text);
  fbb.Finish(wire::CreateOutputChunk(fbb, id, seq, wire::Stream::stdout, 3 * seq, d),
             wire::OutputChunkIdentifier());
  return wire::release(fbb);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* x = wire::verify<wire::ExecExit>(data, size);
  if (x == nullptr) return 0;
  client::output_sequencer seq;
  std::optional<client::exec_result> done;
  const client::output_sequencer::emit_fn emit = [&](const client::output_frame& f) {
    if (f.exit != nullptr) done = client::result_of(f.exit->status());
  };
  const uint64_t s = x->seq();
  for (uint64_t i = 0; i < std::min<uint64_t>(s, 3); ++i) (void)seq.offer(chunk(i), emit);
  (void)seq.offer(wire::bytes(data, data + size), emit);
  if (s < 3 && !done) fuzz::fail("an exit in sequence did not end the exec");
  if (done) {
    const auto& r = *done;
    (void)wire::to_string(r.outcome);
    (void)wire::EnumNameOutcome(r.outcome);
  }
  return 0;
}
