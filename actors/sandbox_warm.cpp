// The sandbox actor's part of the warm pool (actors/sandbox.hpp): the pre-started command, the
// claim that hands it to a create, retirement.
#include <algorithm>
#include <csignal>

#include "actors/blocking.hpp"
#include "actors/sandbox_state.hpp"
#include "actors/validate.hpp"
#include "schemas/exit_codes.hpp"

namespace corral::sandbox_detail {

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

namespace {

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

}  // namespace

bool on_claim(sandbox_self self, sandbox_claim& c) {
  auto& s = self->state;
  if (s.mode != sandbox_start_mode::warm || !s.ready || !s.link || wire::is_terminal(s.rec.state))
    return false;
  claim(self, c);
  return true;
}

void on_retire(sandbox_self self) {
  auto& s = self->state;
  if (s.mode != sandbox_start_mode::warm) return;  // claimed meanwhile: the claim won
  if (wire::is_terminal(s.rec.state)) {
    notify_node(self);  // ended already: say so again (the node asked while claiming)
    return;
  }
  (void)end_sandbox(self, wire::SandboxState::terminated, std::nullopt,
                    "retired from the warm pool",
                    process_end_cause{wire::Outcome::signaled, exit_codes::killed, SIGKILL, "retired"});
}

void on_limits(sandbox_self self, const std::string& error) {
  auto& s = self->state;
  if (wire::is_terminal(s.rec.state)) return;  // died meanwhile; the creator has its answer
  if (!error.empty()) {
    (void)end_sandbox(self, wire::SandboxState::failed, std::nullopt,
                      "could not apply its cpu/memory limits: " + error,
                      process_end_cause{wire::Outcome::internal, exit_codes::unknown, 0, "limits not applied"});
    return;
  }
  become_running(self);
}

}  // namespace corral::sandbox_detail
