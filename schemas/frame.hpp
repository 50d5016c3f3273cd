#pragma once
// Length-prefixed frames between the executor and corral-init (over the sandbox's stdio).
//
// A frame is: magic (4 bytes, "CRFM"), payload length (u32 little-endian), payload (one
// FlatBuffer: InitCommand towards init, InitEvent from it). The magic lets a reader that joins
// a stream mid-frame (an executor restarted while init was writing) skip to the next frame.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace corral::wire {

inline constexpr uint8_t frame_magic[4] = {'C', 'R', 'F', 'M'};
inline constexpr std::size_t frame_header_bytes = 8;
// Largest frame payload either side accepts; larger length fields are treated as corruption.
inline constexpr std::size_t max_frame_payload = 1024 * 1024 + 4096;

// Appends one frame holding payload to out.
void append_frame(std::vector<uint8_t>& out, const uint8_t* payload, std::size_t size);
[[nodiscard]] std::vector<uint8_t> make_frame(const std::vector<uint8_t>& payload);

// Incremental parser. Not thread-safe: one reader owns it.
class frame_reader {
 public:
  // Appends received bytes.
  void feed(const uint8_t* data, std::size_t size);
  // Returns the next complete payload, if any. Bytes that are not a frame are skipped and
  // counted in skipped_bytes().
  [[nodiscard]] std::optional<std::vector<uint8_t>> next();
  [[nodiscard]] uint64_t skipped_bytes() const { return skipped_; }
  [[nodiscard]] std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  void compact();
  std::vector<uint8_t> buf_;
  std::size_t pos_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace corral::wire
