#include "schemas/frame.hpp"

#include <cstring>

namespace corral::wire {

void append_frame(std::vector<uint8_t>& out, const uint8_t* payload, std::size_t size) {
  const auto n = static_cast<uint32_t>(size);
  out.insert(out.end(), frame_magic, frame_magic + 4);
  const uint8_t len[4] = {static_cast<uint8_t>(n), static_cast<uint8_t>(n >> 8),
                          static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 24)};
  out.insert(out.end(), len, len + 4);
  out.insert(out.end(), payload, payload + size);
}

std::vector<uint8_t> make_frame(const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out;
  out.reserve(frame_header_bytes + payload.size());
  append_frame(out, payload.data(), payload.size());
  return out;
}

void frame_reader::feed(const uint8_t* data, std::size_t size) {
  compact();
  buf_.insert(buf_.end(), data, data + size);
}

void frame_reader::compact() {
  if (pos_ > 0 && (pos_ >= 65536 || pos_ == buf_.size())) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
}

std::optional<std::vector<uint8_t>> frame_reader::next() {
  for (;;) {
    const std::size_t avail = buf_.size() - pos_;
    if (avail < frame_header_bytes) return std::nullopt;
    const uint8_t* p = buf_.data() + pos_;
    if (std::memcmp(p, frame_magic, 4) != 0) {
      ++pos_;  // resynchronise: skip one byte and look for the magic again
      ++skipped_;
      continue;
    }
    const uint32_t n = static_cast<uint32_t>(p[4]) | (static_cast<uint32_t>(p[5]) << 8) |
                       (static_cast<uint32_t>(p[6]) << 16) | (static_cast<uint32_t>(p[7]) << 24);
    if (n > max_frame_payload) {
      ++pos_;
      ++skipped_;
      continue;
    }
    if (avail < frame_header_bytes + n) return std::nullopt;
    std::vector<uint8_t> payload(p + frame_header_bytes, p + frame_header_bytes + n);
    pos_ += frame_header_bytes + n;
    return payload;
  }
}

}  // namespace corral::wire
