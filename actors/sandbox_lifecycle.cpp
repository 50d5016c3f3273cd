// The sandbox actor's lifecycle: start, stored transitions, running, ending, timers, teardown.
#include <algorithm>
#include <csignal>

#include "actors/blocking.hpp"
#include "actors/sandbox_state.hpp"
#include "actors/validate.hpp"
#include "schemas/exit_codes.hpp"

namespace corral::sandbox_detail {

namespace {

bytes make_hello(uint64_t session) {
  flatbuffers::FlatBufferBuilder fbb(64);
  auto h = wire::CreateHello(fbb, session);
  fbb.Finish(wire::CreateInitCommand(fbb, wire::Command::Hello, h.Union()),
             wire::InitCommandIdentifier());
  return wire::release(fbb);
}

void destroy_in_background(sandbox_self self) {
  auto& st = self->state;
  if (st.destroying || !st.holds_resources) return;
  st.destroying = true;
  if (st.link) {
    st.link->close();
    st.link.reset();
  }
  auto rt = st.ctx->rt;
  auto id = st.rec.id;
  run_blocking(self, [rt, id] { rt->destroy(id); },
               caf::actor_cast<caf::actor>(self), caf::make_message(destroyed_atom::value));
}

}  // namespace

void start(sandbox_self self) {
  auto& st = self->state;
  const auto mode = st.mode;
  if (mode == sandbox_start_mode::ended) {
    st.holds_resources = false;
    end_orphaned_execs(self);
    return;
  }
  auto listener = std::make_shared<sandbox_init_listener>(caf::actor_cast<caf::actor>(self),
                                                          st.routes);
  auto rt = st.ctx->rt;
  sandbox_spec spec;
  spec.id = st.rec.id;
  spec.image = st.rec.image;
  spec.cpu_millis = st.rec.cpu_millis;
  spec.memory_mib = st.rec.memory_mib;
  spec.pids_limit = st.ctx->config.pids_limit;
  spec.background = mode == sandbox_start_mode::warm;
  st.booted_cpu_millis = spec.cpu_millis;
  st.booted_memory_mib = spec.memory_mib;
  if (mode == sandbox_start_mode::create || mode == sandbox_start_mode::warm) {
    // (Nothing is stored for a warm one.) When this write fails the record stays pending,
    // as stored, and becoming running stores both or answers the creator the error.
    const auto stored = st.rec;
    st.rec.state = wire::SandboxState::starting;
    (void)persist(self, stored);
    notify_node(self);
  }
  const bool adopt = mode == sandbox_start_mode::recover;
  run_blocking_result(self, [rt, spec, listener, adopt] {
    return adopt ? rt->adopt(spec.id, listener) : rt->start(spec, listener);
  });
  self->delayed_send(self, start_deadline, timeout_atom::value);
}

// Stores the record (synced). When the write fails the record goes back to `stored` (what the
// store holds), so that the actor never claims a state it has not stored; the caller answers
// the request that asked for the transition with the error.
status persist(sandbox_self self, const storage::sandbox_record& stored) {
  auto& st = self->state;
  // An unclaimed warm-pool sandbox has no record: it is stored first when claimed.
  if (st.mode == sandbox_start_mode::warm) return {};
  auto written = st.ctx->store->put_sandbox(st.rec);
  if (!written.ok()) {
    caf::aout(self) << "sandbox " << st.rec.id << ": store failed: " << written.message << "\n";
    st.rec = stored;
    written.message = "could not store the sandbox's state: " + written.message;
  }
  return written;
}

// Ends the sandbox with a terminal state: the record is stored, every live process ends with
// `cause`, creators and waiters are answered, and the runtime tears it down off the request path.
// When the record cannot be stored, a requested end changes nothing and answers the error; an
// end that is a fact goes on (the sandbox is gone either way; the record left behind is ended
// as lost by the next executor's recovery).
status end_sandbox(sandbox_self self, wire::SandboxState state, std::optional<int32_t> return_code,
                   std::string message, const process_end_cause& cause, end_kind kind) {
  auto& st = self->state;
  if (wire::is_terminal(st.rec.state)) return {};
  const auto stored = st.rec;
  st.rec.state = state;
  st.rec.has_return_code = return_code.has_value();
  st.rec.return_code = return_code.value_or(0);
  st.rec.ended_at_ms = st.ctx->clk->now_ms();
  st.rec.message = std::move(message);
  auto ended = st.rec;
  auto written = persist(self, stored);
  if (!written.ok()) {
    if (kind == end_kind::requested) return written;
    st.rec = std::move(ended);  // a fact ends the sandbox all the same
  }
  if (st.mode == sandbox_start_mode::recover && !st.ready) (void)end_orphaned_execs_impl(self);
  for (auto& [id, proc] : st.processes) self->send(proc, end_atom::value, cause);
  st.files.fail_all(st.ctx, "sandbox " + std::string(wire::to_string(state)));
  if (!st.create_reply.empty()) {
    reply_error(self, st.create_reply, wire::ErrorCode::internal,
                "sandbox did not start: " + st.rec.message);
    st.create_reply = {};
  }
  auto info = make_sandbox_reply(st.rec);
  for (auto& [wid, w] : st.waiters) reply(self, w.reply, info);
  st.waiters.clear();
  notify_node(self);
  destroy_in_background(self);
  return {};
}

void become_running(sandbox_self self) {
  auto& st = self->state;
  const auto now = st.ctx->clk->now_ms();
  if (st.rec.state != wire::SandboxState::running) {
    const auto stored = st.rec;
    st.rec.state = wire::SandboxState::running;
    st.rec.started_at_ms = now;
    if (auto written = persist(self, stored); !written.ok()) {
      // Not running, since not stored: the creator is told it failed, and it ends.
      (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt, written.message,
                        process_end_cause{wire::Outcome::internal, exit_codes::unknown, 0, written.message});
      return;
    }
  }
  if (!st.create_reply.empty()) {
    reply(self, st.create_reply, make_sandbox_reply(st.rec));
    st.create_reply = {};
  }
  notify_node(self);
  if (st.mode == sandbox_start_mode::create && !st.rec.entrypoint.empty() &&
      st.processes.count(entrypoint_exec_id) == 0) {
    storage::process_record proc;
    proc.exec_id = entrypoint_exec_id;
    proc.argv = st.rec.entrypoint;
    proc.env = merged_env(st.rec.env, {});
    proc.workdir = st.rec.workdir.empty() ? "/" : st.rec.workdir;
    if (auto why = start_process(self, proc, pty_options{}); !why.empty()) {
      (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt, "entrypoint: " + why,
                  process_end_cause{wire::Outcome::internal, exit_codes::unknown, 0, "entrypoint did not start"});
      return;
    }
  }
  const auto left = st.rec.created_at_ms + st.rec.timeout_ms - now;
  self->delayed_send(self, std::chrono::milliseconds(std::max<int64_t>(left, 0)),
                     lifetime_atom::value);
  st.last_active_ms = now;
  arm_idle_timer(self);
  if (!st.rec.ready) start_probe(self);
}

void on_started(sandbox_self self, runtime::started& res) {
  auto& st = self->state;
  if (wire::is_terminal(st.rec.state)) {
    // Ended (terminated or timed out) while the runtime was starting it.
    if (res.link) res.link->close();
    st.destroying = false;
    destroy_in_background(self);
    return;
  }
  if (!res.link) {
    (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt,
                st.mode == sandbox_start_mode::recover
                    ? "sandbox lost while the executor was down: " + res.error
                    : "runtime could not start the sandbox: " + res.error,
                process_end_cause{wire::Outcome::executor_lost, exit_codes::unknown, 0, "sandbox lost"});
    return;
  }
  st.link = std::move(res.link);
  if (!st.link->send(make_hello(st.ctx->session))) {
    (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt, "init link refused hello",
                process_end_cause{wire::Outcome::internal, exit_codes::unknown, 0, "init link failed"});
  }
}

// After a restart: every exec the store still shows as running belonged to the previous
// executor process; init killed them on our Hello. They end as executor_lost.
void end_orphaned_execs(sandbox_self self) {
  auto& st = self->state;
  const bool entrypoint_lost = end_orphaned_execs_impl(self);
  if (entrypoint_lost && !wire::is_terminal(st.rec.state)) {
    (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt,
                "the entrypoint was lost with the executor running it",
                process_end_cause{wire::Outcome::executor_lost, exit_codes::unknown, 0, "executor lost"});
  }
}

// Ends every exec the store shows as running; true when the entrypoint was one of them.
bool end_orphaned_execs_impl(sandbox_self self) {
  auto& st = self->state;
  bool entrypoint_lost = false;
  auto procs = st.ctx->store->list_processes(st.rec.id);
  if (!procs) {
    caf::aout(self) << "sandbox " << st.rec.id << ": cannot list execs: " << procs.error().message
                    << "\n";
    return false;
  }
  for (auto& proc : procs->records) {
    if (proc.finished || st.processes.count(proc.exec_id) > 0) continue;
    // The record was stored when the exec started; its output went on after that. Count what
    // was stored so the exit frame follows the last chunk and reports the byte counts.
    for (uint64_t from = proc.next_seq;;) {
      auto chunks = st.ctx->store->read_output(st.rec.id, proc.exec_id, from,
                                               st.ctx->config.replay_batch_bytes);
      if (!chunks || chunks->empty()) break;
      for (const auto& c : *chunks) {
        proc.next_seq = c.seq + 1;
        auto& counter = c.stream == wire::Stream::stderr ? proc.stderr_bytes : proc.stdout_bytes;
        counter = std::max<uint64_t>(counter, c.offset + c.data.size());
      }
      from = proc.next_seq;
    }
    proc.finished = true;
    proc.outcome = wire::Outcome::executor_lost;
    proc.exit_code = exit_codes::unknown;
    proc.message = "the executor running this exec was lost";
    proc.ended_at_ms = st.ctx->clk->now_ms();
    proc.next_seq += 1;
    auto status = st.ctx->store->put_process(proc);
    if (!status.ok()) caf::aout(self) << "store failed: " << status.message << "\n";
    st.ctx->out->publish_output(exec_address{st.rec.tenant, st.rec.id, proc.exec_id},
                                make_exec_exit(proc));
    entrypoint_lost |= proc.exec_id == entrypoint_exec_id;
  }
  return entrypoint_lost;
}

void on_link_down(sandbox_self self, close_reason why, const std::string& detail) {
  auto& s = self->state;
  if (wire::is_terminal(s.rec.state)) return;
  s.link.reset();
  // Its memory cgroup killed the whole sandbox: its execs end oom_killed.
  const auto cause =
      why == close_reason::out_of_memory
          ? process_end_cause{wire::Outcome::oom_killed, exit_codes::killed, SIGKILL, "sandbox died: " + detail}
          : process_end_cause{wire::Outcome::internal, exit_codes::unknown, 0, "sandbox died: " + detail};
  (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt, "sandbox died: " + detail,
                    cause);
}

void on_destroyed(sandbox_self self) {
  auto& s = self->state;
  s.destroying = false;
  s.holds_resources = false;
  notify_node(self);
}

void on_lifetime(sandbox_self self) {
  auto& s = self->state;
  if (s.rec.state != wire::SandboxState::running) return;
  if (s.ctx->clk->now_ms() < s.rec.created_at_ms + s.rec.timeout_ms) {
    // Early (a clock step): re-arm for what is left.
    self->delayed_send(
        self,
        std::chrono::milliseconds(s.rec.created_at_ms + s.rec.timeout_ms - s.ctx->clk->now_ms()),
        lifetime_atom::value);
    return;
  }
  (void)end_sandbox(self, wire::SandboxState::timed_out, exit_codes::timed_out,
                    "sandbox lifetime of " + std::to_string(s.rec.timeout_ms) + " ms ended",
                    process_end_cause{wire::Outcome::timeout, exit_codes::timed_out, SIGKILL,
                                      "sandbox lifetime ended"});
}

void on_start_timeout(sandbox_self self) {
  auto& s = self->state;
  if (!s.ready && !wire::is_terminal(s.rec.state)) {
    (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt,
                      "sandbox did not become ready in time",
                      process_end_cause{wire::Outcome::internal, exit_codes::unknown, 0, "start timed out"});
  }
}

void on_idle(sandbox_self self) {
  auto& s = self->state;
  if (wire::is_terminal(s.rec.state) || s.rec.idle_timeout_ms <= 0) return;
  const auto now = s.ctx->clk->now_ms();
  if (!s.processes.empty() || now < s.last_active_ms + s.rec.idle_timeout_ms) {
    // Busy, or active since the timer was set: look again when it could be idle.
    if (!s.processes.empty()) s.last_active_ms = now;
    arm_idle_timer(self);
    return;
  }
  (void)end_sandbox(self, wire::SandboxState::timed_out, exit_codes::timed_out,
                    "idle for " + std::to_string(s.rec.idle_timeout_ms) + " ms",
                    process_end_cause{wire::Outcome::timeout, exit_codes::timed_out, SIGKILL, "sandbox idle"});
}

void arm_idle_timer(sandbox_self self) {
  auto& st = self->state;
  if (st.rec.idle_timeout_ms <= 0 || wire::is_terminal(st.rec.state)) return;
  const auto left = st.last_active_ms + st.rec.idle_timeout_ms - st.ctx->clk->now_ms();
  self->delayed_send(self, std::chrono::milliseconds(std::max<int64_t>(left, 1)), idle_atom::value);
}

void on_terminate(sandbox_self self, const verb::terminate& req) {
  auto ended = end_sandbox(
      self, wire::SandboxState::terminated, exit_codes::killed, "terminated by request",
      process_end_cause{wire::Outcome::signaled, exit_codes::killed, SIGKILL, "sandbox terminated"},
      end_kind::requested);
  if (!ended.ok()) return reply_error(self, req.reply, ended.code, ended.message);
  reply(self, req.reply, make_sandbox_reply(self->state.rec));
}

void on_exit(sandbox_self self, caf::exit_msg& m) {
  auto& s = self->state;
  for (auto& [id, p] : s.processes) self->send_exit(p, m.reason);
  s.routes->clear();
  if (s.link) s.link->close();
  // An unclaimed warm sandbox never outlives its actor: nothing would claim or adopt it.
  if (s.mode == sandbox_start_mode::warm && s.holds_resources && !s.destroying) {
    auto rt = s.ctx->rt;
    auto id = s.rec.id;
    self->spawn<caf::detached>(run_job, std::function<void()>([rt, id] { rt->destroy(id); }));
  }
  self->quit(m.reason);
}

}  // namespace corral::sandbox_detail
