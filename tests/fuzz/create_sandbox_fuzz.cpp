// Fuzz target: CreateSandbox, as the node actor consumes it (actors/node.cpp on_create): verify,
// check_create (every field against the node's limits), create_record (the sandbox record with
// the node's defaults); then what follows for an accepted one: the record stored (the store's
// encoding, read back), the SandboxReply answered (and read back as the client reads it), and
// its entrypoint started by corral-init as the sandbox's first process.
#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  node_config cfg;
  cfg.node_id = "node-fuzz";
  const auto* msg = wire::verify<wire::CreateSandbox>(data, size);
  if (msg == nullptr) {
    fuzz::expect_answer<wire::SandboxReply>(
        wire::make_error_reply(wire::ErrorCode::malformed, "not a CreateSandbox"));
    return 0;
  }
  if (auto e = check_create(cfg, *msg)) {
    fuzz::expect_answer<wire::SandboxReply>(wire::make_error_reply(e.code, e.message(), e.field));
    return 0;
  }
  storage::sandbox_record rec = create_record(cfg, "tenant-a", *msg);
  rec.id = "sb-0123456789abcdef0123456789abcdef";
  rec.state = wire::SandboxState::running;
  rec.created_at_ms = rec.started_at_ms = 1'700'000'000'000;
  fuzz::expect_round_trip(rec, [](const std::string& b) { return storage::decode_sandbox(b); });
  (void)list_matches(rec, nullptr);

  const auto reply = make_sandbox_reply(rec);
  fuzz::expect_answer<wire::SandboxReply>(reply);
  const auto view = client::sandbox_reply_of(reply.data(), reply.size());
  if (!view || view->name != rec.name || view->tags != rec.tags || view->id != rec.id)
    fuzz::fail("the client reads another sandbox than the one answered");

  if (!rec.entrypoint.empty()) {
    storage::process_record proc;
    proc.sandbox_id = rec.id;
    proc.exec_id = "entrypoint";
    proc.handle = 20;
    proc.argv = rec.entrypoint;
    proc.env = merged_env(rec.env, {});
    proc.workdir = rec.workdir.empty() ? "/" : rec.workdir;
    fuzz::run_in_init({make_spawn(proc, pty_options{})});
  }
  return 0;
}
