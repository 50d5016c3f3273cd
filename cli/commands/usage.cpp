// corral usage: metered use of the tenant's sandboxes, and the tenant's total.
#include <cstdio>

#include "cli/commands/command.hpp"

namespace corral::cli {

namespace {

int run(context& ctx, const args_t& args);

nlohmann::ordered_json amount_json(const usage_amount& a) {
  nlohmann::ordered_json j;
  j["cpu_core_seconds"] = a.cpu_core_seconds;
  j["gib_seconds"] = a.gib_seconds;
  j["cost"] = a.cost;
  return j;
}

}  // namespace

extern const verb usage_verb{
    "usage",
    "[SANDBOX] [--json]",
    "CPU core-seconds, GiB-seconds and cost billed, per sandbox and in total.",
    "Billed on the larger of what was reserved and what was used; the total is the tenant's.\n"
    "\n"
    "options:\n"
    "  SANDBOX  only that sandbox\n"
    "  --json   one JSON document (docs/cli.md): {\"sandboxes\": [{sandbox_id, node,\n"
    "           cpu_core_seconds, gib_seconds, cost}...], \"total\": {cpu_core_seconds,\n"
    "           gib_seconds, cost}}\n",
    run};

namespace {

int run(context& ctx, const args_t& args) {
  const verb& v = usage_verb;
  bool json = false;
  std::string sandbox;
  arg_reader r(args);
  while (r.next()) {
    if (r.is("--json")) json = true;
    else if (r.positional() && sandbox.empty()) sandbox = r.arg();
    else if (r.positional()) return usage_error(v, "at most one sandbox id");
    else return usage_error(v, "unknown argument " + r.arg());
  }
  client::session* c = ctx.connect();
  if (c == nullptr) return exit_failed;
  auto report = c->usage(sandbox);
  if (!report) return fail(report.error());
  const auto& t = report->total;
  if (json) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& s : report->sandboxes) {
      nlohmann::ordered_json j;
      j["sandbox_id"] = s.sandbox_id;
      j["node"] = s.node;
      const auto amount = amount_json(s.usage);
      for (const auto& [k, val] : amount.items()) j[k] = val;
      list.push_back(std::move(j));
    }
    nlohmann::ordered_json doc;
    doc["sandboxes"] = std::move(list);
    doc["total"] = amount_json(t);
    print_json(doc);
    return exit_ok;
  }
  std::printf("%-25s  %14s  %14s  %12s  %s\n", "SANDBOX", "CPU_CORE_S", "GIB_S", "COST", "NODE");
  for (const auto& s : report->sandboxes)
    std::printf("%-25s  %14.3f  %14.3f  %12.6f  %s\n", s.sandbox_id.c_str(),
                s.usage.cpu_core_seconds, s.usage.gib_seconds, s.usage.cost, s.node.c_str());
  std::printf("%-25s  %14.3f  %14.3f  %12.6f\n", "TOTAL (tenant)", t.cpu_core_seconds,
              t.gib_seconds, t.cost);
  return exit_ok;
}

}  // namespace

}  // namespace corral::cli
