// Fuzz target: ErrorReply, as the clients consume it (client/replies.hpp error_reply_of: bytes
// with its identifier that do not verify are "malformed"), and then use it: the code's name
// (`corral` prints it; the gateway maps it to an HTTP status and names it in its JSON).
#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto e = client::error_reply_of(data, size);
  if (wire::has_identifier<wire::ErrorReply>(data, size) != e.has_value())
    fuzz::fail("an ErrorReply's identifier and its reading disagree");
  if (!e) return 0;
  const char* name = wire::to_string(e->code);
  if (name == nullptr || *name == '\0') fuzz::fail("an error code without a name");
  return 0;
}
