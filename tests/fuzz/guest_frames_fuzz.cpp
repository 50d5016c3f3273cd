// Fuzz target: the guest runner's framing ("CRZ1 <length>\n" + JSON, executor/jobs/guest.hpp),
// as the job runner reads the runner's stdout from inside a sandbox: jobs::frame_reader fed a
// byte stream cut at points the input chooses must reach the same verdict (corrupt or not) and
// yield the same frames as when it is fed whole, and never hold more than its cap past a frame.
//
// Input: byte 0 seeds where the stream is cut, the rest is the stream.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>

#include "executor/jobs/guest.hpp"

namespace {

struct reading {
  bool ok = true;
  std::vector<nlohmann::json> frames;
};

reading read_all(const std::vector<std::vector<uint8_t>>& chunks) {
  reading r;
  corral::jobs::frame_reader reader(1 << 16);
  for (const auto& c : chunks) {
    if (!reader.feed(c.data(), c.size())) {
      r.ok = false;  // the runner is not trusted any more: nothing after this is read
      return r;
    }
    while (auto j = reader.next()) r.frames.push_back(std::move(*j));
    if (reader.buffered() > (1 << 16) + 64) std::abort();  // holds more than a frame and a header
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint32_t seed = data[0] * 2654435761u + 1;
  const uint8_t* stream = data + 1;
  const std::size_t n = size - 1;
  std::vector<std::vector<uint8_t>> chunks;
  for (std::size_t at = 0; at < n;) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t len = std::min<std::size_t>(n - at, 1 + (seed >> 8) % 64);
    chunks.emplace_back(stream + at, stream + at + len);
    at += len;
  }
  const reading whole = read_all({std::vector<uint8_t>(stream, stream + n)});
  const reading pieces = read_all(chunks);
  // Cut or whole, a good stream yields the same frames; a corrupt one is corrupt either way
  // (a cut stream may be found corrupt after fewer frames).
  if (whole.ok != pieces.ok) std::abort();
  if (whole.ok && whole.frames != pieces.frames) std::abort();
  return 0;
}
