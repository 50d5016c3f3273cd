// Fuzz target: StdinWrite, as the sandbox and process actors consume it (actors/sandbox.cpp
// on_op routes by exec id, actors/process.cpp checks it with check_stdin_write) and what
// follows: the StdinData command, carried out by corral-init's real loop on process 1 (a
// "cat" with stdin open; the exec id's length picks ids 0..4, so held, pty, ended and unknown
// processes are reached too).
#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  node_config cfg;
  const auto* msg = wire::verify<wire::StdinWrite>(data, size);
  if (msg == nullptr) return 0;
  const std::string exec_id(wire::str(msg->exec_id()));
  if (auto e = check_stdin_write(cfg, *msg)) {
    fuzz::expect_answer<wire::Ack>(wire::make_error_reply(e.code, e.why, e.field));
    return 0;
  }
  const auto* d = msg->data();
  const std::size_t n = d == nullptr ? 0 : d->size();
  const uint64_t handle = exec_id.size() % 5;
  fuzz::run_in_init({make_command_stdin(handle, n ? d->data() : nullptr, n, msg->eof())});
  fuzz::expect_answer<wire::Ack>(wire::make_ack());
  return 0;
}
