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

// InitCommand Signal: `sig` to the process group of init's process `handle`.
[[nodiscard]] bytes make_command_signal(uint64_t handle, int32_t sig);

}  // namespace corral
