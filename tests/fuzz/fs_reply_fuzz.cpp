// Fuzz target: FsReply, as the client consumes it (client/replies.hpp fs_reply_of, used by every
// `corral fs` command and the gateway's files API): data, entries, stat and the continuation
// fields, then what the continuation loops compute from them.
#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto v = client::fs_reply_of(data, size);
  if (!v) return 0;
  std::size_t names = 0;
  for (const auto& e : v->entries) names += e.name.size();
  if (v->stat) names += v->stat->name.size();
  if (v->data.size() > size || names > size) fuzz::fail("a reply read larger than its bytes");
  return 0;
}
