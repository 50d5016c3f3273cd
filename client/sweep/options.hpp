#pragma once
// `corral sweep`'s options, limits and defaults (docs/jobs.md). What a sweep is, and the format
// of its input and output files: client/sweep/program.hpp and client/sweep/verdict.hpp.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "schemas/codec.hpp"

namespace corral::sweep {

// Limits and defaults. The timeout bounds match the executor's job runner (runner_config).
inline constexpr int64_t default_timeout_ms = 10'000;   // per program, unless its line says
inline constexpr int64_t max_timeout_ms = 3'600'000;
inline constexpr uint32_t max_output_limit = 1024 * 1024;  // --output-limit, per stream
inline constexpr std::size_t out_stream_cap = 4096;     // stdout/stderr bytes kept in --out
inline constexpr std::size_t max_batch_chars = 40;      // job ids stay within 64 characters
inline constexpr int default_concurrency = 8;
inline constexpr int max_concurrency = 1024;
inline constexpr int max_publishers = 16;               // --queue: threads publishing jobs
inline constexpr std::size_t max_results_fetch = 256;   // --queue: results read at once
// A job's request waits for its timeout plus this: the executor may first have to create a
// sandbox (a request, 30 s at most) and start its guest runner (60 s at most), and ends a job
// no later than 10 s past its timeout.
inline constexpr int64_t request_margin_ms = 120'000;
inline constexpr int64_t default_stall_ms = 300'000;    // --stall-timeout
// No executor subscribed to the run subject for this long: the sweep stops.
inline constexpr int64_t no_executor_ms = 30'000;
// Transport failures (request timeout, lost connection) of one job before it is given up.
inline constexpr int max_transport_attempts = 3;
inline constexpr int64_t backoff_min_ms = 20;
inline constexpr int64_t backoff_max_ms = 2'000;
// Every slot busy (resource_exhausted) or no sandbox now (unavailable): asked again soon, so
// that a slot freed by a short program does not stay idle long.
inline constexpr int64_t busy_backoff_max_ms = 250;
// A program (source + stdin) must fit one message with room for the rest of the Job.
inline constexpr std::size_t max_program_bytes = wire::max_message_bytes - 16 * 1024;
// --queue: a job's publish waits this long for the stream's ack.
inline constexpr int64_t publish_ack_timeout_ms = 5'000;
// --queue: the results are read at least this often (a doorbell lost to a reconnect).
inline constexpr int64_t results_poll_ms = 1'000;

enum class transport { direct, queue };

struct options {
  std::string input;
  std::string out;
  int concurrency = default_concurrency;  // direct: requests in flight
  transport mode = transport::direct;
  wire::Isolation isolation = wire::Isolation::fresh;
  std::string batch;                      // empty: default_batch_id(input, out)
  int64_t timeout_ms = default_timeout_ms;
  uint32_t output_limit = 0;              // bytes per stream in a result; 0 = executor default
  // Without any result for this long (while some are awaited) the sweep stops; its programs
  // stay to be resumed.
  int64_t stall_ms = default_stall_ms;
};

// Parses the arguments after `sweep`. False with *why on a usage error.
[[nodiscard]] bool parse_args(const std::vector<std::string>& args, options& o, std::string* why);

}  // namespace corral::sweep
