#include "actors/validate.hpp"

#include "schemas/ids.hpp"

namespace corral {

namespace {
field_error invalid(std::string field, std::string why) {
  return {wire::ErrorCode::invalid_argument, std::move(field), std::move(why)};
}
field_error too_large(std::string field, std::string why) {
  return {wire::ErrorCode::too_large, std::move(field), std::move(why)};
}
}  // namespace

field_error check_command(const node_config& cfg, const string_vector* argv,
                          const std::string& field, bool required) {
  if (argv == nullptr || argv->size() == 0)
    return required ? invalid(field, "the command is empty") : field_error{};
  if (argv->size() > cfg.max_argv_count) return too_large(field, "too many arguments");
  std::size_t total = 0;
  for (const auto* a : *argv) {
    if (a == nullptr) return invalid(field, "a null argument");
    total += a->size() + 1;
  }
  if (total > cfg.max_argv_bytes)
    return too_large(field, "over max_argv_bytes (" + std::to_string(cfg.max_argv_bytes) + ")");
  if (wire::str(argv->Get(0)).empty()) return invalid(field, "the program name is empty");
  return {};
}

field_error check_env(const node_config& cfg, const pair_vector* env) {
  if (env == nullptr) return {};
  if (env->size() > cfg.max_env_count) return too_large("env", "too many variables");
  std::size_t total = 0;
  for (const auto* kv : *env) {
    const auto k = wire::str(kv->key());
    if (k.empty() || k.find('=') != std::string_view::npos || k.find('\0') != std::string_view::npos)
      return invalid("env", "invalid variable name");
    total += k.size() + wire::str(kv->value()).size() + 2;
  }
  if (total > cfg.max_env_bytes)
    return too_large("env", "over max_env_bytes (" + std::to_string(cfg.max_env_bytes) + ")");
  return {};
}

field_error check_tags(const node_config& cfg, const pair_vector* tags) {
  if (tags == nullptr) return {};
  if (tags->size() > cfg.max_tags) return invalid("tags", "too many tags");
  for (const auto* kv : *tags) {
    const auto k = wire::str(kv->key());
    const auto v = wire::str(kv->value());
    if (k.empty() || k.size() > cfg.max_tag_bytes || v.size() > cfg.max_tag_bytes)
      return invalid("tags", "keys must be 1.." + std::to_string(cfg.max_tag_bytes) +
                                 " bytes and values at most that");
  }
  return {};
}

field_error check_abs_path(const node_config& cfg, std::string_view path,
                           const std::string& field) {
  if (!path.empty() && (path.front() != '/' || path.size() > cfg.max_path_bytes ||
                        path.find('\0') != std::string_view::npos))
    return invalid(field, "must be an absolute path");
  return {};
}

field_error check_create(const node_config& cfg, const wire::CreateSandbox& request) {
  const auto* msg = &request;
  auto fail = [](wire::ErrorCode code, std::string field, std::string why) {
    return field_error{code, std::move(field), std::move(why)};
  };
  const std::string name(wire::str(msg->name()));
  if (!name.empty() && !wire::valid_token(name))
    return fail(wire::ErrorCode::invalid_argument, "name",
                "names are 1..64 characters of [A-Za-z0-9_-]");
  const std::string image(wire::str(msg->image()));
  if (!image.empty() && image != "host")
    return fail(wire::ErrorCode::invalid_argument, "image", "unknown image (only \"host\")");
  if (msg->timeout_ms() < 0 || msg->timeout_ms() > cfg.max_timeout_ms)
    return fail(wire::ErrorCode::invalid_argument, "timeout_ms",
                "must be 0 (default) or up to " + std::to_string(cfg.max_timeout_ms));
  if (auto e = check_command(cfg, msg->entrypoint(), "entrypoint", false)) return fail(e.code, e.field, e.why);
  if (auto e = check_env(cfg, msg->env())) return fail(e.code, e.field, e.why);
  const std::string workdir(wire::str(msg->workdir()));
  if (auto e = check_abs_path(cfg, workdir, "workdir")) return fail(e.code, e.field, e.why);
  if (msg->cpu_millis() > cfg.max_cpu_millis)
    return fail(wire::ErrorCode::resource_exhausted, "cpu_millis", "over this node's maximum");
  if (msg->cpu_millis() != 0 && msg->cpu_millis() < cfg.min_cpu_millis)
    return fail(wire::ErrorCode::invalid_argument, "cpu_millis",
                "must be 0 (default) or at least " + std::to_string(cfg.min_cpu_millis) +
                    " (millicores; 1000 = one core)");
  if (msg->memory_mib() > cfg.max_memory_mib)
    return fail(wire::ErrorCode::resource_exhausted, "memory_mib", "over this node's maximum");
  if (msg->idle_timeout_ms() < 0 || msg->idle_timeout_ms() > cfg.max_timeout_ms)
    return fail(wire::ErrorCode::invalid_argument, "idle_timeout_ms",
                "must be 0 (none) or up to " + std::to_string(cfg.max_timeout_ms));
  {
    const uint32_t cpu_limit = msg->cpu_millis() == 0 ? cfg.default_cpu_millis : msg->cpu_millis();
    const uint32_t mem_limit = msg->memory_mib() == 0 ? cfg.default_memory_mib : msg->memory_mib();
    if (msg->cpu_request_millis() > cpu_limit)
      return fail(wire::ErrorCode::invalid_argument, "cpu_request_millis",
                  "the request is over the limit (cpu_millis " + std::to_string(cpu_limit) + ")");
    if (msg->memory_request_mib() > mem_limit)
      return fail(wire::ErrorCode::invalid_argument, "memory_request_mib",
                  "the request is over the limit (memory_mib " + std::to_string(mem_limit) + ")");
  }
  if (auto e = check_command(cfg, msg->probe_command(), "probe_command", false))
    return fail(e.code, e.field, e.why);
  if (msg->probe_tcp_port() < 0 || msg->probe_tcp_port() > 65535)
    return fail(wire::ErrorCode::invalid_argument, "probe_tcp_port", "must be 0..65535");
  if (msg->probe_interval_ms() < 0 ||
      (msg->probe_interval_ms() > 0 && msg->probe_interval_ms() < cfg.min_probe_interval_ms) ||
      msg->probe_interval_ms() > 60'000)
    return fail(wire::ErrorCode::invalid_argument, "probe_interval_ms",
                "must be 0 (default) or " + std::to_string(cfg.min_probe_interval_ms) +
                    "..60000");
  if (auto e = check_tags(cfg, msg->tags())) return fail(e.code, e.field, e.why);
  return {};
}

storage::sandbox_record create_record(const node_config& cfg, const std::string& tenant,
                                      const wire::CreateSandbox& request) {
  const auto* msg = &request;
  const std::string name(wire::str(msg->name()));
  const std::string image(wire::str(msg->image()));
  const std::string workdir(wire::str(msg->workdir()));
  storage::sandbox_record rec;
  rec.tenant = tenant;
  rec.name = name;
  rec.image = image.empty() ? "host" : image;
  rec.state = wire::SandboxState::pending;
  rec.node = cfg.node_id;
  rec.timeout_ms = msg->timeout_ms() == 0 ? cfg.default_timeout_ms : msg->timeout_ms();
  if (const auto* tags = msg->tags())
    for (const auto* kv : *tags)
      rec.tags.emplace_back(std::string(wire::str(kv->key())), std::string(wire::str(kv->value())));
  if (const auto* entry = msg->entrypoint())
    for (const auto* a : *entry) rec.entrypoint.emplace_back(wire::str(a));
  if (const auto* env = msg->env())
    for (const auto* kv : *env)
      rec.env.emplace_back(std::string(wire::str(kv->key())), std::string(wire::str(kv->value())));
  rec.workdir = workdir;
  rec.cpu_millis = msg->cpu_millis() == 0 ? cfg.default_cpu_millis : msg->cpu_millis();
  rec.memory_mib = msg->memory_mib() == 0 ? cfg.default_memory_mib : msg->memory_mib();
  rec.request_id = std::string(wire::str(msg->request_id()));
  rec.idle_timeout_ms = msg->idle_timeout_ms();
  rec.cpu_request_millis = msg->cpu_request_millis() == 0 ? cfg.default_cpu_request_millis
                                                          : msg->cpu_request_millis();
  rec.memory_request_mib = msg->memory_request_mib() == 0 ? cfg.default_memory_request_mib
                                                          : msg->memory_request_mib();
  if (const auto* probe = msg->probe_command())
    for (const auto* a : *probe) rec.probe_command.emplace_back(wire::str(a));
  rec.probe_tcp_port = msg->probe_tcp_port();
  rec.probe_interval_ms = msg->probe_interval_ms() == 0 ? cfg.default_probe_interval_ms
                                                        : msg->probe_interval_ms();
  rec.ready = rec.probe_command.empty() && rec.probe_tcp_port == 0;
  return rec;
}

field_error check_exec(const node_config& cfg, const wire::ExecRequest& req) {
  if (auto e = check_command(cfg, req.argv(), "argv", true)) return e;
  if (auto e = check_env(cfg, req.env())) return e;
  if (auto e = check_abs_path(cfg, wire::str(req.workdir()), "workdir")) return e;
  if (req.timeout_ms() < 0 || req.timeout_ms() > cfg.max_timeout_ms)
    return {wire::ErrorCode::invalid_argument, "timeout_ms", "out of range"};
  const auto eid = wire::str(req.exec_id());
  if (!eid.empty() && !wire::valid_token(eid))
    return {wire::ErrorCode::invalid_argument, "exec_id", "1..64 characters of [A-Za-z0-9_-]"};
  return {};
}

storage::string_pairs merged_env(const storage::string_pairs& sandbox_env,
                                 const storage::string_pairs& exec_env) {
  storage::string_pairs out;
  auto put = [&](const std::string& k, const std::string& v) {
    for (auto& [ok, ov] : out)
      if (ok == k) {
        ov = v;
        return;
      }
    out.emplace_back(k, v);
  };
  for (const auto& [k, v] : sandbox_env) put(k, v);
  for (const auto& [k, v] : exec_env) put(k, v);
  bool has_path = false, has_home = false;
  for (const auto& [k, v] : out) {
    has_path |= k == "PATH";
    has_home |= k == "HOME";
  }
  if (!has_path) out.emplace_back("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!has_home) out.emplace_back("HOME", "/root");
  return out;
}

pty_options read_exec(const wire::ExecRequest& msg, const storage::sandbox_record& sandbox,
                      storage::process_record& proc) {
  for (const auto* a : *msg.argv()) proc.argv.emplace_back(wire::str(a));
  storage::string_pairs exec_env;
  if (const auto* env = msg.env())
    for (const auto* kv : *env)
      exec_env.emplace_back(std::string(wire::str(kv->key())), std::string(wire::str(kv->value())));
  proc.env = merged_env(sandbox.env, exec_env);
  proc.workdir = std::string(wire::str(msg.workdir()));
  if (proc.workdir.empty()) proc.workdir = sandbox.workdir.empty() ? "/" : sandbox.workdir;
  proc.timeout_ms = msg.timeout_ms();
  proc.stdin_open = msg.stdin();
  return pty_options{msg.pty(), msg.rows(), msg.cols()};
}

bool list_matches(const storage::sandbox_record& r, const wire::ListSandboxes* filter) {
  if (filter == nullptr) return !wire::is_terminal(r.state);
  if (!filter->include_ended() && wire::is_terminal(r.state)) return false;
  if (const auto n = wire::str(filter->name()); !n.empty() && n != r.name) return false;
  if (const auto* tags = filter->tags()) {
    for (const auto* kv : *tags) {
      const auto k = wire::str(kv->key());
      const auto v = wire::str(kv->value());
      bool found = false;
      for (const auto& [tk, tv] : r.tags) found |= (tk == k && tv == v);
      if (!found) return false;
    }
  }
  return true;
}

field_error check_stdin_write(const node_config& cfg, const wire::StdinWrite& msg) {
  const std::size_t n = msg.data() == nullptr ? 0 : msg.data()->size();
  if (n > cfg.max_stdin_write_bytes)
    return {wire::ErrorCode::too_large, "data", "stdin write over max_stdin_write_bytes"};
  return {};
}

field_error check_signal(const wire::SignalRequest& msg) {
  const int sig = msg.signal();
  if (sig <= 0 || sig >= 65) return {wire::ErrorCode::invalid_argument, "signal", "signal out of range"};
  return {};
}

std::optional<std::pair<uint64_t, init_process_event>> process_event_of(
    const wire::InitEvent& event) {
  const auto* ev = &event;
  // A union's type without its table verifies (FlatBuffers allows an absent value): such an
  // event says nothing and is dropped.
  switch (ev->event_type()) {
    case wire::Event::Started: {
      const auto* e = ev->event_as_Started();
      if (e == nullptr) return std::nullopt;
      init_process_event pe;
      pe.what = init_process_event::kind::started;
      pe.pid = e->pid();
      return std::make_pair(e->id(), std::move(pe));
    }
    case wire::Event::Output: {
      const auto* e = ev->event_as_Output();
      if (e == nullptr) return std::nullopt;
      init_process_event pe;
      pe.what = init_process_event::kind::output;
      pe.stream = e->stream();
      if (e->data() != nullptr) pe.data.assign(e->data()->begin(), e->data()->end());
      return std::make_pair(e->id(), std::move(pe));
    }
    case wire::Event::Exited: {
      const auto* e = ev->event_as_Exited();
      if (e == nullptr) return std::nullopt;
      init_process_event pe;
      pe.what = init_process_event::kind::exited;
      pe.exit_code = e->exit_code();
      pe.signal = e->signal();
      return std::make_pair(e->id(), std::move(pe));
    }
    case wire::Event::SpawnFailed: {
      const auto* e = ev->event_as_SpawnFailed();
      if (e == nullptr) return std::nullopt;
      init_process_event pe;
      pe.what = init_process_event::kind::spawn_failed;
      pe.error_number = e->error_number();
      pe.message = std::string(wire::str(e->message()));
      return std::make_pair(e->id(), std::move(pe));
    }
    case wire::Event::StdinWritten: {
      const auto* e = ev->event_as_StdinWritten();
      if (e == nullptr) return std::nullopt;
      init_process_event pe;
      pe.what = init_process_event::kind::stdin_written;
      pe.stdin_total = e->total();
      return std::make_pair(e->id(), std::move(pe));
    }
    default:
      return std::nullopt;
  }
}

}  // namespace corral
