#pragma once
// The shell-style exit codes corral reports beside an exec's, a sandbox's or a job's outcome
// (docs/protocol.md, "Exec semantics"), and the CLI's own exit status: the numbers a shell user
// already knows, named once.
#include <cstdint>

namespace corral::exit_codes {

inline constexpr int32_t timed_out = 124;       // the exec, sandbox or job ran past its timeout
inline constexpr int32_t not_executable = 126;  // the program exists but cannot be executed
inline constexpr int32_t not_found = 127;       // no such program
inline constexpr int32_t signal_base = 128;     // 128 + n: ended by signal n
inline constexpr int32_t killed = 137;          // 128 + SIGKILL: terminated, or out of memory
inline constexpr int32_t unknown = 255;         // no code of its own (lost, internal, refused)

}  // namespace corral::exit_codes
