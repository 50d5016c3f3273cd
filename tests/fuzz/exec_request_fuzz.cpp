// Fuzz target: ExecRequest, as the sandbox actor consumes it (actors/sandbox.cpp on_exec):
// verify; attach_only needs a known id; otherwise check_exec and read_exec (argv, env merged
// with the sandbox's, workdir, timeout, stdin, terminal); then the process record stored (read
// back), the ExecReply answered, and the Spawn sent to corral-init, carried out by init's real
// loop (its own validation, over the scripted OS).
#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "schemas/ids.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  node_config cfg;
  const auto* msg = wire::verify<wire::ExecRequest>(data, size);
  if (msg == nullptr) return 0;
  std::string exec_id(wire::str(msg->exec_id()));
  if (msg->attach_only()) {
    // Re-attach only: the id is looked up (a valid token), never a new process.
    (void)wire::valid_token(exec_id);
    return 0;
  }
  if (auto e = check_exec(cfg, *msg)) {
    fuzz::expect_answer<wire::ExecReply>(wire::make_error_reply(e.code, e.message(), e.field));
    return 0;
  }
  storage::sandbox_record sandbox;
  sandbox.id = "sb-0123456789abcdef0123456789abcdef";
  sandbox.env = {{"LANG", "C.UTF-8"}, {"PATH", "/usr/bin:/bin"}};
  sandbox.workdir = "/srv";
  storage::process_record proc;
  proc.sandbox_id = sandbox.id;
  proc.exec_id = exec_id.empty() ? "ex-0123456789abcdef" : exec_id;
  proc.handle = 20;
  const pty_options pty = read_exec(*msg, sandbox, proc);
  fuzz::expect_round_trip(proc, [](const std::string& b) { return storage::decode_process(b); });
  fuzz::expect_answer<wire::ExecReply>(make_exec_reply(proc, /*reattached=*/false));
  fuzz::run_in_init({make_spawn(proc, pty)});
  return 0;
}
