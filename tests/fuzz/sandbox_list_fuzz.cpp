// Fuzz target: SandboxList, as the client gathers executors' answers to a list
// (client/replies.hpp add_sandbox_list: each SandboxInfo through view_of), twice, as from two
// executors, then sorted by creation as `corral ls` and the gateway's list show them.
#include <algorithm>

#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<client::sandbox_view> all;
  client::add_sandbox_list(data, size, all);
  const std::size_t one = all.size();
  std::size_t bytes = 0;
  for (const auto& v : all) {
    bytes += v.id.size() + v.tenant.size() + v.name.size() + v.node.size() + v.image.size() +
             v.message.size();
    for (const auto& [k, val] : v.tags) bytes += k.size() + val.size();
  }
  if (bytes > size) fuzz::fail("a list read larger than its bytes");
  client::add_sandbox_list(data, size, all);
  if (all.size() != 2 * one) fuzz::fail("the same list read twice differs");
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.created_at_ms < b.created_at_ms; });
  for (const auto& v : all) (void)client::format_age(v.created_at_ms);
  return 0;
}
