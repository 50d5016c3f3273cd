// Fuzz target: the init framing (schemas/frame.hpp) as both ends read it. The input is a byte
// stream from the executor to corral-init, cut into reads at points the input chooses:
// - wire::frame_reader (the reader of the executor's link and of corral-init) must yield the
//   same payloads and skip the same bytes whether the stream comes whole or in those pieces;
// - the real init_event_loop reads the pieces on its stdin and dispatches every command they
//   hold over the scripted OS of fake_init_os.hpp: nothing may crash or spin, and every byte it
//   writes back must be a whole, verified InitEvent frame within the frame cap.
//
// Input: byte 0 seeds where the stream is cut, byte 1 picks init's limits and the executor's
// reading pace, the rest is the stream (after the fixed opening of init_commands.hpp).
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "schemas/frame.hpp"
#include "tests/fuzz/fake_init_os.hpp"
#include "tests/fuzz/init_commands.hpp"
#include "tests/fuzz/init_fuzz_limits.hpp"

namespace {

using corral::wire::frame_reader;

struct reading {
  std::vector<std::vector<uint8_t>> payloads;
  uint64_t skipped = 0;
  std::size_t buffered = 0;
};

reading read_all(const std::vector<std::vector<uint8_t>>& chunks) {
  reading r;
  frame_reader reader;
  for (const auto& c : chunks) {
    reader.feed(c.data(), c.size());
    while (auto p = reader.next()) r.payloads.push_back(std::move(*p));
  }
  r.skipped = reader.skipped_bytes();
  r.buffered = reader.buffered();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint32_t seed = data[0] * 2654435761u + 1;
  const uint8_t knobs = data[1];
  const uint8_t* stream = data + 2;
  const std::size_t n = size - 2;

  // The pieces: lengths from tiny to larger than init's 64 KiB read, and empty reads.
  std::vector<std::vector<uint8_t>> chunks;
  for (std::size_t at = 0; at < n;) {
    seed = seed * 1103515245u + 12345u;
    const uint32_t r = seed >> 8;
    std::size_t len;
    switch (r % 8) {
      case 0: len = 0; break;
      case 1: len = 1; break;
      case 2: len = 7; break;
      case 3: len = 8 + r % 9; break;
      case 4: len = r % 4096; break;
      default: len = 1 + r % 100000; break;
    }
    len = std::min(len, n - at);
    chunks.emplace_back(stream + at, stream + at + len);
    at += len;
  }

  // The executor's reader and init's: same payloads, however the stream is cut.
  const reading whole = read_all({std::vector<uint8_t>(stream, stream + n)});
  const reading pieces = read_all(chunks);
  if (whole.payloads != pieces.payloads || whole.skipped != pieces.skipped ||
      whole.buffered != pieces.buffered) {
    std::abort();  // the frame reader depends on where reads end
  }
  for (const auto& p : whole.payloads)
    if (p.size() > corral::wire::max_frame_payload) std::abort();  // over the cap, yet yielded

  corral::fuzz::init_script script;
  for (auto& c : corral::fuzz::opening_commands())
    script.command_chunks.push_back(corral::wire::make_frame(c));
  script.command_chunks.insert(script.command_chunks.end(), chunks.begin(), chunks.end());
  script.event_write_cap = (knobs & 0x40) ? 13 : 0;
  script.block_every = (knobs & 0x80) ? 3 : 0;
  corral::fuzz::reset(script);
  corral::fuzz::check_events(corral::fuzz::run_init(corral::fuzz::limits_for(knobs)));
  return 0;
}
