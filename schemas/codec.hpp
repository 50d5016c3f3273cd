#pragma once
// Verification and building of corral wire messages (schemas/*.fbs).
//
// Every buffer received from outside (NATS, corral-init) goes through verify<T>() before use:
// it checks the size cap, the file_identifier of T and the FlatBuffers structure. The returned
// pointer aliases the input bytes and is valid only while they are.
#include <cstddef>
#include <cstdint>
#include <string>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "corral/wire/ack_generated.h"
#include "corral/wire/common_generated.h"
#include "corral/wire/create_sandbox_generated.h"
#include "corral/wire/error_reply_generated.h"
#include "corral/wire/exec_exit_generated.h"
#include "corral/wire/exec_reply_generated.h"
#include "corral/wire/exec_request_generated.h"
#include "corral/wire/fs_reply_generated.h"
#include "corral/wire/fs_request_generated.h"
#include "corral/wire/heartbeat_generated.h"
#include "corral/wire/init_command_generated.h"
#include "corral/wire/init_event_generated.h"
#include "corral/wire/job_generated.h"
#include "corral/wire/job_result_generated.h"
#include "corral/wire/list_sandboxes_generated.h"
#include "corral/wire/output_chunk_generated.h"
#include "corral/wire/replay_request_generated.h"
#include "corral/wire/results_read_generated.h"
#include "corral/wire/sandbox_list_generated.h"
#include "corral/wire/sandbox_query_generated.h"
#include "corral/wire/sandbox_reply_generated.h"
#include "corral/wire/resize_request_generated.h"
#include "corral/wire/set_tags_generated.h"
#include "corral/wire/signal_request_generated.h"
#include "corral/wire/stdin_write_generated.h"
#include "corral/wire/usage_reply_generated.h"    // metering (usage meter)
#include "corral/wire/usage_request_generated.h"  // metering (usage meter)

namespace corral::wire {

// Largest message accepted on any subject or frame (NATS's default max_payload is 1 MiB).
inline constexpr std::size_t max_message_bytes = 1024 * 1024;

template <class T>
struct message_traits;

#define CORRAL_WIRE_MESSAGE(T)                                                  \
  template <>                                                                   \
  struct message_traits<T> {                                                    \
    static const char* identifier() { return T##Identifier(); }                 \
    static bool verify(flatbuffers::Verifier& v) { return Verify##T##Buffer(v); } \
    static const T* root(const void* p) { return Get##T(p); }                   \
  };
CORRAL_WIRE_MESSAGE(Ack)
CORRAL_WIRE_MESSAGE(CreateSandbox)
CORRAL_WIRE_MESSAGE(ErrorReply)
CORRAL_WIRE_MESSAGE(ExecExit)
CORRAL_WIRE_MESSAGE(ExecReply)
CORRAL_WIRE_MESSAGE(ExecRequest)
CORRAL_WIRE_MESSAGE(FsReply)
CORRAL_WIRE_MESSAGE(FsRequest)
CORRAL_WIRE_MESSAGE(Heartbeat)
CORRAL_WIRE_MESSAGE(InitCommand)
CORRAL_WIRE_MESSAGE(InitEvent)
CORRAL_WIRE_MESSAGE(Job)
CORRAL_WIRE_MESSAGE(JobResult)
CORRAL_WIRE_MESSAGE(ListSandboxes)
CORRAL_WIRE_MESSAGE(OutputChunk)
CORRAL_WIRE_MESSAGE(ReplayRequest)
CORRAL_WIRE_MESSAGE(ResultsRead)
CORRAL_WIRE_MESSAGE(SandboxList)
CORRAL_WIRE_MESSAGE(SandboxQuery)
CORRAL_WIRE_MESSAGE(SandboxReply)
CORRAL_WIRE_MESSAGE(SignalRequest)
CORRAL_WIRE_MESSAGE(StdinWrite)
CORRAL_WIRE_MESSAGE(SetTags)
CORRAL_WIRE_MESSAGE(ResizeRequest)
CORRAL_WIRE_MESSAGE(UsageReply)    // metering
CORRAL_WIRE_MESSAGE(UsageRequest)  // metering
#undef CORRAL_WIRE_MESSAGE

// Returns the root of a verified T, or nullptr when the bytes are over max_bytes, carry another
// file_identifier, or do not verify. Never reads outside [data, data + size).
template <class T>
[[nodiscard]] const T* verify(const void* data, std::size_t size,
                              std::size_t max_bytes = max_message_bytes) {
  if (data == nullptr || size < 8 || size > max_bytes) return nullptr;
  if (!flatbuffers::BufferHasIdentifier(data, message_traits<T>::identifier())) return nullptr;
  flatbuffers::Verifier::Options opts;
  opts.max_depth = 16;
  opts.max_tables = 100000;
  flatbuffers::Verifier verifier(static_cast<const uint8_t*>(data), size, opts);
  if (!message_traits<T>::verify(verifier)) return nullptr;
  return message_traits<T>::root(data);
}

// True when the bytes carry T's file_identifier (no verification: use verify<T> before reading).
template <class T>
[[nodiscard]] bool has_identifier(const void* data, std::size_t size) {
  return data != nullptr && size >= 8 &&
         flatbuffers::BufferHasIdentifier(data, message_traits<T>::identifier());
}

using bytes = std::vector<uint8_t>;

// Copies a finished builder's buffer out.
[[nodiscard]] bytes release(flatbuffers::FlatBufferBuilder& fbb);

[[nodiscard]] bytes make_error_reply(ErrorCode code, std::string_view message,
                                     std::string_view field = {});
[[nodiscard]] bytes make_ack(std::string_view message = {});
// The Ack that ends one page of an answer given in pages: `more` when it stopped before the
// end (the client asks again from `next`; 0 when the asker knows where it is).
[[nodiscard]] bytes make_page_end(bool more, uint64_t next, std::string_view message = {});
// An answer's page end, read from an Ack; nullopt when `data` is not an Ack.
struct page_end {
  bool more = false;
  uint64_t next = 0;
};
[[nodiscard]] std::optional<page_end> page_end_of(const uint8_t* data, std::size_t size);
// ExecRequest{exec_id, attach_only}: the state of a known exec, never a new process.
[[nodiscard]] bytes make_attach_request(std::string_view exec_id);

// Reads an optional string field as a string_view (empty when absent).
inline std::string_view str(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view{} : std::string_view{s->data(), s->size()};
}

using string_pairs = std::vector<std::pair<std::string, std::string>>;
// A KeyValue vector sorted by key (the `key` attribute allows LookupByKey), and back.
[[nodiscard]] flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<KeyValue>>> build_pairs(
    flatbuffers::FlatBufferBuilder& fbb, const string_pairs& pairs);
[[nodiscard]] string_pairs pairs_of(const flatbuffers::Vector<flatbuffers::Offset<KeyValue>>* v);

[[nodiscard]] const char* to_string(ErrorCode code);
[[nodiscard]] const char* to_string(SandboxState state);
[[nodiscard]] const char* to_string(Outcome outcome);
[[nodiscard]] inline bool is_terminal(SandboxState s) { return s >= SandboxState::exited; }

}  // namespace corral::wire
