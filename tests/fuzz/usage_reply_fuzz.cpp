// Fuzz target: UsageReply, as the client gathers executors' answers to a usage request
// (client/replies.hpp add_usage_reply: the total and every sandbox's amounts), from two executors.
#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  client::usage_report report;
  client::add_usage_reply(data, size, report);
  const std::size_t one = report.sandboxes.size();
  std::size_t bytes = 0;
  for (const auto& s : report.sandboxes) bytes += s.sandbox_id.size() + s.node.size();
  if (bytes > size) fuzz::fail("a usage reply read larger than its bytes");
  client::add_usage_reply(data, size, report);
  if (report.sandboxes.size() != 2 * one) fuzz::fail("the same reply read twice differs");
  return 0;
}
