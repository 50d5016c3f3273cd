// corral sandbox create: a sandbox that waits for execs, or runs an entrypoint.
#include <cstdio>

#include "cli/commands/command.hpp"

namespace corral::cli {

namespace {

int run(context& ctx, const args_t& args);

}  // namespace

extern const verb sandbox_create_verb{
    "sandbox create",
    "[--name N] [--timeout S] [--idle-timeout S] [--cpu MILLIS] [--memory MIB]\n"
    "                             [--cpu-request MILLIS] [--memory-request MIB] [--tag K=V]...\n"
    "                             [--env K=V]... [--workdir DIR] [--probe-cmd CMD | --probe-port N]\n"
    "                             [--probe-interval S] [-- ENTRYPOINT...]",
    "Create a sandbox; prints its id.",
    "options:\n"
    "  --name N              a name, unique among the tenant's live sandboxes\n"
    "  --timeout S           its lifetime in seconds (0: the executor's default)\n"
    "  --idle-timeout S      end it after S seconds without an exec\n"
    "  --cpu MILLIS          CPU limit, in thousandths of a core\n"
    "  --memory MIB          memory limit\n"
    "  --cpu-request MILLIS  CPU reserved (and billed) at least\n"
    "  --memory-request MIB  memory reserved (and billed) at least\n"
    "  --tag K=V             a tag (repeatable): `sandbox ls --tag` finds it\n"
    "  --env K=V             an environment variable of every exec (repeatable)\n"
    "  --workdir DIR         the working directory of every exec\n"
    "  --probe-cmd CMD       readiness: CMD (run with sh -c) exits 0\n"
    "  --probe-port N        readiness: TCP port N accepts\n"
    "  --probe-interval S    how often the probe runs\n"
    "  -- ENTRYPOINT...      a command the sandbox runs from its start (its end ends the\n"
    "                        sandbox; `corral sandbox logs` shows its output)\n",
    run};

namespace {

int run(context& ctx, const args_t& args) {
  const verb& v = sandbox_create_verb;
  create_options o;
  arg_reader r(args);
  std::string val;
  auto seconds = [&](int64_t& ms) { return r.value(val) && parse_seconds(val, ms); };
  auto count = [&](uint32_t& n) { return r.value(val) && parse_uint(val, n); };
  auto pair = [&](std::vector<std::pair<std::string, std::string>>& to) {
    std::pair<std::string, std::string> p;
    if (!r.value(val) || !parse_pair(val, p)) return false;
    to.push_back(p);
    return true;
  };
  while (r.next()) {
    const auto& a = r.arg();
    bool ok = true;
    if (a == "--name") ok = r.value(o.name);
    else if (a == "--timeout") ok = seconds(o.timeout_ms);
    else if (a == "--idle-timeout") ok = seconds(o.idle_timeout_ms);
    else if (a == "--probe-interval") ok = seconds(o.probe_interval_ms);
    else if (a == "--cpu") ok = count(o.cpu_millis);
    else if (a == "--memory") ok = count(o.memory_mib);
    else if (a == "--cpu-request") ok = count(o.cpu_request_millis);
    else if (a == "--memory-request") ok = count(o.memory_request_mib);
    else if (a == "--workdir") ok = r.value(o.workdir);
    else if (a == "--tag") ok = pair(o.tags);
    else if (a == "--env") ok = pair(o.env);
    else if (a == "--probe-cmd") {
      ok = r.value(val);
      o.probe_command = {"sh", "-c", val};
    } else if (a == "--probe-port") {
      constexpr uint32_t max_port = 65535;
      uint32_t port = 0;
      ok = count(port) && port <= max_port;
      o.probe_tcp_port = static_cast<int32_t>(port);
    } else {
      return usage_error(v, "unknown argument " + a);
    }
    if (!ok) return usage_error(v, "bad " + a);
  }
  o.entrypoint = r.rest();
  client::session* c = ctx.connect();
  if (c == nullptr) return exit_failed;
  auto created = c->create(o);
  if (!created) return fail(created.error());
  std::printf("%s\n", created->id.c_str());
  return exit_ok;
}

}  // namespace

}  // namespace corral::cli
