#pragma once
// Decoding of what the executors answer to the client (schemas/*.fbs), apart from the calls that
// receive it, so that every reply is read by one pure function (and fuzzed: tests/fuzz/). Each
// takes the bytes as received: they are verified (size cap, identifier, structure) here, and
// bytes that are not the expected message decode to nothing. So do replies whose strings add up
// to more than their bytes (offsets sharing their targets: a valid FlatBuffer that would decode
// to many times its size).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "cli/client.hpp"

namespace corral::cli {

// The ErrorReply in these bytes, if they carry its identifier (malformed when they then do not
// verify); nullopt for any other message.
[[nodiscard]] std::optional<call_error> error_reply_of(const uint8_t* data, std::size_t size);
[[nodiscard]] sandbox_view view_of(const wire::SandboxInfo& info);
// An ExitStatus (null: outcome internal, exit code 255).
[[nodiscard]] exec_result result_of(const wire::ExitStatus* status);
// The sandbox of a SandboxReply; nullopt when the bytes are not one or carry no sandbox.
[[nodiscard]] std::optional<sandbox_view> sandbox_reply_of(const uint8_t* data, std::size_t size);
// Appends the sandboxes of one executor's SandboxList (nothing when the bytes are not one).
void add_sandbox_list(const uint8_t* data, std::size_t size, std::vector<sandbox_view>& out);
// Adds one executor's UsageReply to a report (nothing when the bytes are not one).
void add_usage_reply(const uint8_t* data, std::size_t size, usage_report& out);
// An FsReply; nullopt when the bytes are not one.
[[nodiscard]] std::optional<fs_reply_view> fs_reply_of(const uint8_t* data, std::size_t size);
// An Ack's message ("more" from a replay that stopped at its batch cap); nullopt when not an Ack.
[[nodiscard]] std::optional<std::string> ack_of(const uint8_t* data, std::size_t size);
// The end of an answer to a ResultsRead: an Ack "done <next>" or "more <next>" (the stream
// sequence to read from next). Nullopt when the bytes are not such an Ack.
[[nodiscard]] std::optional<client::results_page> results_page_of(const uint8_t* data,
                                                                   std::size_t size);
// Whether the bytes are an ExecReply saying the exec id was already known (re-attached).
[[nodiscard]] std::optional<bool> exec_reply_reattached(const uint8_t* data, std::size_t size);

// Puts the frames of one exec's output (OutputChunk and the final ExecExit, live or replayed,
// each numbered by seq from 0) in order: each seq is delivered once, in order; frames ahead of
// a gap wait in a stash until the gap is filled (by a replay); frames already delivered and
// messages that are not output frames are ignored. Chunk bytes go to on_output as they are
// delivered; the ExecExit ends it (done()).
class output_sequencer {
 public:
  explicit output_sequencer(client::output_fn on_output) : on_output_(std::move(on_output)) {}
  void offer(std::vector<uint8_t>&& frame);
  [[nodiscard]] uint64_t next() const { return next_; }
  [[nodiscard]] bool has_gap() const { return !stash_.empty(); }
  [[nodiscard]] const std::optional<exec_result>& done() const { return done_; }

 private:
  void apply(const std::vector<uint8_t>& frame);
  client::output_fn on_output_;
  uint64_t next_ = 0;
  std::map<uint64_t, std::vector<uint8_t>> stash_;  // frames that came ahead of a gap
  std::optional<exec_result> done_;
};

// The seq of an output frame; nullopt when the bytes are neither an OutputChunk nor an ExecExit.
[[nodiscard]] std::optional<uint64_t> output_seq_of(const uint8_t* data, std::size_t size);

}  // namespace corral::cli
