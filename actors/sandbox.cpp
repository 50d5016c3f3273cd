// The sandbox actor's behavior: which message goes to which concern (actors/sandbox_state.hpp).
#include "actors/sandbox.hpp"

#include "actors/sandbox_state.hpp"

namespace corral {

namespace sandbox_detail {

void reply(sandbox_self self, const reply_handle& to, bytes payload) {
  self->state.ctx->out->reply(to, std::move(payload));
}

void reply_error(sandbox_self self, const reply_handle& to, wire::ErrorCode code,
                 std::string_view message, std::string_view field) {
  reply(self, to, wire::make_error_reply(code, message, field));
}

void notify_node(sandbox_self self) {
  const auto& st = self->state;
  const bool warm = st.mode == sandbox_start_mode::warm;
  caf::anon_send(st.node, summary_atom::value,
                 sandbox_summary{st.rec, st.holds_resources, warm,
                                 warm && st.ready && !wire::is_terminal(st.rec.state)});
}

namespace {

sandbox_actor::behavior_type sandbox_impl(sandbox_self self, context_ptr ctx,
                                          storage::sandbox_record rec, sandbox_start_mode mode,
                                          reply_handle create_reply, caf::actor node) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.rec = std::move(rec);
  st.mode = mode;
  st.create_reply = std::move(create_reply);
  st.node = std::move(node);
  self->set_exit_handler([=](caf::exit_msg& m) { on_exit(self, m); });
  start(self);
  return {
      // Client verbs.
      [=](const verb::info& req) { on_info(self, req); },
      [=](verb::exec& req) { on_exec(self, req); },
      [=](verb::stdin_write& req) { to_exec(self, req); },
      [=](verb::signal& req) { to_exec(self, req); },
      [=](verb::resize& req) { to_exec(self, req); },
      [=](const verb::terminate& req) { on_terminate(self, req); },
      [=](const verb::wait& req) { on_wait(self, req); },
      [=](const verb::replay& req) { on_replay(self, req); },
      [=](const verb::tags& req) { on_tags(self, req); },
      [=](const verb::fs& req) {
        auto& s = self->state;
        s.files.on_request(s.ctx, s.link.get(), s.rec.state == wire::SandboxState::running, req);
      },
      // corral-init and the runtime.
      [=](frame_atom, const bytes& payload) { on_init_frame(self, payload); },
      [=](link_down_atom, close_reason why, const std::string& detail) {
        on_link_down(self, why, detail);
      },
      [=](started_atom, runtime::started& res) { on_started(self, res); },
      [=](destroyed_atom) { on_destroyed(self); },
      // Timers.
      [=](lifetime_atom) { on_lifetime(self); },
      [=](timeout_atom) { on_start_timeout(self); },
      [=](wait_atom, uint64_t id) { on_wait_timeout(self, id); },
      [=](idle_atom) { on_idle(self); },
      [=](probe_atom) { start_probe(self); },
      // The warm pool.
      [=](claim_atom, sandbox_claim& c) -> bool { return on_claim(self, c); },
      [=](retire_atom) { on_retire(self); },
      [=](limits_atom, const std::string& error) { on_limits(self, error); },
      // A process actor has ended.
      [=](proc_done_atom, const storage::process_record& proc) { on_proc_done(self, proc); },
  };
}

}  // namespace
}  // namespace sandbox_detail

sandbox_actor spawn_sandbox(caf::local_actor* parent, context_ptr ctx, storage::sandbox_record rec,
                            sandbox_start_mode mode, reply_handle create_reply, caf::actor node) {
  return parent->spawn(sandbox_detail::sandbox_impl, std::move(ctx), std::move(rec), mode,
                       std::move(create_reply), std::move(node));
}

}  // namespace corral
