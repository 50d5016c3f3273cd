// Fuzz target: UsageRequest, as the usage actor consumes it (actors/usage.cpp on_request): an
// empty payload asks for every sandbox; otherwise verify and read the one field the actor reads,
// the sandbox id that filters its answer (compared with the ids of the tenant's sandboxes).
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string only;
  if (size != 0) {
    const auto* msg = wire::verify<wire::UsageRequest>(data, size);
    if (msg == nullptr) return 0;
    only = std::string(wire::str(msg->sandbox_id()));
  }
  static const std::vector<std::string> ids = {"sb-00000000000000000000000000000001",
                                               "sb-00000000000000000000000000000002"};
  std::size_t listed = 0;
  for (const auto& id : ids) listed += only.empty() || id == only;
  (void)listed;
  return 0;
}
