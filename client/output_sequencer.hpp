#pragma once
// The order of one exec's output. The executor numbers every frame of an exec (each OutputChunk,
// then the final ExecExit) by seq from 0, stores it, then publishes it live; a frame lost live (a
// NATS reconnect, a slow consumer, a subscription made late) is read back from the store with a
// replay request from a seq on. The sequencer puts what arrives, live or replayed, back in order:
// each seq is handed on once, in order and gap-free; frames ahead of a gap are held until the gap
// is filled; it says when a replay is needed and from where (docs/architecture.md, the walk of an
// exec request).
//
// No threads and no I/O inside: the caller feeds it frames and tells it what it did (asked for a
// replay, dropped live frames, got an expired answer); timers, subscriptions and requests are the
// caller's. Used by client::session::exec (the CLI's follower), and by the gateway's /v1/run and
// its output streams. Not thread-safe: one caller thread (or strand) at a time.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <vector>

#include "schemas/codec.hpp"
#include "schemas/status.hpp"

namespace corral::client {

// One frame handed on, in seq order. Exactly one of chunk and exit is set; the pointers are valid
// only during the call that hands the frame on. For a chunk, [data, data + size) are its bytes at
// or past the sequencer's from_offset, starting at byte `offset` of `stream`.
struct output_frame {
  uint64_t seq = 0;
  const wire::OutputChunk* chunk = nullptr;
  const wire::ExecExit* exit = nullptr;
  wire::Stream stream = wire::Stream::stdout;
  uint64_t offset = 0;
  const uint8_t* data = nullptr;
  std::size_t size = 0;
};

class output_sequencer {
 public:
  struct options {
    // Bytes of frames held (ahead of a gap, or while the caller cannot take output): a frame that
    // would hold more is dropped, and the sequencer asks for a replay (the store has it).
    std::size_t max_held_bytes = std::numeric_limits<std::size_t>::max();
    // Per stream, bytes before this offset are not handed on (a reader resuming at an offset).
    uint64_t from_offset = 0;
  };
  using emit_fn = std::function<void(const output_frame&)>;

  // What offer() did with a frame.
  enum class verdict {
    emitted,    // handed on (and any held frames that follow it)
    held,       // kept until the frames before it are there (or until flush)
    duplicate,  // its seq was handed on already
    dropped,    // held bytes would pass max_held_bytes: a replay will bring it again
    ignored,    // not an output frame, or the output has ended
  };

  output_sequencer() = default;
  explicit output_sequencer(options o) : opts_(o) {}

  // One frame (its bytes as received, verified here), live or replayed. With emit, the frames
  // that continue the sequence go to emit at once; with an empty emit (the caller cannot take
  // output yet), every new frame is held. A chunk with no bytes at or past from_offset advances
  // the sequence without being handed on.
  verdict offer(std::vector<uint8_t>&& frame, const emit_fn& emit);
  // Hands on the held frames that continue the sequence (after offers without emit).
  void flush(const emit_fn& emit);

  // Live frames were dropped before they reached the sequencer: a replay is needed.
  void lost() { lost_ = true; }
  // The caller asked the store for the frames from next() on: that answer covers every frame
  // stored so far, including those lost().
  void replay_asked() { lost_ = false; }
  // The store cannot give the missing frames (the replay answered expired or not_found): the
  // output ends here, without its exit.
  void expire(status why);

  // Frames are missing: held ones wait behind a gap, or live ones were lost. The replay to ask
  // for is missing()->from on.
  [[nodiscard]] bool needs_replay() const { return !ended() && (lost_ || gap()); }
  // The seqs known to be missing, [from, to); to is the max of uint64_t when not known (lost
  // frames may be anywhere past from).
  struct range {
    uint64_t from = 0, to = 0;
  };
  [[nodiscard]] std::optional<range> missing() const;

  // The seq of the next frame to hand on.
  [[nodiscard]] uint64_t next() const { return next_; }
  // The exit was handed on, or the output expired.
  [[nodiscard]] bool ended() const { return exited_ || expired_.has_value(); }
  [[nodiscard]] bool exited() const { return exited_; }
  [[nodiscard]] const std::optional<status>& expired() const { return expired_; }
  [[nodiscard]] bool holding() const { return !held_.empty(); }
  [[nodiscard]] std::size_t held_bytes() const { return held_bytes_; }

 private:
  struct held_frame {
    std::vector<uint8_t> bytes;
    const wire::OutputChunk* chunk = nullptr;  // into bytes (a moved vector keeps its buffer)
    const wire::ExecExit* exit = nullptr;
  };
  // Frames held past a gap: the first held is ahead of next_.
  [[nodiscard]] bool gap() const { return !held_.empty() && held_.begin()->first > next_; }
  void hand_on(const held_frame& f, const emit_fn& emit);

  options opts_;
  uint64_t next_ = 0;
  bool lost_ = false, exited_ = false;
  std::optional<status> expired_;
  std::map<uint64_t, held_frame> held_;
  std::size_t held_bytes_ = 0;
};

}  // namespace corral::client
