#include "actors/sandbox.hpp"

#include <algorithm>
#include <csignal>
#include <map>
#include <unordered_map>
#include <utility>

#include "actors/blocking.hpp"
#include "actors/files.hpp"
#include "actors/process.hpp"
#include "actors/sandbox_init_events.hpp"
#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral {

namespace {

struct waiter {
  std::string reply;
  bool until_ready = false;  // answered once the readiness probe passed, not only at the end
};

struct sandbox_state {
  context_ptr ctx;
  storage::sandbox_record rec;
  caf::actor node;
  std::string create_reply;       // answered once the sandbox is ready (or failed)
  sandbox_start_mode mode = sandbox_start_mode::create;
  std::shared_ptr<init_link> link;
  bool holds_resources = true;
  bool destroying = false;
  bool ready = false;  // init answered our Hello
  std::unordered_map<std::string, process_actor> processes;  // live execs by exec id
  // The same by init handle, read by the init listener (actors/sandbox_init_events.hpp).
  std::shared_ptr<exec_routes> routes = std::make_shared<exec_routes>();
  // New execs per second (tenant_quota::execs_per_second): a token bucket, full at the start.
  double exec_tokens = -1;  // < 0: not filled yet
  int64_t exec_tokens_at_ms = 0;
  // Bytes of argv and env in this sandbox's stored exec records (tenant_quota::
  // sandbox_exec_record_bytes); < 0: not counted yet (counted from the store at the first exec).
  int64_t exec_record_bytes = -1;
  std::map<uint64_t, waiter> waiters;
  file_ops files;  // fs.* requests waiting for init
  int64_t last_active_ms = 0;  // last exec start/end or stdin write (idle timeout)
  uint64_t probes = 0;         // readiness probe attempts so far
  uint64_t next_waiter = 1;
  // The cpu and memory limits the runtime started it with (a claim applies others).
  uint32_t booted_cpu_millis = 0;
  uint32_t booted_memory_mib = 0;
  // A warm sandbox's pre-started command (node_config::warm_prestart), held by init until the
  // first exec adopts it; 0 when there is none (any more).
  uint64_t held_handle = 0;
  static inline const char* name = "sandbox";
};

using sandbox_self = sandbox_actor::stateful_pointer<sandbox_state>;

// Start-up deadline: runtime start plus init's HelloAck.
constexpr std::chrono::seconds start_deadline{60};

void reply(sandbox_self self, const std::string& to, bytes payload) {
  if (!to.empty()) self->state.ctx->out->publish(to, std::move(payload));
}

void reply_error(sandbox_self self, const std::string& to, wire::ErrorCode code,
                 std::string_view message, std::string_view field = {}) {
  reply(self, to, wire::make_error_reply(code, message, field));
}

// Stores the record (synced). When the write fails the record goes back to `stored` (what the
// store holds), so that the actor never claims a state it has not stored; the caller answers
// the request that asked for the transition with the error.
[[nodiscard]] status persist(sandbox_self self, const storage::sandbox_record& stored) {
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

void notify_node(sandbox_self self) {
  const auto& st = self->state;
  const bool warm = st.mode == sandbox_start_mode::warm;
  caf::anon_send(st.node, summary_atom::value,
                 sandbox_summary{st.rec, st.holds_resources, warm,
                                 warm && st.ready && !wire::is_terminal(st.rec.state)});
}

bytes make_hello(uint64_t session) {
  flatbuffers::FlatBufferBuilder fbb(64);
  auto h = wire::CreateHello(fbb, session);
  fbb.Finish(wire::CreateInitCommand(fbb, wire::Command::Hello, h.Union()),
             wire::InitCommandIdentifier());
  return wire::release(fbb);
}

void end_orphaned_execs(sandbox_self self);
bool end_orphaned_execs_impl(sandbox_self self);
std::string start_process(sandbox_self self, storage::process_record& proc,
                          const pty_options& pty);
void prestart(sandbox_self self);

void start_probe(sandbox_self self);
void arm_idle_timer(sandbox_self self);
void answer_ready_waiters(sandbox_self self);
bool is_probe(const std::string& exec_id);

// The exec id of a sandbox's entrypoint command: its output is replayable like any exec's, and
// its end ends the sandbox with its exit code.
constexpr const char* entrypoint_exec_id = "entrypoint";

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

// Why a sandbox ends: asked for (terminate), or a fact (it died, its time is up, ...).
enum class end_kind { requested, fact };

// Ends the sandbox with a terminal state: the record is stored, every live process ends with
// `cause`, creators and waiters are answered, and the runtime tears it down off the request path.
// When the record cannot be stored, a requested end changes nothing and answers the error; an
// end that is a fact goes on (the sandbox is gone either way; the record left behind is ended
// as lost by the next executor's recovery).
status end_sandbox(sandbox_self self, wire::SandboxState state, std::optional<int32_t> return_code,
                   std::string message, const process_end_cause& cause,
                   end_kind kind = end_kind::fact) {
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
    st.create_reply.clear();
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
                        process_end_cause{wire::Outcome::internal, 255, 0, written.message});
      return;
    }
  }
  if (!st.create_reply.empty()) {
    reply(self, st.create_reply, make_sandbox_reply(st.rec));
    st.create_reply.clear();
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
                  process_end_cause{wire::Outcome::internal, 255, 0, "entrypoint did not start"});
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
                process_end_cause{wire::Outcome::executor_lost, 255, 0, "sandbox lost"});
    return;
  }
  st.link = std::move(res.link);
  if (!st.link->send(make_hello(st.ctx->session))) {
    (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt, "init link refused hello",
                process_end_cause{wire::Outcome::internal, 255, 0, "init link failed"});
  }
}

// After a restart: every exec the store still shows as running belonged to the previous
// executor process; init killed them on our Hello. They end as executor_lost (P3, P10).
void end_orphaned_execs(sandbox_self self) {
  auto& st = self->state;
  const bool entrypoint_lost = end_orphaned_execs_impl(self);
  if (entrypoint_lost && !wire::is_terminal(st.rec.state)) {
    (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt,
                "the entrypoint was lost with the executor running it",
                process_end_cause{wire::Outcome::executor_lost, 255, 0, "executor lost"});
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
    proc.exit_code = 255;
    proc.message = "the executor running this exec was lost";
    proc.ended_at_ms = st.ctx->clk->now_ms();
    proc.next_seq += 1;
    auto status = st.ctx->store->put_process(proc);
    if (!status.ok()) caf::aout(self) << "store failed: " << status.message << "\n";
    st.ctx->out->publish(wire::subjects::output(st.rec.tenant, st.rec.id, proc.exec_id),
                         make_exec_exit(proc));
    entrypoint_lost |= proc.exec_id == entrypoint_exec_id;
  }
  return entrypoint_lost;
}

void on_frame(sandbox_self self, const bytes& payload) {
  auto& st = self->state;
  const auto* ev = wire::verify<wire::InitEvent>(payload.data(), payload.size());
  if (ev == nullptr) {
    caf::aout(self) << "sandbox " << st.rec.id << ": dropped an invalid frame from init\n";
    return;
  }
  // (Events about a process went straight to its actor: actors/sandbox_init_events.hpp.)
  if (st.files.on_event(st.ctx, *ev)) return;
  if (ev->event_type() == wire::Event::HelloAck) {
    const auto* hello = ev->event_as_HelloAck();
    if (hello == nullptr || hello->session() != st.ctx->session) return;
    if (st.ready) return;
    st.ready = true;
    if (st.mode == sandbox_start_mode::warm) {
      prestart(self);
      notify_node(self);  // booted: the node may hand it out now
      return;
    }
    if (st.mode == sandbox_start_mode::recover) end_orphaned_execs(self);
    if (!wire::is_terminal(st.rec.state)) become_running(self);
  }
}

// A booted warm sandbox starts the node's pre-started command (node_config::warm_prestart), held
// by init: as an exec with no env, workdir or pty of its own and stdin open would be started
// once the sandbox is claimed, so that such an exec can take it over.
void prestart(sandbox_self self) {
  auto& st = self->state;
  const auto& argv = st.ctx->config.warm_prestart;
  if (argv.empty() || !st.link || st.held_handle != 0) return;
  storage::process_record proc;
  proc.argv = argv;
  proc.env = merged_env(st.rec.env, {});
  proc.workdir = st.rec.workdir.empty() ? "/" : st.rec.workdir;
  proc.stdin_open = true;
  if (st.rec.next_exec_handle == 0) st.rec.next_exec_handle = 1;  // Spawn.adopt: 0 is "none"
  proc.handle = st.rec.next_exec_handle++;  // (a warm sandbox has no record to store it in)
  if (st.link->send(make_spawn(proc, pty_options{}, /*hold=*/true))) st.held_handle = proc.handle;
}

// Starts a process: gives it the next handle, stores its record and the sandbox's handle
// counter in one synced batch (the exec is accepted once durable, P2), spawns its actor and
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
               process_end_cause{wire::Outcome::internal, 255, 0, "sandbox link refused the exec"});
  }
  return {};
}

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

void on_exec(sandbox_self self, bus_request& req) {
  auto& st = self->state;
  const auto* msg = wire::verify<wire::ExecRequest>(req.data.data(), req.data.size());
  if (msg == nullptr) {
    reply_error(self, req.reply, wire::ErrorCode::malformed, "not an ExecRequest");
    return;
  }
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
    // A known exec id re-attaches and never starts a second process (P1); attach_only never
    // starts one at all.
    if (auto it = st.processes.find(exec_id); it != st.processes.end()) {
      self->send(it->second, op_atom::value, std::move(req));
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
    exec_id = wire::new_id("ex-");
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

void on_replay(sandbox_self self, const bus_request& req) {
  auto& st = self->state;
  const auto* msg = wire::verify<wire::ReplayRequest>(req.data.data(), req.data.size());
  if (msg == nullptr) {
    reply_error(self, req.reply, wire::ErrorCode::malformed, "not a ReplayRequest");
    return;
  }
  const std::string exec_id(wire::str(msg->exec_id()));
  if (!wire::valid_token(exec_id)) {
    reply_error(self, req.reply, wire::ErrorCode::not_found, "no such exec", "exec_id");
    return;
  }
  auto proc = st.ctx->store->get_process(st.rec.id, exec_id);
  if (!proc) {
    reply_error(self, req.reply, wire::ErrorCode::not_found, "no such exec", "exec_id");
    return;
  }
  auto chunks = st.ctx->store->read_output(st.rec.id, exec_id, msg->from_seq(),
                                           st.ctx->config.replay_batch_bytes);
  if (!chunks) {
    reply_error(self, req.reply, chunks.code(), "cannot read output: " + chunks.error().message);
    return;
  }
  uint64_t next = msg->from_seq();
  // A finished exec whose frames before its exit are asked for but none is stored any more:
  // output retention dropped them. Say so rather than answer with nothing (P4).
  if (chunks->empty() && proc->finished && msg->from_seq() + 1 < proc->next_seq) {
    reply_error(self, req.reply, wire::ErrorCode::expired,
                "the output of " + exec_id + " has expired (output retention)", "exec_id");
    return;
  }
  // The oldest chunks were dropped for the stored-output quota (actors/output_ledger.hpp): the
  // asked-for frames are gone, and skipping them would cut the output silently. (The ledger
  // knows it even when nothing after them is stored yet, for a running exec.)
  if (st.ctx->ledger != nullptr) {
    const uint64_t low = st.ctx->ledger->dropped_before(st.rec.id, exec_id);
    if (msg->from_seq() < low) {
      reply_error(self, req.reply, wire::ErrorCode::expired,
                  "frames " + std::to_string(msg->from_seq()) + ".." + std::to_string(low - 1) +
                      " of " + exec_id + " were dropped (stored-output quota)",
                  "from_seq");
      return;
    }
  }
  if (!chunks->empty() && chunks->front().seq > msg->from_seq()) {
    reply_error(self, req.reply, wire::ErrorCode::expired,
                "frames " + std::to_string(msg->from_seq()) + ".." +
                    std::to_string(chunks->front().seq - 1) + " of " + exec_id +
                    " were dropped (stored-output quota); stored frames start at " +
                    std::to_string(chunks->front().seq),
                "from_seq");
    return;
  }
  for (const auto& c : *chunks) {
    flatbuffers::FlatBufferBuilder fbb(c.data.size() + 128);
    auto id = fbb.CreateString(exec_id);
    auto d = fbb.CreateVector(c.data.data(), c.data.size());
    fbb.Finish(wire::CreateOutputChunk(fbb, id, c.seq, c.stream, c.offset, d),
               wire::OutputChunkIdentifier());
    reply(self, req.reply, wire::release(fbb));
    next = c.seq + 1;
  }
  // The exit frame's seq follows the last chunk; send it when the replay reached it.
  const bool reached_end = proc->finished && next + 1 >= proc->next_seq;
  if (reached_end) reply(self, req.reply, make_exec_exit(*proc));
  reply(self, req.reply, wire::make_ack(reached_end || !proc->finished ? "done" : "more"));
}

void on_tags(sandbox_self self, const bus_request& req) {
  auto& st = self->state;
  if (!req.data.empty()) {
    const auto* msg = wire::verify<wire::SetTags>(req.data.data(), req.data.size());
    if (msg == nullptr)
      return reply_error(self, req.reply, wire::ErrorCode::malformed, "not a SetTags");
    if (auto e = check_tags(st.ctx->config, msg->tags()))
      return reply_error(self, req.reply, e.code, e.message(), e.field);
    // Set replaces the whole set, as Modal's set_tags does.
    const auto stored = st.rec;
    st.rec.tags = wire::pairs_of(msg->tags());
    if (auto written = persist(self, stored); !written.ok())
      return reply_error(self, req.reply, written.code, written.message);
    notify_node(self);
  }
  reply(self, req.reply, make_sandbox_reply(st.rec));
}

// Answers the waiters that wait for readiness.
void answer_ready_waiters(sandbox_self self) {
  auto& st = self->state;
  auto info = make_sandbox_reply(st.rec);
  for (auto it = st.waiters.begin(); it != st.waiters.end();) {
    if (it->second.until_ready) {
      reply(self, it->second.reply, info);
      it = st.waiters.erase(it);
    } else {
      ++it;
    }
  }
}

bool is_probe(const std::string& exec_id) { return exec_id.rfind("probe-", 0) == 0; }

// One readiness probe attempt: the probe command, or a TCP connect to the port from inside
// (bash's /dev/tcp; the host image has bash), as an exec of its own ("probe-N").
void start_probe(sandbox_self self) {
  auto& st = self->state;
  if (st.rec.ready || st.rec.state != wire::SandboxState::running || !st.link) return;
  storage::process_record proc;
  proc.exec_id = "probe-" + std::to_string(++st.probes);
  if (!st.rec.probe_command.empty()) {
    proc.argv = st.rec.probe_command;
  } else {
    proc.argv = {"bash", "-c",
                 "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(st.rec.probe_tcp_port)};
  }
  proc.env = merged_env(st.rec.env, {});
  proc.workdir = st.rec.workdir.empty() ? "/" : st.rec.workdir;
  proc.timeout_ms = std::max<int64_t>(st.rec.probe_interval_ms * 10, 1000);
  if (auto why = start_process(self, proc, pty_options{}); !why.empty()) {
    caf::aout(self) << "sandbox " << st.rec.id << ": probe: " << why << "\n";
    self->delayed_send(self, std::chrono::milliseconds(st.rec.probe_interval_ms), probe_atom::value);
  }
}

void arm_idle_timer(sandbox_self self) {
  auto& st = self->state;
  if (st.rec.idle_timeout_ms <= 0 || wire::is_terminal(st.rec.state)) return;
  const auto left = st.last_active_ms + st.rec.idle_timeout_ms - st.ctx->clk->now_ms();
  self->delayed_send(self, std::chrono::milliseconds(std::max<int64_t>(left, 1)), idle_atom::value);
}

// Hands an unclaimed warm sandbox (booted, link up) to a create: it takes the create's record
// and goes on as a created sandbox. The normal cpu weight (it waited at the lowest), a fresh
// cpu usage counter and limits other than those it booted with are applied off the actor's
// thread first (limits_atom); then it becomes running: the record is stored, the creator
// answered, the lifetime timer started.
void claim(sandbox_self self, sandbox_claim& c) {
  auto& st = self->state;
  const auto next_handle = st.rec.next_exec_handle;
  const auto id = st.rec.id;
  st.rec = std::move(c.rec);
  st.rec.id = id;
  st.rec.next_exec_handle = next_handle;
  st.rec.state = wire::SandboxState::starting;
  st.mode = sandbox_start_mode::create;
  st.create_reply = std::move(c.create_reply);
  if (st.held_handle != 0) {
    const auto& tag = st.ctx->config.warm_prestart_tag;
    const bool wanted = std::any_of(st.rec.tags.begin(), st.rec.tags.end(),
                                    [&](const auto& kv) { return kv.first == tag; });
    // Not for this create: gone before anything of the tenant's reaches init.
    if (!wanted) st.link->send(make_command_signal(std::exchange(st.held_handle, 0), SIGKILL));
  }
  // It waited at the lowest cpu weight: the tenant's sandbox gets the normal weight, its cpu
  // usage counted from now, and its own limits when they differ from the defaults it booted with.
  auto rt = st.ctx->rt;
  auto target = caf::actor_cast<caf::actor>(self);
  const uint32_t cpu = st.rec.cpu_millis, memory = st.rec.memory_mib;
  const bool same = cpu == st.booted_cpu_millis && memory == st.booted_memory_mib;
  self->spawn<caf::detached>(run_job, std::function<void()>([rt, target, id, cpu, memory, same] {
    auto error = rt->foreground(id);
    if (error.empty() && !same) error = rt->update_limits(id, cpu, memory);
    caf::anon_send(target, limits_atom::value, std::move(error));
  }));
}

void on_op(sandbox_self self, bus_request& req) {
  auto& st = self->state;
  const auto op = wire::subjects::last_token(req.subject);
  if (req.subject.size() > op.size() + 4 &&
      req.subject.compare(req.subject.size() - op.size() - 4, 4, ".fs.") == 0) {
    st.files.on_request(st.ctx, st.link.get(), st.rec.state == wire::SandboxState::running, req);
    return;
  }
  if (op == "info") {
    reply(self, req.reply, make_sandbox_reply(st.rec));
  } else if (op == "exec") {
    on_exec(self, req);
  } else if (op == "stdin" || op == "signal" || op == "resize") {
    st.last_active_ms = st.ctx->clk->now_ms();
    std::string exec_id;
    if (op == "resize") {
      if (const auto* m = wire::verify<wire::ResizeRequest>(req.data.data(), req.data.size()))
        exec_id = std::string(wire::str(m->exec_id()));
      else return reply_error(self, req.reply, wire::ErrorCode::malformed, "not a ResizeRequest");
    } else if (op == "stdin") {
      if (const auto* m = wire::verify<wire::StdinWrite>(req.data.data(), req.data.size()))
        exec_id = std::string(wire::str(m->exec_id()));
      else return reply_error(self, req.reply, wire::ErrorCode::malformed, "not a StdinWrite");
    } else {
      if (const auto* m = wire::verify<wire::SignalRequest>(req.data.data(), req.data.size()))
        exec_id = std::string(wire::str(m->exec_id()));
      else return reply_error(self, req.reply, wire::ErrorCode::malformed, "not a SignalRequest");
    }
    if (auto it = st.processes.find(exec_id); it != st.processes.end()) {
      self->send(it->second, op_atom::value, std::move(req));
    } else if (wire::valid_token(exec_id) && st.ctx->store->get_process(st.rec.id, exec_id)) {
      reply_error(self, req.reply, wire::ErrorCode::failed_precondition, "exec has finished",
                  "exec_id");
    } else {
      reply_error(self, req.reply, wire::ErrorCode::not_found, "no such exec", "exec_id");
    }
  } else if (op == "terminate") {
    auto ended = end_sandbox(
        self, wire::SandboxState::terminated, 137, "terminated by request",
        process_end_cause{wire::Outcome::signaled, 137, SIGKILL, "sandbox terminated"},
        end_kind::requested);
    if (!ended.ok()) return reply_error(self, req.reply, ended.code, ended.message);
    reply(self, req.reply, make_sandbox_reply(st.rec));
  } else if (op == "wait") {
    int64_t timeout_ms = 0;
    if (!req.data.empty()) {
      const auto* q = wire::verify<wire::SandboxQuery>(req.data.data(), req.data.size());
      if (q == nullptr)
        return reply_error(self, req.reply, wire::ErrorCode::malformed, "not a SandboxQuery");
      timeout_ms = q->wait_timeout_ms();
    }
    bool until_ready = false;
    if (!req.data.empty()) {
      const auto* q = wire::verify<wire::SandboxQuery>(req.data.data(), req.data.size());
      until_ready = q != nullptr && q->until_ready();
    }
    if (wire::is_terminal(st.rec.state) || timeout_ms <= 0 ||
        (until_ready && st.rec.ready && st.rec.state == wire::SandboxState::running)) {
      reply(self, req.reply, make_sandbox_reply(st.rec));
      return;
    }
    timeout_ms = std::min(timeout_ms, st.ctx->config.max_wait_ms);
    if (st.waiters.size() >= st.ctx->config.max_waiters)
      return reply_error(self, req.reply, wire::ErrorCode::resource_exhausted,
                         "too many waits on this sandbox at once", "wait");
    const auto id = st.next_waiter++;
    st.waiters.emplace(id, waiter{req.reply, until_ready});
    self->delayed_send(self, std::chrono::milliseconds(timeout_ms), wait_atom::value, req.reply,
                       id);
  } else if (op == "replay") {
    on_replay(self, req);
  } else if (op == "tags") {
    on_tags(self, req);
  } else {
    reply_error(self, req.reply, wire::ErrorCode::invalid_argument,
                "unknown sandbox operation: " + std::string(op));
  }
}

sandbox_actor::behavior_type sandbox_impl(sandbox_self self, context_ptr ctx,
                                          storage::sandbox_record rec, sandbox_start_mode mode,
                                          std::string create_reply, caf::actor node) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.rec = std::move(rec);
  st.mode = mode;
  st.create_reply = std::move(create_reply);
  st.node = std::move(node);
  self->set_exit_handler([=](caf::exit_msg& m) {
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
  });
  if (mode == sandbox_start_mode::ended) {
    st.holds_resources = false;
    end_orphaned_execs(self);
  } else {
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
  return {
      [=](op_atom, bus_request& req) { on_op(self, req); },
      [=](frame_atom, const bytes& payload) { on_frame(self, payload); },
      [=](link_down_atom, close_reason why, const std::string& detail) {
        auto& s = self->state;
        if (wire::is_terminal(s.rec.state)) return;
        s.link.reset();
        // Its memory cgroup killed the whole sandbox: its execs end oom_killed.
        const auto cause = why == close_reason::out_of_memory
                               ? process_end_cause{wire::Outcome::oom_killed, 137, SIGKILL,
                                                   "sandbox died: " + detail}
                               : process_end_cause{wire::Outcome::internal, 255, 0,
                                                   "sandbox died: " + detail};
        (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt, "sandbox died: " + detail,
                          cause);
      },
      [=](started_atom, runtime::started& res) { on_started(self, res); },
      [=](destroyed_atom) {
        auto& s = self->state;
        s.destroying = false;
        s.holds_resources = false;
        notify_node(self);
      },
      [=](lifetime_atom) {
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
        (void)end_sandbox(self, wire::SandboxState::timed_out, 124,
                    "sandbox lifetime of " + std::to_string(s.rec.timeout_ms) + " ms ended",
                    process_end_cause{wire::Outcome::timeout, 124, SIGKILL,
                                      "sandbox lifetime ended"});
      },
      [=](timeout_atom) {
        auto& s = self->state;
        if (!s.ready && !wire::is_terminal(s.rec.state)) {
          (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt,
                      "sandbox did not become ready in time",
                      process_end_cause{wire::Outcome::internal, 255, 0, "start timed out"});
        }
      },
      [=](wait_atom, const std::string& to, uint64_t id) {
        auto& s = self->state;
        if (s.waiters.erase(id) > 0)
          reply_error(self, to, wire::ErrorCode::deadline_exceeded,
                      "sandbox still " + std::string(wire::to_string(s.rec.state)));
      },
      [=](idle_atom) {
        auto& s = self->state;
        if (wire::is_terminal(s.rec.state) || s.rec.idle_timeout_ms <= 0) return;
        const auto now = s.ctx->clk->now_ms();
        if (!s.processes.empty() || now < s.last_active_ms + s.rec.idle_timeout_ms) {
          // Busy, or active since the timer was set: look again when it could be idle.
          if (!s.processes.empty()) s.last_active_ms = now;
          arm_idle_timer(self);
          return;
        }
        (void)end_sandbox(self, wire::SandboxState::timed_out, 124,
                    "idle for " + std::to_string(s.rec.idle_timeout_ms) + " ms",
                    process_end_cause{wire::Outcome::timeout, 124, SIGKILL, "sandbox idle"});
      },
      [=](probe_atom) { start_probe(self); },
      [=](claim_atom, sandbox_claim& c) -> bool {
        auto& s = self->state;
        if (s.mode != sandbox_start_mode::warm || !s.ready || !s.link ||
            wire::is_terminal(s.rec.state))
          return false;
        claim(self, c);
        return true;
      },
      [=](retire_atom) {
        auto& s = self->state;
        if (s.mode != sandbox_start_mode::warm) return;  // claimed meanwhile: the claim won
        if (wire::is_terminal(s.rec.state)) {
          notify_node(self);  // ended already: say so again (the node asked while claiming)
          return;
        }
        (void)end_sandbox(self, wire::SandboxState::terminated, std::nullopt,
                    "retired from the warm pool",
                    process_end_cause{wire::Outcome::signaled, 137, SIGKILL, "retired"});
      },
      [=](limits_atom, const std::string& error) {
        auto& s = self->state;
        if (wire::is_terminal(s.rec.state)) return;  // died meanwhile; the creator has its answer
        if (!error.empty()) {
          (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt,
                      "could not apply its cpu/memory limits: " + error,
                      process_end_cause{wire::Outcome::internal, 255, 0, "limits not applied"});
          return;
        }
        become_running(self);
      },
      [=](proc_done_atom, const storage::process_record& proc) {
        auto& s = self->state;
        const auto& exec_id = proc.exec_id;
        auto it = s.processes.find(exec_id);
        if (it == s.processes.end()) return;
        s.routes->remove(proc.handle);
        self->send_exit(it->second, caf::exit_reason::user_shutdown);
        s.processes.erase(it);
        // Idle time counts from the exec's end as the process recorded it.
        s.last_active_ms = std::max(s.last_active_ms, proc.ended_at_ms);
        if (is_probe(exec_id) && !s.rec.ready && !wire::is_terminal(s.rec.state)) {
          if (proc.outcome == wire::Outcome::exited && proc.exit_code == 0) {
            const auto stored = s.rec;
            s.rec.ready = true;
            if (persist(self, stored).ok()) {
              notify_node(self);
              answer_ready_waiters(self);
            } else {  // not ready until stored: probe again
              self->delayed_send(self, std::chrono::milliseconds(s.rec.probe_interval_ms),
                                 probe_atom::value);
            }
          } else {
            self->delayed_send(self, std::chrono::milliseconds(s.rec.probe_interval_ms),
                               probe_atom::value);
          }
        }
        if (exec_id == entrypoint_exec_id && !wire::is_terminal(s.rec.state)) {
          // The entrypoint ended: so does the sandbox, with its exit code.
          const int32_t code = shell_exit_code(proc.outcome, proc.exit_code, proc.signal);
          (void)end_sandbox(self, wire::SandboxState::exited, code,
                      "entrypoint exited with " + std::to_string(code),
                      process_end_cause{wire::Outcome::signaled, 137, SIGKILL,
                                        "sandbox ended: its entrypoint exited"});
        }
      },
  };
}

}  // namespace

sandbox_actor spawn_sandbox(caf::local_actor* parent, context_ptr ctx, storage::sandbox_record rec,
                            sandbox_start_mode mode, std::string create_reply, caf::actor node) {
  return parent->spawn(sandbox_impl, std::move(ctx), std::move(rec), mode,
                       std::move(create_reply), std::move(node));
}

}  // namespace corral
