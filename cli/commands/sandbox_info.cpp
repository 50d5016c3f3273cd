// corral sandbox info: one sandbox's state.
#include "cli/commands/command.hpp"
#include "cli/commands/sandbox_view.hpp"

namespace corral::cli {

namespace {

int run(context& ctx, const args_t& args);

}  // namespace

extern const verb sandbox_info_verb{
    "sandbox info",
    "(ID | --name NAME) [--json]",
    "Show one sandbox: status, node, age, readiness, return code, tags.",
    "options:\n"
    "  --name NAME  the tenant's live sandbox of that name\n"
    "  --json       one JSON object (docs/cli.md): id, name, tenant, status, node, image,\n"
    "               created_at_ms, started_at_ms, ended_at_ms, timeout_ms, ready,\n"
    "               returncode (null while it has none), message, tags ({K: V})\n",
    run};

namespace {

int run(context& ctx, const args_t& args) {
  const verb& v = sandbox_info_verb;
  client::session* c = ctx.connect();
  if (c == nullptr) return exit_failed;
  std::size_t used = 0;
  int rc = exit_ok;
  auto id = resolve_sandbox(v, *c, args, &used, &rc);
  if (!id) return rc;
  bool json = false;
  int64_t unused_timeout = 0;
  std::string val;
  for (std::size_t i = used; i < args.size(); ++i) {
    if (args[i] == "--json") json = true;
    // Accepted and ignored, as before the verbs had their own parsers.
    else if (args[i] == "--timeout" && i + 1 < args.size() && parse_seconds(args[i + 1], unused_timeout))
      ++i;
    else return usage_error(v, "unknown argument " + args[i]);
  }
  auto info = c->info(*id);
  if (!info) return fail(info.error());
  if (json) print_json(sandbox_json(*info));
  else print_sandbox_info(*info);
  return exit_ok;
}

}  // namespace

}  // namespace corral::cli
