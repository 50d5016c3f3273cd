// corral sandbox tags: read, or replace, a sandbox's tags.
#include <cstdio>
#include <optional>

#include "cli/commands/command.hpp"

namespace corral::cli {

namespace {

int run(context& ctx, const args_t& args);

}  // namespace

extern const verb sandbox_tags_verb{
    "sandbox tags",
    "ID [K=V... | --clear]",
    "Print a sandbox's tags, or replace them (K=V..., or --clear).",
    "Prints the tags, K=V a line; given K=V pairs, or --clear, replaces them all first.\n",
    run};

namespace {

int run(context& ctx, const args_t& args) {
  const verb& v = sandbox_tags_verb;
  if (args.empty()) return usage_error(v, "missing sandbox id");
  std::optional<std::vector<std::pair<std::string, std::string>>> set;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (!set) set.emplace();
    if (args[i] == "--clear") continue;
    std::pair<std::string, std::string> p;
    if (!parse_pair(args[i], p)) return usage_error(v, "bad tag " + args[i] + " (K=V)");
    set->push_back(p);
  }
  client::session* c = ctx.connect();
  if (c == nullptr) return exit_failed;
  auto r = c->tags(args[0], set);
  if (!r) return fail(r.error());
  for (const auto& [k, val] : r->tags) std::printf("%s=%s\n", k.c_str(), val.c_str());
  return exit_ok;
}

}  // namespace

}  // namespace corral::cli
