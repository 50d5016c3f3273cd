// Fuzz target: ExecReply, as the clients consume it: `corral exec` asks exec_reply_reattached
// (client/replies.hpp) whether to replay what came before it subscribed; the gateway's exec
// status reads finished, the byte counts and the status (result_of, as the client reads an
// ExitStatus).
#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto reattached = client::exec_reply_reattached(data, size);
  const auto* rep = wire::verify<wire::ExecReply>(data, size);
  if (reattached.has_value() != (rep != nullptr)) fuzz::fail("an ExecReply read two ways");
  if (rep == nullptr) return 0;
  const auto id = wire::str(rep->exec_id());
  const auto r = client::result_of(rep->finished() ? rep->status() : nullptr);
  (void)wire::to_string(r.outcome);
  (void)(id.size() + rep->next_seq() + rep->stdout_bytes() + rep->stderr_bytes());
  return 0;
}
