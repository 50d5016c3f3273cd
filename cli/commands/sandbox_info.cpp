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
  int rc = exit_ok;
  auto sb = open_sandbox(v, ctx, args, &rc);
  if (!sb) return rc;
  bool json = false;
  for (std::size_t i = sb->used; i < args.size(); ++i) {
    if (args[i] == "--json") json = true;
    else if (!ignored_timeout(args, i)) return usage_error(v, "unknown argument " + args[i]);
  }
  auto info = sb->session->info(sb->id);
  if (!info) return fail(info.error());
  if (json) print_json(sandbox_json(*info));
  else print_sandbox_info(*info);
  return exit_ok;
}

}  // namespace

}  // namespace corral::cli
