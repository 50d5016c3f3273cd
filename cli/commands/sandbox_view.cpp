#include "cli/commands/sandbox_view.hpp"

#include <cstdio>

namespace corral::cli {

void print_sandbox_header() {
  std::printf("%-25s  %-16s  %-11s  %7s  %s\n", "ID", "NAME", "STATUS", "AGE", "NODE");
}

void print_sandbox_line(const sandbox_view& v, int64_t now_ms) {
  std::printf("%-25s  %-16s  %-11s  %7s  %s\n", v.id.c_str(), v.name.empty() ? "-" : v.name.c_str(),
              wire::to_string(v.state), format_age(now_ms - v.created_at_ms).c_str(),
              v.node.c_str());
}

void print_sandbox_info(const sandbox_view& v) {
  std::printf("id:          %s\nname:        %s\nstatus:      %s\nnode:        %s\nimage:       %s\n",
              v.id.c_str(), v.name.c_str(), wire::to_string(v.state), v.node.c_str(),
              v.image.c_str());
  std::printf("age:         %s\ntimeout:     %llds\n", format_age(now_ms() - v.created_at_ms).c_str(),
              static_cast<long long>(v.timeout_ms / 1000));
  std::printf("ready:       %s\n", v.ready ? "yes" : "no");
  if (v.has_return_code) std::printf("returncode:  %d\n", v.return_code);
  if (!v.message.empty()) std::printf("message:     %s\n", v.message.c_str());
  for (const auto& [k, val] : v.tags) std::printf("tag:         %s=%s\n", k.c_str(), val.c_str());
}

nlohmann::ordered_json sandbox_json(const sandbox_view& v) {
  nlohmann::ordered_json j;
  j["id"] = v.id;
  j["name"] = v.name;
  j["tenant"] = v.tenant;
  j["status"] = wire::to_string(v.state);
  j["node"] = v.node;
  j["image"] = v.image;
  j["created_at_ms"] = v.created_at_ms;
  j["started_at_ms"] = v.started_at_ms;
  j["ended_at_ms"] = v.ended_at_ms;
  j["timeout_ms"] = v.timeout_ms;
  j["ready"] = v.ready;
  j["returncode"] = v.has_return_code ? nlohmann::ordered_json(v.return_code) : nullptr;
  j["message"] = v.message;
  nlohmann::ordered_json tags = nlohmann::ordered_json::object();
  for (const auto& [k, val] : v.tags) tags[k] = val;
  j["tags"] = std::move(tags);
  return j;
}

std::optional<std::string> resolve_sandbox(const verb& v, client::session& c, const args_t& args,
                                           std::size_t* used, int* rc) {
  if (args.empty() || (args[0] != "--name" && !args[0].empty() && args[0][0] == '-')) {
    *rc = usage_error(v, "missing sandbox id (or --name NAME)");
    return std::nullopt;
  }
  if (args[0] != "--name") {
    *used = 1;
    return args[0];
  }
  if (args.size() < 2) {
    *rc = usage_error(v, "--name needs a name");
    return std::nullopt;
  }
  auto found = c.list(false, args[1], {});
  if (!found) {
    *rc = fail(found.error());
    return std::nullopt;
  }
  if (found->empty()) {
    *rc = fail(failure(wire::ErrorCode::not_found, "no live sandbox named " + args[1], "name"));
    return std::nullopt;
  }
  *used = 2;
  return found->front().id;
}

std::optional<named_sandbox> open_sandbox(const verb& v, context& ctx, const args_t& args,
                                          int* rc) {
  named_sandbox sb;
  sb.session = ctx.connect();
  if (sb.session == nullptr) {
    *rc = exit_failed;
    return std::nullopt;
  }
  auto id = resolve_sandbox(v, *sb.session, args, &sb.used, rc);
  if (!id) return std::nullopt;
  sb.id = std::move(*id);
  return sb;
}

bool ignored_timeout(const args_t& args, std::size_t& i) {
  int64_t unused = 0;
  if (args[i] != "--timeout" || i + 1 >= args.size() || !parse_seconds(args[i + 1], unused))
    return false;
  ++i;
  return true;
}

}  // namespace corral::cli
