#pragma once
// `corral sweep`: an evaluation sweep (issue #5). Runs a file of programs, one JSON object a
// line (HumanEval's format works as is), each as a job of the executors' job runner (a fresh
// sandbox per program), and appends one JSON result a line to the output file.
//
// Input line (unknown fields are ignored):
//   id | task_id        string or integer, unique in the file (required)
//   language            "python" (default) | "javascript" ("py", "python3", "js", "node" too)
//   source              the whole program; or
//   prompt + completion HumanEval: the program is prompt + completion (a completion alone is
//                       the whole program)
//   tests | test        appended: program + "\n\n" + tests + "\n", then "\ncheck(ENTRY)\n"
//   entry_point         (";" after it for javascript) when entry_point is given
//   stdin               bytes fed to the program
//   expected            the stdout it must print (trailing whitespace of each line, and of the
//                       end, ignored)
//   timeout             seconds of wall clock (default: --timeout)
// passed (HumanEval's meaning): the program exited with status 0, and
//   - with tests (or with neither tests nor expected): it ran to its end and raised nothing
//     (JobResult.completed): an early exit, even with status 0, or a kill has not passed;
//   - with expected: its whole stdout (not truncated) matches.
//
// Output line, in this key order: id, line, passed, status (the outcome's name, or "invalid"
// for a line that could not be run), returncode, completed, stdout, stderr (each capped at
// out_stream_cap bytes), stdout_truncated, stderr_truncated, wall_ms, cpu_ms,
// memory_peak_kib, node, isolation, attempt, job_id, and message when there is one.
// Each line is one write(2) to a file opened O_APPEND, made as its result arrives: a crash of
// the sweep loses no line already written (the kernel has it; it is not fsync'ed).
//
// Resume: the ids already in the output file are not run again. A partial last line (a crash
// mid-write) is cut off first; a whole one that only lacks its newline gets it.
//
// Job ids: "{batch}-{line}-{digest}", digest = 8 hex digits of a hash of the program (id,
// language, source, stdin, timeout), so that a result found in the results stream under a
// resumed batch belongs to the very same program. The default batch is derived from the
// absolute paths of the input and the output file: the same command line resumes the same
// batch.
#include <cstddef>
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "client/client.hpp"
#include "schemas/codec.hpp"

namespace corral::cli::sweep {

extern const char* const usage_text;

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

// One program, as its line describes it.
struct program {
  std::size_t line = 0;     // 1-based
  std::string id;
  std::string language;     // "python" | "javascript"
  std::string source;       // the assembled program that runs
  std::string stdin_data;
  bool has_tests = false;
  std::optional<std::string> expected;
  int64_t timeout_ms = 0;
};

struct parsed_line {
  bool blank = false;            // only whitespace: not a program
  std::optional<program> prog;   // set when the line is valid
  std::string id;                // the id, when one could be read (valid or not)
  std::string error;             // why the line is invalid
};

// Parses and assembles one input line. Deterministic: the same text gives the same program.
[[nodiscard]] parsed_line parse_line(std::string_view text, std::size_t line,
                                     int64_t default_timeout_ms);

// Output compared as `expected` says: trailing whitespace of every line and of the end removed.
[[nodiscard]] std::string normalize_output(std::string_view s);
[[nodiscard]] bool stdout_matches(std::string_view actual, std::string_view expected);

// A JobResult, copied out of its (verified) buffer.
struct job_result {
  std::string job_id;
  std::string batch_id;
  wire::Outcome outcome = wire::Outcome::internal;
  int32_t exit_code = 0;
  int32_t signal = 0;
  std::string message;
  bool completed = false;
  std::string stdout_data, stderr_data;
  bool stdout_truncated = false, stderr_truncated = false;
  std::string node;
  wire::Isolation isolation = wire::Isolation::fresh;
  uint32_t attempt = 0;
  int64_t wall_ms = 0, cpu_ms = 0;
  uint64_t memory_peak_kib = 0;
};
// Null when the bytes are not a JobResult that verifies.
[[nodiscard]] std::optional<job_result> read_result(const uint8_t* data, std::size_t n);

[[nodiscard]] bool passed(const program& p, const job_result& r);

// One line of the output file, '\n'-terminated. Invalid UTF-8 in the output is replaced.
[[nodiscard]] std::string result_line(const program& p, const job_result& r);
// The line of an input line that cannot run: status "invalid", message = why.
[[nodiscard]] std::string invalid_line(std::size_t line, const std::string& id,
                                       const std::string& why);
// The id an invalid line is written under when it has no usable one of its own.
[[nodiscard]] std::string line_id(std::size_t line);

[[nodiscard]] std::string default_batch_id(const std::string& input, const std::string& out);
[[nodiscard]] std::string job_id(const std::string& batch, const program& p);
// The Job (schemas/job.fbs) that runs p.
[[nodiscard]] wire::bytes build_job(const program& p, const std::string& batch,
                                    const std::string& job_id, const options& o);

// What an existing output file holds.
struct earlier_result {
  bool passed = false;
  bool invalid = false;
};
struct out_file_state {
  std::unordered_map<std::string, earlier_result> finished;  // by id
  uint64_t complete_bytes = 0;       // up to the end of its last complete line
  bool partial_tail = false;         // bytes after that: a line cut by a crash
  bool needs_newline = false;        // the last line is whole but lacks its '\n'
  std::size_t unreadable_lines = 0;  // not JSON objects with a string id: ignored
};
[[nodiscard]] out_file_state scan_out_file(std::istream& in);

// `corral sweep ARGS...` with the global options in cfg. Exit status: 0 when every program
// has a result in the output file, 1 when some have none (rerun to resume) or the sweep could
// not start, 2 on a usage error.
int run_command(const std::vector<std::string>& args, const client::session::config& cfg);

}  // namespace corral::cli::sweep
