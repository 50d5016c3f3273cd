// The sandbox actor's readiness probe: a command (or a TCP connect) run as an exec until it
// succeeds; the sandbox is ready once that is stored.
#include <algorithm>

#include "actors/sandbox_state.hpp"
#include "actors/validate.hpp"

namespace corral::sandbox_detail {

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

void on_probe_done(sandbox_self self, const storage::process_record& proc) {
  auto& s = self->state;
  if (s.rec.ready || wire::is_terminal(s.rec.state)) return;
  if (proc.outcome == wire::Outcome::exited && proc.exit_code == 0) {
    const auto stored = s.rec;
    s.rec.ready = true;
    if (persist(self, stored).ok()) {
      notify_node(self);
      answer_ready_waiters(self);
      return;
    }
    // Not ready until stored: probe again.
  }
  self->delayed_send(self, std::chrono::milliseconds(s.rec.probe_interval_ms), probe_atom::value);
}

}  // namespace corral::sandbox_detail
