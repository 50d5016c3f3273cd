#include "schemas/subjects.hpp"

namespace corral::wire::subjects {

namespace {
std::string join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) {
    if (!out.empty()) out += '.';
    out.append(p.data(), p.size());
  }
  return out;
}
}  // namespace

std::string create(std::string_view tenant, std::string_view pool) {
  return join({prefix, tenant, "pool", pool, "create"});
}
std::string create_any_tenant(std::string_view pool) {
  return join({prefix, "*", "pool", pool, "create"});
}
std::string create_queue_group(std::string_view pool) { return join({"corral.pool", pool}); }
std::string sandbox_op(std::string_view tenant, std::string_view sandbox, std::string_view op) {
  return join({prefix, tenant, "sbx", sandbox, op});
}
std::string sandbox_ops(std::string_view tenant, std::string_view sandbox) {
  return join({prefix, tenant, "sbx", sandbox, "*"});
}
std::string sandbox_fs_ops(std::string_view tenant, std::string_view sandbox) {
  return join({prefix, tenant, "sbx", sandbox, "fs", "*"});
}
std::string output(std::string_view tenant, std::string_view sandbox, std::string_view exec) {
  return join({prefix, tenant, "sbx", sandbox, "out", exec});
}
std::string list(std::string_view tenant) { return join({prefix, tenant, "list"}); }
std::string list_any_tenant() { return join({prefix, "*", "list"}); }
std::string usage(std::string_view tenant) { return join({prefix, tenant, "usage"}); }
std::string usage_any_tenant() { return join({prefix, "*", "usage"}); }
std::string node_create(std::string_view tenant, std::string_view node) {
  return join({prefix, tenant, "node", node, "create"});
}
std::string node_create_any_tenant(std::string_view node) {
  return join({prefix, "*", "node", node, "create"});
}
std::string run(std::string_view tenant, std::string_view pool) {
  return join({prefix, tenant, "pool", pool, "run"});
}
std::string run_any_tenant(std::string_view pool) { return join({prefix, "*", "pool", pool, "run"}); }
std::string run_queue_group(std::string_view pool) { return join({"corral.pool", pool, "run"}); }
std::string jobs(std::string_view tenant, std::string_view pool) {
  return join({prefix, tenant, "jobs", pool});
}
std::string jobs_any_tenant(std::string_view pool) { return join({prefix, "*", "jobs", pool}); }
namespace {
constexpr std::string_view stored_prefix = "corral.internal.stored";
}  // namespace
std::string jobs_stored_any_tenant(std::string_view pool) {
  return join({stored_prefix, "*", "jobs", pool});
}
std::string jobs_stored_destination(std::string_view tenant) {
  return join({stored_prefix, tenant, "jobs", "{{wildcard(1)}}"});
}
std::string_view tenant_of_jobs_stored(std::string_view subject) {
  const std::string head = std::string(stored_prefix) + ".";
  if (subject.substr(0, head.size()) != head) return {};
  auto rest = subject.substr(head.size());
  auto dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  return rest.substr(0, dot);
}
std::string results(std::string_view tenant, std::string_view batch) {
  return join({prefix, tenant, "results", batch});
}
std::string jobs_stream(std::string_view tenant) {
  return std::string(jobs_stream_prefix) + std::string(tenant);
}
std::string results_stream(std::string_view tenant) {
  return std::string(results_stream_prefix) + std::string(tenant);
}
std::string jobs_stream_subjects(std::string_view tenant) {
  return join({prefix, tenant, "jobs", "*"});
}
std::string results_stream_subjects(std::string_view tenant) {
  return join({prefix, tenant, "results", "*"});
}
std::string_view tenant_of_jobs_stream(std::string_view stream) {
  if (stream.size() <= jobs_stream_prefix.size() ||
      stream.substr(0, jobs_stream_prefix.size()) != jobs_stream_prefix)
    return {};
  return stream.substr(jobs_stream_prefix.size());
}
std::string jobs_setup(std::string_view tenant) { return join({prefix, tenant, "setup", "jobs"}); }
std::string jobs_setup_any_tenant() { return join({prefix, "*", "setup", "jobs"}); }
std::string results_read(std::string_view tenant) { return join({prefix, tenant, "read", "results"}); }
std::string results_read_any_tenant() { return join({prefix, "*", "read", "results"}); }
std::string tenant_inbox_prefix(std::string_view tenant) { return join({"_INBOX", tenant}); }
bool valid_reply(std::string_view reply) {
  const bool inbox = reply.size() > 7 && reply.substr(0, 6) == "_INBOX";
  const bool mapped = reply.size() > 4 && reply.substr(0, 4) == "_R_.";
  return (inbox || mapped) && reply.find_first_of("*> \t\r\n") == std::string_view::npos;
}
bool reserved_tenant(std::string_view tenant) { return tenant == "node"; }
std::string heartbeat(std::string_view node) { return join({prefix, "node", node, "heartbeat"}); }

std::string_view tenant_of(std::string_view subject) {
  const std::string_view head = "corral.v1.";
  if (subject.substr(0, head.size()) != head) return {};
  auto rest = subject.substr(head.size());
  auto dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  return rest.substr(0, dot);
}

std::string_view last_token(std::string_view subject) {
  auto dot = subject.rfind('.');
  return dot == std::string_view::npos ? subject : subject.substr(dot + 1);
}

}  // namespace corral::wire::subjects
