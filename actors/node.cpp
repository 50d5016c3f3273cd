#include "actors/node.hpp"

#include <unordered_map>
#include <unordered_set>

#include "actors/blocking.hpp"
#include "actors/sandbox.hpp"
#include "actors/validate.hpp"
#include "actors/usage.hpp"  // metering
#include "actors/wire_build.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral {

namespace {

struct entry {
  sandbox_actor actor;
  sandbox_summary summary;
};

struct node_state {
  context_ptr ctx;
  std::unordered_set<std::string> output_dropped;  // ended sandboxes whose output retention ran out
  std::unordered_map<std::string, entry> sandboxes;
  bool accepting = false;
  bool draining = false;
  usage_actor meter;  // metering: receives every sandbox_summary
  static inline const char* name = "node";
};

using node_self = node_actor::stateful_pointer<node_state>;

void reply(node_self self, const std::string& to, bytes payload) {
  if (!to.empty()) self->state.ctx->out->publish(to, std::move(payload));
}

uint32_t holding(const node_state& st) {
  uint32_t n = 0;
  for (const auto& [id, e] : st.sandboxes) n += e.summary.holds_resources ? 1 : 0;
  return n;
}

void update_accepting(node_self self) {
  auto& st = self->state;
  const bool want = !st.draining && holding(st) < st.ctx->config.max_sandboxes;
  if (want != st.accepting) {
    st.accepting = want;
    st.ctx->router->accept_creates(want);
  }
}

void on_create(node_self self, bus_request& req) {
  auto& st = self->state;
  const auto& cfg = st.ctx->config;
  const std::string tenant(wire::subjects::tenant_of(req.subject));
  if (!wire::valid_token(tenant)) {
    return reply(self, req.reply,
                 wire::make_error_reply(wire::ErrorCode::invalid_argument, "invalid tenant"));
  }
  const auto* msg = wire::verify<wire::CreateSandbox>(req.data.data(), req.data.size());
  if (msg == nullptr) {
    return reply(self, req.reply,
                 wire::make_error_reply(wire::ErrorCode::malformed, "not a CreateSandbox"));
  }
  auto fail = [&](wire::ErrorCode code, const std::string& field, const std::string& why) {
    reply(self, req.reply, wire::make_error_reply(code, field + ": " + why, field));
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
  if (st.draining)
    return reply(self, req.reply,
                 wire::make_error_reply(wire::ErrorCode::unavailable, "executor is draining"));
  if (holding(st) >= cfg.max_sandboxes)
    return reply(self, req.reply, wire::make_error_reply(wire::ErrorCode::resource_exhausted,
                                                         "executor at capacity"));
  if (!name.empty()) {
    for (const auto& [id, e] : st.sandboxes) {
      const auto& r = e.summary.rec;
      if (r.tenant == tenant && r.name == name && !wire::is_terminal(r.state))
        return fail(wire::ErrorCode::already_exists, "name",
                    "a live sandbox of this tenant is named " + name);
    }
  }
  storage::sandbox_record rec;
  rec.id = wire::new_id("sb-");
  rec.tenant = tenant;
  rec.name = name;
  rec.image = image.empty() ? "host" : image;
  rec.state = wire::SandboxState::pending;
  rec.node = cfg.node_id;
  rec.created_at_ms = st.ctx->clk->now_ms();
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
  auto status = st.ctx->store->put_sandbox(rec);
  if (!status.ok()) {
    return reply(self, req.reply, wire::make_error_reply(wire::ErrorCode::internal,
                                                         "could not store: " + status.message));
  }
  auto actor = spawn_sandbox(self, st.ctx, rec, sandbox_start_mode::create, req.reply,
                             caf::actor_cast<caf::actor>(self));
  st.sandboxes[rec.id] = entry{actor, sandbox_summary{rec, true}};
  self->send(st.meter, summary_atom::value, sandbox_summary{rec, true});  // metering
  st.ctx->router->attach_sandbox(rec.tenant, rec.id, caf::actor_cast<caf::actor>(actor));
  update_accepting(self);
}

bool matches(const storage::sandbox_record& r, const wire::ListSandboxes* filter) {
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

void on_list(node_self self, bus_request& req) {
  auto& st = self->state;
  const auto tenant = wire::subjects::tenant_of(req.subject);
  const wire::ListSandboxes* filter = nullptr;
  if (!req.data.empty()) {
    filter = wire::verify<wire::ListSandboxes>(req.data.data(), req.data.size());
    if (filter == nullptr)
      return reply(self, req.reply,
                   wire::make_error_reply(wire::ErrorCode::malformed, "not a ListSandboxes"));
  }
  flatbuffers::FlatBufferBuilder fbb(4096);
  std::vector<flatbuffers::Offset<wire::SandboxInfo>> infos;
  std::vector<const storage::sandbox_record*> hits;
  for (const auto& [id, e] : st.sandboxes)
    if (e.summary.rec.tenant == tenant && matches(e.summary.rec, filter)) hits.push_back(&e.summary.rec);
  std::sort(hits.begin(), hits.end(), [](auto* a, auto* b) {
    return a->created_at_ms != b->created_at_ms ? a->created_at_ms < b->created_at_ms : a->id < b->id;
  });
  // One reply must fit one NATS message: stop before the cap (clients page by filters).
  std::size_t approx = 0;
  for (const auto* r : hits) {
    approx += 512 + r->id.size() + r->name.size() + r->message.size();
    for (const auto& [k, v] : r->tags) approx += k.size() + v.size() + 16;
    if (approx > wire::max_message_bytes / 2) break;
    infos.push_back(build_sandbox_info(fbb, *r));
  }
  auto node = fbb.CreateString(st.ctx->config.node_id);
  auto vec = fbb.CreateVector(infos);
  fbb.Finish(wire::CreateSandboxList(fbb, node, vec), wire::SandboxListIdentifier());
  reply(self, req.reply, wire::release(fbb));
}

void publish_heartbeat(node_self self) {
  auto& st = self->state;
  uint32_t running = 0;
  for (const auto& [id, e] : st.sandboxes)
    running += e.summary.rec.state == wire::SandboxState::running ? 1 : 0;
  flatbuffers::FlatBufferBuilder fbb(256);
  auto node = fbb.CreateString(st.ctx->config.node_id);
  auto pool = fbb.CreateString(st.ctx->config.pool);
  auto tags = wire::build_pairs(fbb, st.ctx->config.tags);
  fbb.Finish(wire::CreateHeartbeat(fbb, node, pool, st.ctx->config.max_sandboxes, running,
                                   st.ctx->clk->now_ms(), tags),
             wire::HeartbeatIdentifier());
  st.ctx->out->publish(wire::subjects::heartbeat(st.ctx->config.node_id), wire::release(fbb));
}

void expire_ended(node_self self) {
  auto& st = self->state;
  const auto now = st.ctx->clk->now_ms();
  for (auto it = st.sandboxes.begin(); it != st.sandboxes.end();) {
    const auto& s = it->second.summary;
    if (wire::is_terminal(s.rec.state) && s.rec.ended_at_ms + st.ctx->config.output_retention_ms < now &&
        st.output_dropped.count(s.rec.id) == 0) {
      // Output retention: the records stay (info, wait, and replay answers "expired").
      if (auto status = st.ctx->store->delete_output(s.rec.id); status.ok())
        st.output_dropped.insert(s.rec.id);
      else
        caf::aout(self) << "retention: cannot drop output of " << s.rec.id << ": " << status.message << "\n";
    }
    if (wire::is_terminal(s.rec.state) && !s.holds_resources &&
        s.rec.ended_at_ms + st.ctx->config.retention_ms < now) {
      auto status = st.ctx->store->delete_sandbox(s.rec.id);
      if (!status.ok()) {
        caf::aout(self) << "retention: could not delete " << s.rec.id << ": " << status.message
                        << "\n";
        ++it;
        continue;
      }
      st.ctx->router->detach_sandbox(s.rec.tenant, s.rec.id);
      st.output_dropped.erase(s.rec.id);
      self->send_exit(it->second.actor, caf::exit_reason::user_shutdown);
      it = st.sandboxes.erase(it);
    } else {
      ++it;
    }
  }
}

uint32_t recover(node_self self) {
  auto& st = self->state;
  auto listed = st.ctx->store->list_sandboxes();
  if (!listed) {
    caf::aout(self) << "recovery: cannot list sandboxes: " << listed.error().message << "\n";
    return 0;
  }
  for (const auto& id : listed->undecodable)
    caf::aout(self) << "recovery: sandbox record " << id << " does not decode; left alone\n";
  for (auto& rec : listed->records) {
    if (st.sandboxes.count(rec.id) > 0) continue;
    const bool ended = wire::is_terminal(rec.state);
    const auto mode = ended ? sandbox_start_mode::ended : sandbox_start_mode::recover;
    auto actor = spawn_sandbox(self, st.ctx, rec, mode, {}, caf::actor_cast<caf::actor>(self));
    st.sandboxes[rec.id] = entry{actor, sandbox_summary{rec, !ended}};
    self->send(st.meter, summary_atom::value, sandbox_summary{rec, !ended});  // metering
    st.ctx->router->attach_sandbox(rec.tenant, rec.id, caf::actor_cast<caf::actor>(actor));
  }
  // What the runtime has on the host: listed off the actor's thread, judged by the node when the
  // list arrives (host_atom), so a sandbox created meanwhile is never taken for an orphan.
  auto rt = st.ctx->rt;
  auto node = caf::actor_cast<caf::actor>(self);
  self->spawn<caf::detached>(run_job, std::function<void()>([rt, node] {
    caf::anon_send(node, host_atom::value, rt->list_host_sandboxes());
  }));
  update_accepting(self);
  return static_cast<uint32_t>(st.sandboxes.size());
}

node_actor::behavior_type node_impl(node_self self, context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  self->state.meter = spawn_usage_meter(self, self->state.ctx);  // metering
  // Shutdown: the node takes its sandbox actors with it (they keep their sandboxes running).
  self->set_exit_handler([=](caf::exit_msg& m) {
    for (auto& [id, e] : self->state.sandboxes) self->send_exit(e.actor, m.reason);
    self->quit(m.reason);
  });
  self->delayed_send(self, std::chrono::milliseconds(self->state.ctx->config.heartbeat_interval_ms),
                     tick_atom::value);
  return {
      [=](create_atom, bus_request& req) { on_create(self, req); },
      [=](list_atom, bus_request& req) { on_list(self, req); },
      [=](summary_atom, sandbox_summary& s) {
        auto it = self->state.sandboxes.find(s.rec.id);
        if (it == self->state.sandboxes.end()) return;
        self->send(self->state.meter, summary_atom::value, s);  // metering
        it->second.summary = std::move(s);
        update_accepting(self);
      },
      [=](recover_atom) -> uint32_t { return recover(self); },
      [=](tick_atom) {
        // Also sent when orphan cleanup finishes; a second timer is harmless but avoid piling
        // them up: only the periodic one re-arms (it is the only one sent by self).
        publish_heartbeat(self);
        expire_ended(self);
        if (self->current_sender() == caf::actor_cast<caf::strong_actor_ptr>(self)) {
          self->delayed_send(self,
                             std::chrono::milliseconds(self->state.ctx->config.heartbeat_interval_ms),
                             tick_atom::value);
        }
      },
      [=](host_atom, const std::vector<std::string>& on_host) {
        // An orphan: on the host, and no actor of this node holds it (ended actors restored at
        // recovery never destroy; live and new ones do it themselves).
        auto& st = self->state;
        std::vector<std::string> orphans;
        for (const auto& id : on_host) {
          auto it = st.sandboxes.find(id);
          if (it == st.sandboxes.end() ||
              (wire::is_terminal(it->second.summary.rec.state) && !it->second.summary.holds_resources))
            orphans.push_back(id);
        }
        if (orphans.empty()) return;
        auto rt = st.ctx->rt;
        run_blocking(
            self, [rt, orphans] { for (const auto& id : orphans) rt->destroy(id); },
            caf::actor_cast<caf::actor>(self), caf::make_message(tick_atom::value));
      },
      [=](drain_atom) {
        self->state.draining = true;
        update_accepting(self);
      },
      [=](stats_atom) -> node_stats {
        node_stats out;
        const auto& st = self->state;
        out.sandboxes = static_cast<uint32_t>(st.sandboxes.size());
        out.holding = holding(st);
        for (const auto& [id, e] : st.sandboxes)
          out.running += e.summary.rec.state == wire::SandboxState::running ? 1 : 0;
        out.accepting = st.accepting;
        return out;
      },
  };
}

}  // namespace

node_actor spawn_node(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(node_impl, std::move(ctx));
}

}  // namespace corral
