// corral exec: a command in a running sandbox, with this terminal's stdio.
#include "cli/commands/command.hpp"
#include "cli/commands/exec_io.hpp"

namespace corral::cli {

namespace {

int run(context& ctx, const args_t& args);

}  // namespace

extern const verb exec_verb{
    "exec",
    "[-t] [--timeout S] [--workdir DIR] [--env K=V]... [--id EXEC_ID] SANDBOX -- ARGV...",
    "Run a command in a running sandbox; its output streams here as it comes.",
    "options:\n"
    "  -t, --tty         a pseudo-terminal: stderr merged into stdout, this terminal in raw\n"
    "                    mode, its size (and each change of it) sent to the remote terminal\n"
    "  --timeout S       end the command after S seconds (exit status 124)\n"
    "  --workdir DIR     the working directory in the sandbox\n"
    "  --env K=V         an environment variable (repeatable)\n"
    "  --id EXEC_ID      the exec's id: run again with the same id re-attaches to it (its output\n"
    "                    replayed from the start) and never starts it a second time\n"
    "\n"
    "stdin is forwarded when it is not a terminal, or with -t.\n"
    "exit status: the command's own (128+N when killed by signal N, 124 after its timeout, 137\n"
    "when killed for memory, 255 when it could not run); 1 when the request failed.\n",
    run};

namespace {

int run(context& ctx, const args_t& args) {
  std::string sandbox;
  exec_options o;
  if (int rc = parse_exec_args(exec_verb, args, true, sandbox, o, nullptr)) return rc;
  client::session* c = ctx.connect();
  if (c == nullptr) return exit_failed;
  leave(run_exec(*c, sandbox, o));
}

}  // namespace

}  // namespace corral::cli
