// The sandbox actor's execs: starting one (quotas, store, spawn), the verbs for a running exec,
// and an exec's end.
#include <algorithm>
#include <csignal>

#include "actors/sandbox_state.hpp"
#include "actors/validate.hpp"
#include "schemas/ids.hpp"
#include "schemas/exit_codes.hpp"

namespace corral::sandbox_detail {

namespace {

// The exec rate quota: one token per new exec, refilled at execs_per_second up to exec_burst.
bool take_exec_token(sandbox_state& st) {
  if (st.ctx->quotas == nullptr) return true;
  const tenant_quota q = st.ctx->quotas->quota_of(st.rec.tenant);
  const int64_t now = st.ctx->clk->now_ms();
  if (st.exec_tokens < 0) {
    st.exec_tokens = q.exec_burst;
  } else {
    st.exec_tokens = std::min<double>(
        q.exec_burst, st.exec_tokens + q.execs_per_second * static_cast<double>(now - st.exec_tokens_at_ms) / 1000.0);
  }
  st.exec_tokens_at_ms = now;
  if (st.exec_tokens < 1) return false;
  st.exec_tokens -= 1;
  return true;
}

uint64_t record_bytes(const storage::process_record& p) {
  uint64_t n = 0;
  for (const auto& a : p.argv) n += a.size();
  for (const auto& [k, v] : p.env) n += k.size() + v.size();
  return n;
}

// The exec-records quota: false when storing `proc` would take the sandbox past it.
bool room_for_record(sandbox_state& st, const storage::process_record& proc) {
  if (st.ctx->quotas == nullptr) return true;
  if (st.exec_record_bytes < 0) {
    st.exec_record_bytes = 0;
    if (auto listed = st.ctx->store->list_processes(st.rec.id))
      for (const auto& p : listed->records) st.exec_record_bytes += static_cast<int64_t>(record_bytes(p));
  }
  const tenant_quota q = st.ctx->quotas->quota_of(st.rec.tenant);
  const uint64_t next = static_cast<uint64_t>(st.exec_record_bytes) + record_bytes(proc);
  if (next > q.sandbox_exec_record_bytes) return false;
  st.exec_record_bytes = static_cast<int64_t>(next);
  return true;
}

// stdin, signal and resize go to the process actor of a running exec.
template <class Request>
void forward_to_exec(sandbox_self self, Request& req) {
  auto& st = self->state;
  st.last_active_ms = st.ctx->clk->now_ms();
  if (auto it = st.processes.find(req.exec_id); it != st.processes.end()) {
    self->send(it->second, std::move(req));
  } else if (wire::valid_token(req.exec_id) && st.ctx->store->get_process(st.rec.id, req.exec_id)) {
    reply_error(self, req.reply, wire::ErrorCode::failed_precondition, "exec has finished",
                "exec_id");
  } else {
    reply_error(self, req.reply, wire::ErrorCode::not_found, "no such exec", "exec_id");
  }
}

}  // namespace

// Starts a process: gives it the next handle, stores its record and the sandbox's handle
// counter in one synced batch (the exec is accepted once durable), spawns its actor and
// sends Spawn to init. Returns an error text, empty on success.
std::string start_process(sandbox_self self, storage::process_record& proc,
                          const pty_options& pty) {
  auto& st = self->state;
  proc.sandbox_id = st.rec.id;
  proc.handle = st.rec.next_exec_handle++;
  proc.started_at_ms = st.ctx->clk->now_ms();
  st.last_active_ms = proc.started_at_ms;
  auto status = st.ctx->store->put_sandbox_with_processes(st.rec, {proc});
  if (!status.ok()) {
    --st.rec.next_exec_handle;
    return "could not store the exec: " + status.message;
  }
  // The first exec may take over the pre-started command, if it asks for exactly that.
  auto spawn_frame = make_spawn(proc, pty, false, std::exchange(st.held_handle, 0));
  auto actor = spawn_process(self, st.ctx, st.rec.tenant, proc, st.link,
                             caf::actor_cast<caf::actor>(self));
  st.processes.emplace(proc.exec_id, actor);
  st.routes->add(proc.handle, actor);
  if (!st.link->send(std::move(spawn_frame))) {
    self->send(actor, end_atom::value,
               process_end_cause{wire::Outcome::internal, exit_codes::unknown, 0, "sandbox link refused the exec"});
  }
  return {};
}

void on_exec(sandbox_self self, verb::exec& req) {
  auto& st = self->state;
  const wire::ExecRequest* msg = &*req.msg;
  // attach_only (a status check, a resume) carries nothing to start: the rest is not checked.
  const bool attach_only = msg->attach_only();
  if (!attach_only) {
    if (auto e = check_exec(st.ctx->config, *msg)) {
      reply_error(self, req.reply, e.code, e.message(), e.field);
      return;
    }
  }
  std::string exec_id(wire::str(msg->exec_id()));
  if (!attach_only && is_probe(exec_id) && st.processes.count(exec_id) == 0) {
    // Readiness probes run as execs "probe-N": a client's id must not take one's place.
    reply_error(self, req.reply, wire::ErrorCode::invalid_argument,
                "exec ids beginning with probe- are reserved for readiness probes", "exec_id");
    return;
  }
  if (!exec_id.empty()) {
    // A known exec id re-attaches and never starts a second process; attach_only never
    // starts one at all.
    if (auto it = st.processes.find(exec_id); it != st.processes.end()) {
      self->send(it->second, std::move(req));
      return;
    }
    if (auto old = st.ctx->store->get_process(st.rec.id, exec_id)) {
      reply(self, req.reply, make_exec_reply(*old, /*reattached=*/true));
      return;
    }
    if (attach_only) {
      reply_error(self, req.reply, wire::ErrorCode::not_found, "no such exec: " + exec_id,
                  "exec_id");
      return;
    }
  } else if (attach_only) {
    reply_error(self, req.reply, wire::ErrorCode::invalid_argument, "attach_only needs an exec_id",
                "exec_id");
    return;
  } else {
    exec_id = wire::new_exec_id();
  }
  if (st.rec.state != wire::SandboxState::running || !st.link) {
    reply_error(self, req.reply, wire::ErrorCode::failed_precondition,
                std::string("sandbox is ") + wire::to_string(st.rec.state));
    return;
  }
  if (!take_exec_token(st)) {
    reply_error(self, req.reply, wire::ErrorCode::resource_exhausted,
                "more new execs per second than the tenant's quota allows; retry shortly", "exec");
    return;
  }
  storage::process_record proc;
  proc.sandbox_id = st.rec.id;
  proc.exec_id = exec_id;
  const pty_options pty = read_exec(*msg, st.rec, proc);
  if (!room_for_record(st, proc)) {
    reply_error(self, req.reply, wire::ErrorCode::resource_exhausted,
                "this sandbox's exec records (argv and env) are at the tenant's quota", "exec");
    return;
  }
  if (auto why = start_process(self, proc, pty); !why.empty()) {
    reply_error(self, req.reply, wire::ErrorCode::internal, why);
    return;
  }
  reply(self, req.reply, make_exec_reply(proc, /*reattached=*/false));
}

void to_exec(sandbox_self self, verb::stdin_write& req) { forward_to_exec(self, req); }
void to_exec(sandbox_self self, verb::signal& req) { forward_to_exec(self, req); }
void to_exec(sandbox_self self, verb::resize& req) { forward_to_exec(self, req); }

void on_proc_done(sandbox_self self, const storage::process_record& proc) {
  auto& s = self->state;
  const auto& exec_id = proc.exec_id;
  auto it = s.processes.find(exec_id);
  if (it == s.processes.end()) return;
  s.routes->remove(proc.handle);
  self->send_exit(it->second, caf::exit_reason::user_shutdown);
  s.processes.erase(it);
  // Idle time counts from the exec's end as the process recorded it.
  s.last_active_ms = std::max(s.last_active_ms, proc.ended_at_ms);
  if (is_probe(exec_id)) on_probe_done(self, proc);
  if (exec_id == entrypoint_exec_id && !wire::is_terminal(s.rec.state)) {
    // The entrypoint ended: so does the sandbox, with its exit code.
    const int32_t code = shell_exit_code(proc.outcome, proc.exit_code, proc.signal);
    (void)end_sandbox(self, wire::SandboxState::exited, code,
                      "entrypoint exited with " + std::to_string(code),
                      process_end_cause{wire::Outcome::signaled, exit_codes::killed, SIGKILL,
                                        "sandbox ended: its entrypoint exited"});
  }
}

}  // namespace corral::sandbox_detail
