#pragma once
// The sweep's input: one JSON object a line (HumanEval's format works as is), each a program to
// run as a job of the executors' job runner (a fresh sandbox per program).
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
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace corral::sweep {

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

// The id an invalid line is written under when it has no usable one of its own.
[[nodiscard]] std::string line_id(std::size_t line);

}  // namespace corral::sweep
