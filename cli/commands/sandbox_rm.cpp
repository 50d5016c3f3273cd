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
  client::session* c = ctx.connect();
  if (c == nullptr) return exit_failed;
  std::size_t used = 0;
  int rc = exit_ok;
  auto id = resolve_sandbox(v, *c, args, &used, &rc);
  if (!id) return rc;
  int64_t unused_timeout = 0;
  for (std::size_t i = used; i < args.size(); ++i) {
    // Accepted and ignored, as before the verbs had their own parsers.
    if (args[i] == "--timeout" && i + 1 < args.size() && parse_seconds(args[i + 1], unused_timeout))
      ++i;
    else return usage_error(v, "unknown argument " + args[i]);
  }
  auto ended = c->terminate(*id);
  if (!ended) return fail(ended.error());
  std::printf("%s %s\n", ended->id.c_str(), wire::to_string(ended->state));
  return exit_ok;
}

}  // namespace

}  // namespace corral::cli
