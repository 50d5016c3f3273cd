// corral sandbox rm: ends a sandbox (its processes killed, its state kept for info and logs).
#include <cstdio>

#include "cli/commands/command.hpp"
#include "cli/commands/sandbox_view.hpp"

namespace corral::cli {

namespace {

int run(context& ctx, const args_t& args);

}  // namespace

extern const verb sandbox_rm_verb{
    "sandbox rm",
    "(ID | --name NAME)",
    "End a sandbox; prints its id and its state.",
    "options:\n"
    "  --name NAME  the tenant's live sandbox of that name\n",
    run};

namespace {

int run(context& ctx, const args_t& args) {
  const verb& v = sandbox_rm_verb;
  int rc = exit_ok;
  auto sb = open_sandbox(v, ctx, args, &rc);
  if (!sb) return rc;
  for (std::size_t i = sb->used; i < args.size(); ++i)
    if (!ignored_timeout(args, i)) return usage_error(v, "unknown argument " + args[i]);
  auto ended = sb->session->terminate(sb->id);
  if (!ended) return fail(ended.error());
  std::printf("%s %s\n", ended->id.c_str(), wire::to_string(ended->state));
  return exit_ok;
}

}  // namespace

}  // namespace corral::cli
