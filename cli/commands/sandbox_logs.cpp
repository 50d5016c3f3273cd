// corral sandbox logs: the entrypoint's output.
#include "cli/commands/command.hpp"
#include "cli/commands/exec_io.hpp"

namespace corral::cli {

namespace {

int run(context& ctx, const args_t& args);

}  // namespace

extern const verb sandbox_logs_verb{
    "sandbox logs",
    "ID",
    "Print the output of a sandbox's entrypoint.",
    "All of it that is kept, then what follows, until the entrypoint ends.\n"
    "exit status: the entrypoint's (as `corral exec`).\n",
    run};

namespace {

int run(context& ctx, const args_t& args) {
  if (args.size() != 1 || args[0].empty() || args[0][0] == '-')
    return usage_error(sandbox_logs_verb, "give one sandbox id");
  client::session* c = ctx.connect();
  if (c == nullptr) return exit_failed;
  // Re-attaches to the entrypoint's exec id (which never starts anything) and replays.
  exec_options o;
  o.exec_id = "entrypoint";
  o.argv = {"(entrypoint)"};
  return run_exec(*c, args[0], o, /*forward_stdin=*/false);
}

}  // namespace

}  // namespace corral::cli
