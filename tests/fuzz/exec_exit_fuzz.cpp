// Fuzz target: ExecExit, as a client consumes it: the output sequencer (cli/replies.hpp) takes
// it among an exec's real frames and, in sequence, ends the exec with result_of(status); the
// result is then used as `corral exec` and the gateway use it (outcome and error names).
#include "cli/replies.hpp"
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
  cli::output_sequencer seq([](wire::Stream, const uint8_t*, std::size_t) {});
  const uint64_t s = x->seq();
  for (uint64_t i = 0; i < std::min<uint64_t>(s, 3); ++i) seq.offer(chunk(i));
  seq.offer(wire::bytes(data, data + size));
  if (s < 3 && !seq.done()) fuzz::fail("an exit in sequence did not end the exec");
  if (seq.done()) {
    const auto& r = *seq.done();
    (void)wire::to_string(r.outcome);
    (void)wire::EnumNameOutcome(r.outcome);
  }
  return 0;
}
