#pragma once
// What became of a program: its JobResult read, whether it passed, and its line of the output
// file.
//
// passed (HumanEval's meaning): the program exited with status 0, and
//   - with tests (or with neither tests nor expected): it ran to its end and raised nothing
//     (JobResult.completed): an early exit, even with status 0, or a kill has not passed;
//   - with expected: its whole stdout (not truncated) matches.
//
// Output line, in this key order: id, line, passed, status (the outcome's name, or "invalid"
// for a line that could not be run), returncode, completed, stdout, stderr (each capped at
// out_stream_cap bytes), stdout_truncated, stderr_truncated, wall_ms, cpu_ms,
// memory_peak_kib, node, isolation, attempt, job_id, and message when there is one.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "client/sweep/program.hpp"
#include "schemas/codec.hpp"

namespace corral::sweep {

// The returncode of a result that carries no status (shell convention: no status at all).
inline constexpr int32_t no_status_exit_code = 255;

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

}  // namespace corral::sweep
