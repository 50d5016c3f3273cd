#include "actors/wire_build.hpp"

#include "corral/wire/init_command_generated.h"
#include "schemas/codec.hpp"
#include "schemas/exit_codes.hpp"

namespace corral {

flatbuffers::Offset<wire::SandboxInfo> build_sandbox_info(flatbuffers::FlatBufferBuilder& fbb,
                                                          const storage::sandbox_record& rec) {
  auto id = fbb.CreateString(rec.id);
  auto tenant = fbb.CreateString(rec.tenant);
  auto name = fbb.CreateString(rec.name);
  auto node = fbb.CreateString(rec.node);
  auto image = fbb.CreateString(rec.image);
  auto message = fbb.CreateString(rec.message);
  auto tags = wire::build_pairs(fbb, rec.tags);
  wire::SandboxInfoBuilder b(fbb);
  b.add_id(id);
  b.add_tenant(tenant);
  b.add_name(name);
  b.add_state(rec.state);
  b.add_node(node);
  b.add_image(image);
  b.add_created_at_ms(rec.created_at_ms);
  b.add_started_at_ms(rec.started_at_ms);
  b.add_ended_at_ms(rec.ended_at_ms);
  b.add_timeout_ms(rec.timeout_ms);
  b.add_has_return_code(rec.has_return_code);
  b.add_return_code(rec.return_code);
  b.add_message(message);
  b.add_tags(tags);
  b.add_ready(rec.ready);
  b.add_idle_timeout_ms(rec.idle_timeout_ms);
  b.add_cpu_millis(rec.cpu_millis);
  b.add_memory_mib(rec.memory_mib);
  b.add_cpu_request_millis(rec.cpu_request_millis);
  b.add_memory_request_mib(rec.memory_request_mib);
  return b.Finish();
}

bytes make_sandbox_reply(const storage::sandbox_record& rec) {
  flatbuffers::FlatBufferBuilder fbb(512);
  auto info = build_sandbox_info(fbb, rec);
  fbb.Finish(wire::CreateSandboxReply(fbb, info), wire::SandboxReplyIdentifier());
  return wire::release(fbb);
}

int32_t shell_exit_code(wire::Outcome outcome, int32_t exit_code, int32_t signal) {
  switch (outcome) {
    case wire::Outcome::exited:
      return exit_code;
    case wire::Outcome::signaled:
      return exit_codes::signal_base + signal;
    case wire::Outcome::timeout:
      return exit_codes::timed_out;
    case wire::Outcome::oom_killed:
      return exit_codes::killed;
    case wire::Outcome::rejected:
      return exit_code == exit_codes::not_executable ? exit_codes::not_executable : exit_codes::not_found;
    default:
      return exit_codes::unknown;
  }
}

flatbuffers::Offset<wire::ExitStatus> build_exit_status(flatbuffers::FlatBufferBuilder& fbb,
                                                        const storage::process_record& rec) {
  auto message = fbb.CreateString(rec.message);
  wire::ExitStatusBuilder b(fbb);
  b.add_outcome(rec.outcome);
  b.add_exit_code(shell_exit_code(rec.outcome, rec.exit_code, rec.signal));
  b.add_signal(rec.signal);
  b.add_message(message);
  b.add_stdout_bytes(rec.stdout_bytes);
  b.add_stderr_bytes(rec.stderr_bytes);
  return b.Finish();
}

bytes make_exec_reply(const storage::process_record& rec, bool reattached) {
  flatbuffers::FlatBufferBuilder fbb(256);
  auto id = fbb.CreateString(rec.exec_id);
  flatbuffers::Offset<wire::ExitStatus> status = 0;
  if (rec.finished) status = build_exit_status(fbb, rec);
  wire::ExecReplyBuilder b(fbb);
  b.add_exec_id(id);
  b.add_reattached(reattached);
  b.add_finished(rec.finished);
  if (rec.finished) b.add_status(status);
  b.add_next_seq(rec.next_seq);
  b.add_stdout_bytes(rec.stdout_bytes);
  b.add_stderr_bytes(rec.stderr_bytes);
  fbb.Finish(b.Finish(), wire::ExecReplyIdentifier());
  return wire::release(fbb);
}

bytes make_exec_exit(const storage::process_record& rec) {
  flatbuffers::FlatBufferBuilder fbb(256);
  auto id = fbb.CreateString(rec.exec_id);
  auto status = build_exit_status(fbb, rec);
  // The exit frame's seq is the one after the last chunk (next_seq - 1 after finish bumps it).
  fbb.Finish(wire::CreateExecExit(fbb, id, rec.next_seq == 0 ? 0 : rec.next_seq - 1, status),
             wire::ExecExitIdentifier());
  return wire::release(fbb);
}

bytes make_command_signal(uint64_t handle, int32_t sig) {
  flatbuffers::FlatBufferBuilder fbb(64);
  auto s = wire::CreateSignal(fbb, handle, sig);
  fbb.Finish(wire::CreateInitCommand(fbb, wire::Command::Signal, s.Union()),
             wire::InitCommandIdentifier());
  return wire::release(fbb);
}

bytes make_spawn(const storage::process_record& rec, const pty_options& pty, bool hold,
                 uint64_t adopt) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<flatbuffers::Offset<flatbuffers::String>> argv;
  for (const auto& a : rec.argv) argv.push_back(fbb.CreateString(a));
  std::vector<flatbuffers::Offset<wire::KeyValue>> env;
  for (const auto& [k, v] : rec.env)
    env.push_back(wire::CreateKeyValue(fbb, fbb.CreateString(k), fbb.CreateString(v)));
  auto a = fbb.CreateVector(argv);
  auto e = fbb.CreateVector(env);
  auto wd = fbb.CreateString(rec.workdir);
  auto s = wire::CreateSpawn(fbb, rec.handle, a, e, wd, rec.stdin_open, pty.pty, pty.rows,
                             pty.cols, hold, adopt);
  fbb.Finish(wire::CreateInitCommand(fbb, wire::Command::Spawn, s.Union()),
             wire::InitCommandIdentifier());
  return wire::release(fbb);
}

bytes make_command_stdin(uint64_t handle, const uint8_t* data, std::size_t n, bool eof) {
  flatbuffers::FlatBufferBuilder fbb(n + 64);
  auto d = fbb.CreateVector(data, n);
  auto s = wire::CreateStdinData(fbb, handle, d, eof);
  fbb.Finish(wire::CreateInitCommand(fbb, wire::Command::StdinData, s.Union()),
             wire::InitCommandIdentifier());
  return wire::release(fbb);
}

bytes make_command_resize(uint64_t handle, uint16_t rows, uint16_t cols) {
  flatbuffers::FlatBufferBuilder fbb(64);
  auto r = wire::CreateResize(fbb, handle, rows, cols);
  fbb.Finish(wire::CreateInitCommand(fbb, wire::Command::Resize, r.Union()),
             wire::InitCommandIdentifier());
  return wire::release(fbb);
}

}  // namespace corral
