// Fuzz target: JobResult, as corral sweep consumes it (client/sweep/verdict.cpp): read_result copies it out
// of its buffer, passed() decides the verdict against a program with an expected output and
// against one with tests, result_line() writes the output file's line (valid JSON whatever the
// bytes: invalid UTF-8 is replaced), which scan_out_file must read back.
#include <sstream>

#include "client/sweep/job.hpp"
#include "client/sweep/out_file.hpp"
#include "client/sweep/program.hpp"
#include "client/sweep/verdict.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto r = sweep::read_result(data, size);
  if (!r) return 0;
  sweep::program expects;
  expects.line = 1;
  expects.id = "p1";
  expects.language = "python";
  expects.expected = "hello\n";
  sweep::program tests = expects;
  tests.id = "p2";
  tests.expected.reset();
  tests.has_tests = true;
  std::string lines;
  for (const auto* p : {&expects, &tests}) {
    (void)sweep::passed(*p, *r);
    lines += sweep::result_line(*p, *r);
  }
  std::istringstream in(lines);
  const auto state = sweep::scan_out_file(in);
  if (state.finished.size() != 2 || state.unreadable_lines != 0 || state.partial_tail)
    fuzz::fail("corral sweep cannot read back the lines it wrote");
  return 0;
}
