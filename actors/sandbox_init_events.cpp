#include "actors/sandbox_init_events.hpp"

#include "actors/sandbox_state.hpp"
#include "actors/validate.hpp"

namespace corral {

void exec_routes::add(uint64_t handle, process_actor process) {
  std::lock_guard<std::mutex> lock(mu_);
  by_handle_[handle] = std::move(process);
}

void exec_routes::remove(uint64_t handle) {
  std::lock_guard<std::mutex> lock(mu_);
  by_handle_.erase(handle);
}

void exec_routes::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  by_handle_.clear();
}

process_actor exec_routes::find(uint64_t handle) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_handle_.find(handle);
  return it == by_handle_.end() ? process_actor{} : it->second;
}

void sandbox_init_listener::on_frame(std::vector<uint8_t> payload) {
  if (const auto* ev = wire::verify<wire::InitEvent>(payload.data(), payload.size())) {
    if (auto routed = process_event_of(*ev)) {
      // An event of a process that has no actor (ended, or a warm sandbox's held command that
      // no exec adopted) is dropped.
      if (auto process = routes_->find(routed->first))
        caf::anon_send(process, event_atom::value, std::move(routed->second));
      return;
    }
  }
  caf::anon_send(sandbox_, frame_atom::value, std::move(payload));
}

void sandbox_init_listener::on_closed(close_reason reason, std::string detail) {
  caf::anon_send(sandbox_, link_down_atom::value, reason, std::move(detail));
}

namespace sandbox_detail {

void on_init_frame(sandbox_self self, const bytes& payload) {
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

}  // namespace sandbox_detail
}  // namespace corral
