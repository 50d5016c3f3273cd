// Fuzz target: SignalRequest, as the process actor consumes it (actors/process.cpp: check_signal)
// and what follows: the Signal command, carried out by corral-init's real loop on one of its
// processes (the exec id's length picks ids 1..4: running, pty, held, ended).
#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* msg = wire::verify<wire::SignalRequest>(data, size);
  if (msg == nullptr) return 0;
  const std::string exec_id(wire::str(msg->exec_id()));
  if (auto e = check_signal(*msg)) {
    fuzz::expect_answer<wire::Ack>(wire::make_error_reply(e.code, e.why, e.field));
    return 0;
  }
  const uint64_t handle = 1 + exec_id.size() % 4;
  fuzz::run_in_init({make_command_signal(handle, msg->signal())});
  fuzz::expect_answer<wire::Ack>(wire::make_ack());
  return 0;
}
