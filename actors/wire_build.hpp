#pragma once
// Builds wire replies from stored records (one place, so every reply says the same thing).
#include <flatbuffers/flatbuffers.h>

#include "actors/messages.hpp"
#include "storage/records.hpp"

namespace corral {

[[nodiscard]] flatbuffers::Offset<wire::SandboxInfo> build_sandbox_info(
    flatbuffers::FlatBufferBuilder& fbb, const storage::sandbox_record& rec);
[[nodiscard]] bytes make_sandbox_reply(const storage::sandbox_record& rec);

[[nodiscard]] flatbuffers::Offset<wire::ExitStatus> build_exit_status(
    flatbuffers::FlatBufferBuilder& fbb, const storage::process_record& rec);
// ExecReply for a new, re-attached or finished exec.
[[nodiscard]] bytes make_exec_reply(const storage::process_record& rec, bool reattached);
[[nodiscard]] bytes make_exec_exit(const storage::process_record& rec);

// Shell-style exit code of a terminal status: the code for exited, 128+sig for signaled, 124 for
// timeout, 137 for oom_killed, 127/126 for rejected (not found / not executable), 255 otherwise.
[[nodiscard]] int32_t shell_exit_code(wire::Outcome outcome, int32_t exit_code, int32_t signal);

// A pseudo-terminal for a process (ExecRequest.pty), given only at its start.
struct pty_options {
  bool pty = false;
  uint16_t rows = 0, cols = 0;
};
// InitCommand Spawn of a process record. hold: init starts it and holds it (a warm sandbox's
// pre-started command); adopt: the handle of a held process this exec may take over (0: none).
[[nodiscard]] bytes make_spawn(const storage::process_record& rec, const pty_options& pty,
                               bool hold = false, uint64_t adopt = 0);
// InitCommand StdinData: n bytes (and eof) for the stdin of init's process `handle`.
[[nodiscard]] bytes make_command_stdin(uint64_t handle, const uint8_t* data, std::size_t n,
                                       bool eof);
// InitCommand Resize: the terminal size of init's pty process `handle`.
[[nodiscard]] bytes make_command_resize(uint64_t handle, uint16_t rows, uint16_t cols);
// InitCommand Signal: `sig` to the process group of init's process `handle`.
[[nodiscard]] bytes make_command_signal(uint64_t handle, int32_t sig);

}  // namespace corral
