#include "client/output_sequencer.hpp"

namespace corral::client {

output_sequencer::verdict output_sequencer::offer(std::vector<uint8_t>&& frame, const emit_fn& emit) {
  if (ended()) return verdict::ignored;  // nothing after the exit is output of this exec
  held_frame f;
  uint64_t seq = 0;
  if ((f.chunk = wire::verify<wire::OutputChunk>(frame.data(), frame.size())) != nullptr) {
    seq = f.chunk->seq();
  } else if ((f.exit = wire::verify<wire::ExecExit>(frame.data(), frame.size())) != nullptr) {
    seq = f.exit->seq();
  } else {
    return verdict::ignored;
  }
  if (seq < next_ || held_.count(seq) != 0) return verdict::duplicate;
  if (!emit || seq != next_) {
    if (frame.size() > opts_.max_held_bytes - held_bytes_) {
      lost_ = true;  // the store keeps it for a replay
      return verdict::dropped;
    }
    held_bytes_ += frame.size();
    f.bytes = std::move(frame);  // the pointers stay valid: the buffer moves with the vector
    held_.emplace(seq, std::move(f));
    return verdict::held;
  }
  hand_on(f, emit);
  flush(emit);
  return verdict::emitted;
}

void output_sequencer::flush(const emit_fn& emit) {
  if (!emit) return;
  while (!ended() && !held_.empty() && held_.begin()->first <= next_) {
    auto node = held_.extract(held_.begin());
    held_bytes_ -= node.mapped().bytes.size();
    if (node.key() == next_) hand_on(node.mapped(), emit);
  }
}

void output_sequencer::hand_on(const held_frame& f, const emit_fn& emit) {
  output_frame out;
  out.seq = next_++;
  if (f.exit != nullptr) {
    exited_ = true;
    held_.clear();  // frames numbered after the exit are not output of this exec
    held_bytes_ = 0;
    out.exit = f.exit;
    emit(out);
    return;
  }
  const auto* c = f.chunk;
  uint64_t at = c->offset();
  const uint8_t* d = c->data() != nullptr ? c->data()->data() : nullptr;
  std::size_t n = c->data() != nullptr ? c->data()->size() : 0;
  if (at < opts_.from_offset) {
    const uint64_t cut = opts_.from_offset - at;
    if (n <= cut) return;  // wholly before the offset asked for
    d += cut;
    n -= static_cast<std::size_t>(cut);
    at = opts_.from_offset;
  }
  if (n == 0) return;
  out.chunk = c;
  out.stream = c->stream();
  out.offset = at;
  out.data = d;
  out.size = n;
  emit(out);
}

void output_sequencer::expire(status why) {
  if (ended()) return;
  expired_ = std::move(why);
  held_.clear();
  held_bytes_ = 0;
}

std::optional<output_sequencer::range> output_sequencer::missing() const {
  if (!needs_replay()) return std::nullopt;
  return range{next_, lost_ ? std::numeric_limits<uint64_t>::max() : held_.begin()->first};
}

}  // namespace corral::client
