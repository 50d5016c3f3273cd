#pragma once
// An exec with the CLI's own stdio (exec, run, sandbox logs): output streamed as it comes, stdin
// forwarded, and with -t the local terminal in raw mode and its size (and every change of it)
// sent to the remote pty.
#include <string>
#include <vector>

#include "client/client.hpp"

namespace corral::cli {

// The exit status of `corral exec` and `corral run` is the process's (shell style); these are
// the ones corral itself gives.
inline constexpr int exec_status_internal = 255;  // no status (an exec that could not run)
inline constexpr int exec_status_timeout = 124;   // the exec's timeout ended it (as timeout(1))
inline constexpr int exec_status_killed = 137;    // 128 + SIGKILL: killed (out of memory, ...)

// Runs opts in the sandbox with this process's stdio. stdin is forwarded when forward_stdin and
// it is not a terminal, or with a pty. Returns the process's shell-style exit status, or
// exit_failed when the exec could not be run or followed.
int run_exec(client::session& c, const std::string& sandbox, client::exec_options opts, bool forward_stdin = true);

// Exits with `code` at once, output flushed, without running destructors: exec's stdin pump
// may still be blocked on a read of our stdin or in a last request, and must not see the
// process's libraries torn down under it.
[[noreturn]] void leave(int code);

}  // namespace corral::cli

namespace corral::cli {

struct verb;

// The arguments of exec and run: "[options] SANDBOX -- ARGV..." (want_sandbox) or
// "[options] -- ARGV...". run's --timeout is the sandbox's (sandbox_timeout), --exec-timeout the
// exec's. Returns 0, or exit_usage after printing why.
int parse_exec_args(const verb& v, const std::vector<std::string>& args, bool want_sandbox,
                    std::string& sandbox, client::exec_options& o, int64_t* sandbox_timeout);

}  // namespace corral::cli
