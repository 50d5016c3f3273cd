// corral sandbox wait: until a sandbox ends, or (--ready) until its readiness probe passes.
#include "cli/commands/command.hpp"
#include "cli/commands/sandbox_view.hpp"

namespace corral::cli {

namespace {

constexpr int64_t default_wait_ms = 60'000;

int run(context& ctx, const args_t& args);

}  // namespace

extern const verb sandbox_wait_verb{
    "sandbox wait",
    "(ID | --name NAME) [--timeout S] [--ready] [--json]",
    "Wait until a sandbox ends (or, with --ready, is ready); then show it.",
    "options:\n"
    "  --name NAME  the tenant's live sandbox of that name\n"
    "  --timeout S  wait at most S seconds (default 60); then fail with deadline_exceeded\n"
    "  --ready      until its readiness probe passes, not until its end\n"
    "  --json       the sandbox as `corral sandbox info --json` prints it\n",
    run};

namespace {

int run(context& ctx, const args_t& args) {
  const verb& v = sandbox_wait_verb;
  int rc = exit_ok;
  auto sb = open_sandbox(v, ctx, args, &rc);
  if (!sb) return rc;
  int64_t timeout = default_wait_ms;
  bool until_ready = false, json = false;
  for (std::size_t i = sb->used; i < args.size(); ++i) {
    if (args[i] == "--ready") until_ready = true;
    else if (args[i] == "--json") json = true;
    else if (args[i] == "--timeout" && i + 1 < args.size()) {
      if (!parse_seconds(args[++i], timeout)) return usage_error(v, "bad --timeout");
    } else {
      return usage_error(v, "unknown argument " + args[i]);
    }
  }
  auto waited = sb->session->wait(sb->id, timeout, until_ready);
  if (!waited) return fail(waited.error());
  if (json) print_json(sandbox_json(*waited));
  else print_sandbox_info(*waited);
  return exit_ok;
}

}  // namespace

}  // namespace corral::cli
