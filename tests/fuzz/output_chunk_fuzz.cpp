// Fuzz target: OutputChunk, as a client consumes an exec's output (client/output_sequencer.hpp
// output_sequencer, used by `corral exec` and the job runner): the input is one frame offered
// between real frames of an exec (chunks 0 and 2 and the ExecExit at 3, as the executor builds
// them), before and after the gap; each seq must be delivered once, in order, and the exit
// must end it.
#include "actors/wire_build.hpp"
#include "client/output_sequencer.hpp"
#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

namespace {
wire::bytes chunk(uint64_t seq, wire::Stream s, uint64_t offset, const std::string& text) {
  flatbuffers::FlatBufferBuilder fbb(128 + text.size());
  auto id = fbb.CreateString("ex-1");
  auto d = fbb.CreateVector(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  fbb.Finish(wire::CreateOutputChunk(fbb, id, seq, s, offset, d), wire::OutputChunkIdentifier());
  return wire::release(fbb);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  storage::process_record done;
  done.exec_id = "ex-1";
  done.finished = true;
  done.next_seq = 4;
  const wire::bytes input(data, data + size);
  for (int where = 0; where < 3; ++where) {
    std::size_t delivered = 0;
    client::output_sequencer seq;
    const client::output_sequencer::emit_fn emit = [&](const client::output_frame& f) {
      if (f.exit != nullptr) return;
      if (f.data == nullptr || f.size == 0) fuzz::fail("empty output delivered");
      delivered += f.size;
    };
    auto offer = [&](wire::bytes b) { (void)seq.offer(std::move(b), emit); };
    if (where == 0) offer(input);
    offer(chunk(0, wire::Stream::stdout, 0, "hello "));
    if (where == 1) offer(input);
    offer(chunk(2, wire::Stream::stderr, 0, "oops"));
    offer(make_exec_exit(done));
    offer(chunk(1, wire::Stream::stdout, 6, "world\n"));  // the gap, filled by a replay
    if (where == 2) offer(input);
    if (!seq.exited() && seq.next() < 4) fuzz::fail("the exec's own frames did not finish it");
    if (seq.next() > 4) fuzz::fail("delivered past the exit");
    (void)delivered;
  }
  return 0;
}
