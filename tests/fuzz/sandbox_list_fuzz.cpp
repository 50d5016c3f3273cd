// Fuzz target: SandboxList, as the client gathers executors' answers to a list
// (cli/replies.hpp add_sandbox_list: each SandboxInfo through view_of), twice, as from two
// executors, then sorted by creation as `corral ls` and the gateway's list show them.
#include <algorithm>

#include "cli/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<cli::sandbox_view> all;
  cli::add_sandbox_list(data, size, all);
  const std::size_t one = all.size();
  cli::add_sandbox_list(data, size, all);
  if (all.size() != 2 * one) fuzz::fail("the same list read twice differs");
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.created_at_ms < b.created_at_ms; });
  for (const auto& v : all) (void)cli::format_age(v.created_at_ms);
  return 0;
}
