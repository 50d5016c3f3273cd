// corral sandbox ls: the tenant's sandboxes.
#include "cli/commands/command.hpp"
#include "cli/commands/sandbox_view.hpp"

namespace corral::cli {

namespace {

int run(context& ctx, const args_t& args);

}  // namespace

extern const verb sandbox_ls_verb{
    "sandbox ls",
    "[--all] [--name N] [--tag K=V]... [--json]",
    "List the tenant's live sandboxes (with --all, ended ones too), oldest first.",
    "options:\n"
    "  -a, --all    ended sandboxes too\n"
    "  --name N     only the one of that name\n"
    "  --tag K=V    only those with this tag (repeatable: all of them)\n"
    "  --json       one JSON document: {\"sandboxes\": [SANDBOX...]}, each SANDBOX as\n"
    "               `corral sandbox info --json` prints it (docs/cli.md)\n"
    "\n"
    "columns: ID, NAME, STATUS, AGE, NODE.\n",
    run};

namespace {

int run(context& ctx, const args_t& args) {
  const verb& v = sandbox_ls_verb;
  bool all = false, json = false;
  std::string name, val;
  std::vector<std::pair<std::string, std::string>> tags;
  arg_reader r(args);
  while (r.next()) {
    if (r.is("--all") || r.is("-a")) {
      all = true;
    } else if (r.is("--json")) {
      json = true;
    } else if (r.is("--name")) {
      if (!r.value(name)) return usage_error(v, "--name needs a name");
    } else if (r.is("--tag")) {
      std::pair<std::string, std::string> p;
      if (!r.value(val) || !parse_pair(val, p)) return usage_error(v, "bad --tag (K=V)");
      tags.push_back(p);
    } else {
      return usage_error(v, "unknown argument " + r.arg());
    }
  }
  if (r.saw_separator()) return usage_error(v, "unknown argument --");
  client::session* c = ctx.connect();
  if (c == nullptr) return exit_failed;
  auto listed = c->list(all, name, tags);
  if (!listed) return fail(listed.error());
  if (json) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& s : *listed) list.push_back(sandbox_json(s));
    nlohmann::ordered_json doc;
    doc["sandboxes"] = std::move(list);
    print_json(doc);
    return exit_ok;
  }
  print_sandbox_header();
  const auto now = now_ms();
  for (const auto& s : *listed) print_sandbox_line(s, now);
  return exit_ok;
}

}  // namespace

}  // namespace corral::cli
