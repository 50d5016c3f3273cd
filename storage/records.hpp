#pragma once
// The records the store keeps, as plain values, and their versioned binary encoding.
//
// Encoding: one FlatBuffer per record (storage/records.fbs), finished with a per-kind 4-byte
// identifier and carrying `version` = record_format_version. decode_*() treat their input as
// untrusted: they check the size cap, the identifier, the FlatBuffers structure (Verifier), the
// version and every enum's range, and return an error instead of reading out of bounds, so
// corrupt or hostile bytes never crash the process. A record written before a field existed
// decodes with that field's default. encode/decode are pure functions, safe from any thread.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "schemas/codec.hpp"
#include "schemas/status.hpp"

namespace corral::storage {

// Version written into every record. Bumped only by a change an older reader would misread (not
// by added fields); decoders refuse versions above theirs with failed_precondition.
inline constexpr uint16_t record_format_version = 1;

// Default cap on one encoded record or output chunk; store_options::max_record_bytes overrides.
inline constexpr std::size_t default_max_record_bytes = 4 * 1024 * 1024;

using string_pairs = std::vector<std::pair<std::string, std::string>>;

// One sandbox: its spec, its lifecycle state and the counters its actor allocates from.
struct sandbox_record {
  std::string id;  // "sb-" id; the record's key
  std::string tenant;
  std::string name;
  std::string image;
  wire::SandboxState state = wire::SandboxState::pending;
  std::string node;           // executor node that owns it
  int64_t created_at_ms = 0;  // unix epoch milliseconds; 0 = not yet
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  int64_t timeout_ms = 0;  // lifetime limit; 0 = none
  bool has_return_code = false;
  int32_t return_code = 0;
  std::string message;  // why it failed / ended
  string_pairs tags;
  std::vector<std::string> entrypoint;
  string_pairs env;
  std::string workdir;
  uint32_t cpu_millis = 0;
  uint32_t memory_mib = 0;
  uint64_t next_exec_handle = 0;  // next process handle the sandbox hands out
  std::string request_id;         // the create request that made it (dedup on retries)
  int64_t idle_timeout_ms = 0;    // end after this long idle (no exec running, no stdin); 0 = never
  uint32_t cpu_request_millis = 0;   // billed at least this (requests; limits are cpu_millis/memory_mib)
  uint32_t memory_request_mib = 0;
  std::vector<std::string> probe_command;  // readiness probe: a command that must exit 0, or
  int32_t probe_tcp_port = 0;              // a TCP port inside that must accept; 0 = none
  int64_t probe_interval_ms = 0;
  bool ready = false;                      // the readiness probe passed (true without a probe)
};

// One exec inside a sandbox, from acceptance to its terminal status.
struct process_record {
  std::string sandbox_id;
  std::string exec_id;  // "ex-" id, unique within its sandbox
  uint64_t handle = 0;  // corral-init's handle for the process
  std::vector<std::string> argv;
  string_pairs env;
  std::string workdir;
  int64_t timeout_ms = 0;  // 0 = none
  bool stdin_open = false;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  bool finished = false;  // outcome..stderr_bytes are meaningful only when true
  wire::Outcome outcome = wire::Outcome::exited;
  int32_t exit_code = 0;
  int32_t signal = 0;
  std::string message;
  uint64_t stdout_bytes = 0;
  uint64_t stderr_bytes = 0;
  uint64_t next_seq = 0;  // next output sequence number
};

// One chunk of an exec's output, as published (schemas/output_chunk.fbs).
struct output_chunk {
  uint64_t seq = 0;  // the chunk's key within its exec
  wire::Stream stream = wire::Stream::none;
  uint64_t offset = 0;  // byte offset of data within its stream
  wire::bytes data;
};

// Metered use of one sandbox since it started (actors/usage.hpp bills it; the store keeps it).
struct usage_record {
  std::string sandbox_id;  // the record's key
  std::string tenant;
  double cpu_core_seconds = 0;  // billed core-seconds: max(request, actual) per interval
  double gib_seconds = 0;       // billed GiB-seconds: max(request, actual) per interval
  double cost = 0;              // cpu and memory at the configured prices
  int64_t last_sample_ms = 0;   // unix epoch ms of the last sample folded in; 0 = none yet
  uint64_t last_cpu_usage_ns = 0;  // the cgroup's cpuacct.usage at that sample
};

bool operator==(const sandbox_record& a, const sandbox_record& b);
bool operator==(const usage_record& a, const usage_record& b);
inline bool operator!=(const usage_record& a, const usage_record& b) { return !(a == b); }
bool operator==(const process_record& a, const process_record& b);
bool operator==(const output_chunk& a, const output_chunk& b);
inline bool operator!=(const sandbox_record& a, const sandbox_record& b) { return !(a == b); }
inline bool operator!=(const process_record& a, const process_record& b) { return !(a == b); }
inline bool operator!=(const output_chunk& a, const output_chunk& b) { return !(a == b); }

// Encodings. Never fail; the store checks the size against its cap before writing.
[[nodiscard]] std::string encode(const sandbox_record& rec);
[[nodiscard]] std::string encode(const process_record& rec);
[[nodiscard]] std::string encode(const output_chunk& chunk);
[[nodiscard]] std::string encode(const usage_record& rec);

// Decode untrusted bytes. Errors: malformed (over max_bytes, wrong kind, fails verification,
// missing version, enum out of range) or failed_precondition (newer version). The input need not
// be aligned and is not referenced after the call returns.
[[nodiscard]] result<sandbox_record> decode_sandbox(
    std::string_view bytes, std::size_t max_bytes = default_max_record_bytes);
[[nodiscard]] result<process_record> decode_process(
    std::string_view bytes, std::size_t max_bytes = default_max_record_bytes);
[[nodiscard]] result<output_chunk> decode_output_chunk(
    std::string_view bytes, std::size_t max_bytes = default_max_record_bytes);
[[nodiscard]] result<usage_record> decode_usage(
    std::string_view bytes, std::size_t max_bytes = default_max_record_bytes);

}  // namespace corral::storage
