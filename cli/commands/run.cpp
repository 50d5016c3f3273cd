// corral run: one-shot — a new sandbox, one command in it, the sandbox removed.
#include <iostream>

#include "cli/commands/command.hpp"
#include "cli/commands/exec_io.hpp"

namespace corral::cli {

namespace {

int run(context& ctx, const args_t& args);

}  // namespace

extern const verb run_verb{
    "run",
    "[--timeout S] [--exec-timeout S] [-t] [--workdir DIR] [--env K=V]... -- ARGV...",
    "One-shot: create a sandbox, run ARGV in it with this terminal's stdio, remove it.",
    "options:\n"
    "  --timeout S       the sandbox's lifetime (0: the executor's default)\n"
    "  --exec-timeout S  end the command after S seconds (exit status 124)\n"
    "  -t, --tty         a pseudo-terminal (as `corral exec -t`)\n"
    "  --workdir DIR     the working directory in the sandbox\n"
    "  --env K=V         an environment variable (repeatable)\n"
    "\n"
    "exit status: the command's own (as `corral exec`); 1 when a request failed.\n",
    run};

namespace {

int run(context& ctx, const args_t& args) {
  std::string unused;
  exec_options o;
  int64_t sandbox_timeout = 0;
  if (int rc = parse_exec_args(run_verb, args, false, unused, o, &sandbox_timeout)) return rc;
  client::session* c = ctx.connect();
  if (c == nullptr) return exit_failed;
  create_options co;
  co.timeout_ms = sandbox_timeout;
  auto sb = c->create(co);
  if (!sb) return fail(sb.error());
  const int code = run_exec(*c, sb->id, o);
  auto t = c->terminate(sb->id);
  if (!t) std::cerr << "corral: could not remove " << sb->id << ": " << t.error().message << "\n";
  leave(code);
}

}  // namespace

}  // namespace corral::cli
