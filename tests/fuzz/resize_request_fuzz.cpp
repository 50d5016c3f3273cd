// Fuzz target: ResizeRequest, as the process actor consumes it (actors/process.cpp, resize) and
// what follows: the Resize command, carried out by corral-init's real loop (the exec id's
// length picks ids 1..4: 2 is the pty process).
#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* msg = wire::verify<wire::ResizeRequest>(data, size);
  if (msg == nullptr) return 0;
  const std::string exec_id(wire::str(msg->exec_id()));
  const uint64_t handle = 1 + exec_id.size() % 4;
  fuzz::run_in_init({make_command_resize(handle, msg->rows(), msg->cols())});
  fuzz::expect_answer<wire::Ack>(wire::make_ack());
  return 0;
}
