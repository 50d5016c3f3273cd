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

#include "client/client.hpp"

namespace corral::client {

// The ErrorReply in these bytes (code, message and field), if they carry its identifier
// (malformed when they then do not verify); nullopt for any other message.
[[nodiscard]] std::optional<status> error_reply_of(const uint8_t* data, std::size_t size);
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
[[nodiscard]] std::optional<session::results_page> results_page_of(const uint8_t* data,
                                                                   std::size_t size);
// Whether the bytes are an ExecReply saying the exec id was already known (re-attached).
[[nodiscard]] std::optional<bool> exec_reply_reattached(const uint8_t* data, std::size_t size);

// The seq of an output frame; nullopt when the bytes are neither an OutputChunk nor an ExecExit.
[[nodiscard]] std::optional<uint64_t> output_seq_of(const uint8_t* data, std::size_t size);

}  // namespace corral::client
