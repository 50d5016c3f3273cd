#include "actors/node.hpp"

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "actors/blocking.hpp"
#include "actors/sandbox.hpp"
#include "actors/validate.hpp"
#include "actors/usage.hpp"  // metering
#include "actors/wire_build.hpp"
#include "schemas/ids.hpp"

namespace corral {

namespace {

struct entry {
  sandbox_actor actor;
  sandbox_summary summary;
};

// An unclaimed sandbox of the warm pool.
struct warm_entry {
  sandbox_actor actor;
  bool ready = false;  // booted: can be handed out
  bool ended = false;  // died or retired: out of the pool; holds host resources until destroyed
};

// A validated create that waits, when the node is full: for one of its warm sandboxes still
// booting (poolable), or for the room a warm sandbox retired for it leaves (cold). Not stored
// yet; drain answers it `unavailable`.
struct pending_create {
  storage::sandbox_record rec;  // no id yet
  reply_handle reply;
  bool poolable = false;
};

struct node_state {
  context_ptr ctx;
  std::unordered_set<std::string> output_dropped;  // ended sandboxes whose output retention ran out
  std::unordered_map<std::string, entry> sandboxes;  // tenants' sandboxes (created or claimed)
  std::unordered_map<std::string, warm_entry> warm;  // the warm pool: unclaimed sandboxes
  std::deque<pending_create> waiting;                // in arrival order
  uint32_t held = 0;  // entries of `sandboxes` that hold host resources (kept as they change)
  bool accepting = false;
  bool draining = false;
  bool pool_settled = true;      // every live warm sandbox booted (when last looked)
  bool refill_paused = false;    // after a failed warm boot, until refill_atom
  // Claimed by creates with warm_loan_tag and not ended: the pool does not replace them yet.
  std::unordered_set<std::string> on_loan;
  int64_t warm_retry_ms = 0;     // the current delay after a failed warm boot; 0 after a success
  usage_actor meter;  // metering: receives every sandbox_summary of tenants' sandboxes
  static inline const char* name = "node";
};

using node_self = node_actor::stateful_pointer<node_state>;

void reply(node_self self, const reply_handle& to, bytes payload) {
  if (!to.empty()) self->state.ctx->out->reply(to, std::move(payload));
}

// Sandboxes holding host resources: tenants' ones until destroyed, and every warm one.
uint32_t holding(const node_state& st) { return st.held + static_cast<uint32_t>(st.warm.size()); }

struct pool_counts {
  uint32_t live = 0;   // in the pool: booting or booted
  uint32_t ready = 0;  // booted
};

pool_counts count_pool(const node_state& st) {
  pool_counts c;
  for (const auto& [id, w] : st.warm) {
    c.live += w.ended ? 0 : 1;
    c.ready += !w.ended && w.ready ? 1 : 0;
  }
  return c;
}

// A create that borrows the warm sandbox it is handed (config warm_loan_tag).
bool borrows(const node_config& cfg, const storage::sandbox_record& rec) {
  // Not a structured binding: a lambda may capture one only from C++20 on (clang refuses).
  const std::string& key = cfg.warm_loan_tag.first;
  const std::string& value = cfg.warm_loan_tag.second;
  return !key.empty() && std::any_of(rec.tags.begin(), rec.tags.end(), [&](const auto& kv) {
           return kv.first == key && kv.second == value;
         });
}

// Loans still outstanding: forgets those whose sandbox has ended (or was never handed out).
uint32_t outstanding_loans(node_state& st) {
  for (auto it = st.on_loan.begin(); it != st.on_loan.end();) {
    auto e = st.sandboxes.find(*it);
    if (e == st.sandboxes.end() || wire::is_terminal(e->second.summary.rec.state))
      it = st.on_loan.erase(it);
    else
      ++it;
  }
  return static_cast<uint32_t>(st.on_loan.size());
}

// Live warm sandboxes not yet promised to a waiting poolable create.
uint32_t spare_warm(const node_state& st) {
  uint32_t promised = 0;
  for (const auto& c : st.waiting) promised += c.poolable ? 1 : 0;
  const auto live = count_pool(st).live;
  return live > promised ? live - promised : 0;
}

std::string ready_warm(const node_state& st) {
  for (const auto& [id, w] : st.warm)
    if (w.ready && !w.ended) return id;
  return {};
}

// In the create queue group while a create can be served: with room, or from the warm pool.
void update_accepting(node_self self) {
  auto& st = self->state;
  const bool want =
      !st.draining && (holding(st) < st.ctx->config.max_sandboxes || spare_warm(st) > 0);
  if (want != st.accepting) {
    st.accepting = want;
    st.ctx->router->accept_creates(want);
  }
}

void publish_heartbeat(node_self self);
void place(node_self self, pending_create c);

// Boots one sandbox of the default shape for the pool. Nothing is stored.
void spawn_warm(node_self self) {
  auto& st = self->state;
  const auto& cfg = st.ctx->config;
  storage::sandbox_record rec;
  rec.id = wire::new_id("sb-");
  rec.image = "host";
  rec.state = wire::SandboxState::pending;
  rec.node = cfg.node_id;
  rec.cpu_millis = cfg.default_cpu_millis;
  rec.memory_mib = cfg.default_memory_mib;
  auto actor = spawn_sandbox(self, st.ctx, rec, sandbox_start_mode::warm, {},
                             caf::actor_cast<caf::actor>(self));
  st.warm.emplace(rec.id, warm_entry{actor});
}

// Takes one warm sandbox out of the pool to be destroyed (a booting one first).
void retire_one(node_self self) {
  auto& st = self->state;
  warm_entry* pick = nullptr;
  for (auto& [id, w] : st.warm)
    if (!w.ended && (pick == nullptr || (pick->ready && !w.ready))) pick = &w;
  if (pick == nullptr) return;
  pick->ended = true;
  pick->ready = false;
  self->send(pick->actor, retire_atom::value);
}

// A cold create: stores the pending record, then the sandbox boots and answers the creator.
void start_cold(node_self self, pending_create c) {
  auto& st = self->state;
  auto& rec = c.rec;
  rec.id = wire::new_id("sb-");
  rec.state = wire::SandboxState::pending;
  rec.created_at_ms = st.ctx->clk->now_ms();
  auto status = st.ctx->store->put_sandbox(rec);
  if (!status.ok()) {
    return reply(self, c.reply, wire::make_error_reply(wire::ErrorCode::internal,
                                                       "could not store: " + status.message));
  }
  auto actor = spawn_sandbox(self, st.ctx, rec, sandbox_start_mode::create, c.reply,
                             caf::actor_cast<caf::actor>(self));
  st.sandboxes[rec.id] = entry{actor, sandbox_summary{rec, true}};
  ++st.held;
  self->send(st.meter, summary_atom::value, sandbox_summary{rec, true});  // metering
  st.ctx->router->attach_sandbox(rec.tenant, rec.id, caf::actor_cast<caf::actor>(actor));
}

// The claim did not reach a live warm sandbox (its death crossed the claim): it goes back to the
// pool's books as ended and re-reports its state (retire), and the create is placed again.
void unclaim(node_self self, const std::string& id, pending_create c) {
  auto& st = self->state;
  if (auto it = st.sandboxes.find(id); it != st.sandboxes.end()) {
    st.ctx->router->detach_sandbox(c.rec.tenant, id);
    st.warm[id] = warm_entry{it->second.actor, false, true};
    self->send(it->second.actor, retire_atom::value);
    if (it->second.summary.holds_resources) --st.held;
    st.sandboxes.erase(it);
  }
  c.rec.id.clear();
  place(self, std::move(c));
}

// Hands the booted warm sandbox `id` to a create. Its routes are attached now (never before:
// an unclaimed sandbox is reachable by nobody); the sandbox stores its record and answers the
// creator. Its capacity was counted already.
void claim(node_self self, const std::string& id, pending_create c) {
  auto& st = self->state;
  auto w = st.warm.find(id);
  auto actor = w->second.actor;
  st.warm.erase(w);
  c.rec.id = id;
  c.rec.state = wire::SandboxState::starting;
  c.rec.created_at_ms = st.ctx->clk->now_ms();
  if (borrows(st.ctx->config, c.rec)) st.on_loan.insert(id);
  st.sandboxes[id] = entry{actor, sandbox_summary{c.rec, true}};
  ++st.held;
  st.ctx->router->attach_sandbox(c.rec.tenant, id, caf::actor_cast<caf::actor>(actor));
  self->request(actor, caf::infinite, claim_atom::value, sandbox_claim{c.rec, c.reply})
      .then(
          [=](bool taken) {
            if (!taken) unclaim(self, id, c);
          },
          [=](caf::error&) { unclaim(self, id, c); });
}

// After any change of the sandboxes, the pool or the room: serves waiting creates (in order),
// refills the pool within capacity (unless a cold create waits for room; sandboxes on loan
// still count as the pool's), updates the queue group, and publishes a heartbeat when the pool
// has just settled.
void pump(node_self self) {
  auto& st = self->state;
  const auto& cfg = st.ctx->config;
  for (auto it = st.waiting.begin(); it != st.waiting.end();) {
    const auto id = it->poolable ? ready_warm(st) : std::string{};
    if (!id.empty() || holding(st) < cfg.max_sandboxes) {
      auto c = std::move(*it);
      it = st.waiting.erase(it);
      if (!id.empty()) claim(self, id, std::move(c));
      else start_cold(self, std::move(c));
    } else {
      ++it;
    }
  }
  const bool cold_waiting = std::any_of(st.waiting.begin(), st.waiting.end(),
                                        [](const pending_create& c) { return !c.poolable; });
  if (!st.draining && !st.refill_paused && !cold_waiting) {
    const uint32_t loans = outstanding_loans(st);
    while (count_pool(st).live + loans < cfg.warm_pool && holding(st) < cfg.max_sandboxes)
      spawn_warm(self);
  }
  update_accepting(self);
  const auto pool = count_pool(st);
  const bool settled = pool.ready == pool.live;
  if (settled && !st.pool_settled && pool.live > 0) publish_heartbeat(self);
  st.pool_settled = settled;
}

// Places a validated create: a poolable one gets a booted warm sandbox; otherwise it boots cold
// when there is room; when the node is full but its pool holds warm sandboxes not promised to
// other creates, it waits for one (poolable) or for the room of one retired for it (cold).
// Otherwise resource_exhausted.
void place(node_self self, pending_create c) {
  auto& st = self->state;
  // Someone other than a borrower uses the pool: what is on loan is replaced now.
  if (!borrows(st.ctx->config, c.rec)) st.on_loan.clear();
  if (c.poolable) {
    if (auto id = ready_warm(st); !id.empty()) {
      claim(self, id, std::move(c));
      return pump(self);
    }
  }
  if (holding(st) < st.ctx->config.max_sandboxes) {
    start_cold(self, std::move(c));
    return pump(self);
  }
  if (spare_warm(st) > 0) {
    if (!c.poolable) retire_one(self);
    st.waiting.push_back(std::move(c));
    return pump(self);
  }
  reply(self, c.reply,
        wire::make_error_reply(wire::ErrorCode::resource_exhausted, "executor at capacity"));
}

// A summary of an unclaimed warm sandbox.
void on_warm_summary(node_self self, const sandbox_summary& s) {
  auto& st = self->state;
  auto it = st.warm.find(s.rec.id);
  if (it == st.warm.end()) return;  // being claimed: the claim's answer settles it
  auto& w = it->second;
  if (!s.holds_resources) {
    self->send_exit(w.actor, caf::exit_reason::user_shutdown);
    st.warm.erase(it);
  } else if (wire::is_terminal(s.rec.state)) {
    if (!w.ended && !w.ready) {
      // It never booted: retry later, not in a hot loop.
      const auto& cfg = st.ctx->config;
      st.warm_retry_ms = std::clamp(st.warm_retry_ms * 2, cfg.warm_retry_min_ms, cfg.warm_retry_max_ms);
      caf::aout(self) << "warm pool: a sandbox did not boot (" << s.rec.message
                      << "); next boot in " << st.warm_retry_ms << " ms\n";
      st.refill_paused = true;
      self->delayed_send(self, std::chrono::milliseconds(st.warm_retry_ms), refill_atom::value);
    }
    w.ended = true;
    w.ready = false;
  } else if (s.warm_ready && !w.ended) {
    w.ready = true;
    st.warm_retry_ms = 0;
  }
  pump(self);
}

// What a create would hold against the node's memory and the tenant's quota (actors/quota.hpp):
// its live sandboxes (and creates waiting for room), their cpu limits and memory requests.
field_error check_quota(const node_state& st, const std::string& tenant, const wire::CreateSandbox& msg) {
  const auto& cfg = st.ctx->config;
  const uint64_t cpu = msg.cpu_millis() == 0 ? cfg.default_cpu_millis : msg.cpu_millis();
  const uint64_t mem_limit = msg.memory_mib() == 0 ? cfg.default_memory_mib : msg.memory_mib();
  const uint64_t mem_request = msg.memory_request_mib() == 0 ? cfg.default_memory_request_mib
                                                              : msg.memory_request_mib();
  uint64_t node_requests = 0;
  uint32_t sandboxes = 0;
  uint64_t cpu_sum = 0, mem_sum = 0;
  auto count = [&](const storage::sandbox_record& r) {
    node_requests += r.memory_request_mib;
    if (r.tenant != tenant) return;
    ++sandboxes;
    cpu_sum += r.cpu_millis;
    mem_sum += r.memory_request_mib;
  };
  for (const auto& [id, e] : st.sandboxes)
    if (!wire::is_terminal(e.summary.rec.state)) count(e.summary.rec);
  for (const auto& c : st.waiting) count(c.rec);
  for (const auto& [id, w] : st.warm)
    if (!w.ended) node_requests += cfg.default_memory_request_mib;
  if (cfg.memory_capacity_mib > 0) {
    if (mem_limit > cfg.memory_capacity_mib)
      return {wire::ErrorCode::resource_exhausted, "memory_mib",
              "more than this node can hold (" + std::to_string(cfg.memory_capacity_mib) + " MiB)"};
    if (node_requests + mem_request > cfg.memory_capacity_mib)
      return {wire::ErrorCode::resource_exhausted, "memory_request_mib",
              "this node cannot hold it now (" + std::to_string(node_requests) + " of " +
                  std::to_string(cfg.memory_capacity_mib) + " MiB requested)"};
  }
  if (st.ctx->quotas == nullptr) return {};
  const tenant_quota q = st.ctx->quotas->quota_of(tenant);
  if (sandboxes + 1 > q.sandboxes)
    return {wire::ErrorCode::resource_exhausted, "quota",
            "the tenant's quota of " + std::to_string(q.sandboxes) + " live sandboxes is reached"};
  if (q.cpu_millis > 0 && cpu_sum + cpu > q.cpu_millis)
    return {wire::ErrorCode::resource_exhausted, "cpu_millis",
            "over the tenant's quota of " + std::to_string(q.cpu_millis) + " millicores (" +
                std::to_string(cpu_sum) + " held)"};
  if (q.memory_mib > 0 && mem_sum + mem_request > q.memory_mib)
    return {wire::ErrorCode::resource_exhausted, "memory_request_mib",
            "over the tenant's quota of " + std::to_string(q.memory_mib) + " MiB (" +
                std::to_string(mem_sum) + " held)"};
  return {};
}

void on_create(node_self self, verb::create& req) {
  auto& st = self->state;
  const auto& cfg = st.ctx->config;
  const std::string& tenant = req.tenant;
  const wire::CreateSandbox* msg = &*req.msg;
  auto fail = [&](wire::ErrorCode code, const std::string& field, const std::string& why) {
    reply(self, req.reply, wire::make_error_reply(code, field + ": " + why, field));
  };
  if (auto e = check_create(cfg, *msg)) return fail(e.code, e.field, e.why);
  const std::string name(wire::str(msg->name()));
  if (auto e = check_quota(st, tenant, *msg)) return fail(e.code, e.field, e.why);
  if (st.draining)
    return reply(self, req.reply,
                 wire::make_error_reply(wire::ErrorCode::unavailable, "executor is draining"));
  if (!name.empty()) {
    auto taken = [&](const storage::sandbox_record& r) {
      return r.tenant == tenant && r.name == name && !wire::is_terminal(r.state);
    };
    bool clash = std::any_of(st.waiting.begin(), st.waiting.end(),
                             [&](const pending_create& c) { return taken(c.rec); });
    for (const auto& [id, e] : st.sandboxes) clash = clash || taken(e.summary.rec);
    if (clash)
      return fail(wire::ErrorCode::already_exists, "name",
                  "a live sandbox of this tenant is named " + name);
  }
  storage::sandbox_record rec = create_record(cfg, tenant, *msg);
  // The warm pool holds sandboxes of the default shape: the host image, nothing started in them.
  // (Limits other than the default ones are applied when one is handed out.)
  const bool poolable = rec.image == "host" && rec.entrypoint.empty() && rec.ready;
  place(self, pending_create{std::move(rec), req.reply, poolable});
}

void on_list(node_self self, verb::list& req) {
  auto& st = self->state;
  const std::string& tenant = req.tenant;
  const wire::ListSandboxes* filter = req.filter ? &**req.filter : nullptr;
  flatbuffers::FlatBufferBuilder fbb(4096);
  std::vector<flatbuffers::Offset<wire::SandboxInfo>> infos;
  std::vector<const storage::sandbox_record*> hits;
  for (const auto& [id, e] : st.sandboxes)
    if (e.summary.rec.tenant == tenant && list_matches(e.summary.rec, filter)) hits.push_back(&e.summary.rec);
  std::sort(hits.begin(), hits.end(), [](auto* a, auto* b) {
    return a->created_at_ms != b->created_at_ms ? a->created_at_ms < b->created_at_ms : a->id < b->id;
  });
  // One reply must fit one message (wire::max_message_bytes): stop before the cap (clients
  // page by filters).
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
                                   st.ctx->clk->now_ms(), tags, count_pool(st).ready),
             wire::HeartbeatIdentifier());
  st.ctx->out->publish_heartbeat(st.ctx->config.node_id, wire::release(fbb));
}

void expire_ended(node_self self) {
  auto& st = self->state;
  const auto now = st.ctx->clk->now_ms();
  for (auto it = st.sandboxes.begin(); it != st.sandboxes.end();) {
    const auto& s = it->second.summary;
    if (wire::is_terminal(s.rec.state) && s.rec.ended_at_ms + st.ctx->config.output_retention_ms < now &&
        st.output_dropped.count(s.rec.id) == 0) {
      // Output retention: the records stay (info, wait, and replay answers "expired").
      if (auto status = st.ctx->store->delete_output(s.rec.id); status.ok()) {
        st.output_dropped.insert(s.rec.id);
        if (st.ctx->ledger != nullptr) st.ctx->ledger->forget(s.rec.id);
      } else
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
      if (st.ctx->ledger != nullptr) st.ctx->ledger->forget(s.rec.id);
      self->send_exit(it->second.actor, caf::exit_reason::user_shutdown);
      it = st.sandboxes.erase(it);
    } else {
      ++it;
    }
  }
}

// A recovered sandbox's stored output counts against its quotas again (oldest first, as stored).
void count_stored_output(node_state& st, const storage::sandbox_record& rec) {
  if (st.ctx->ledger == nullptr) return;
  auto processes = st.ctx->store->list_processes(rec.id);
  if (!processes) return;
  for (const auto& p : processes->records) {
    auto sizes = st.ctx->store->output_sizes(rec.id, p.exec_id);
    if (!sizes) continue;
    for (const auto& c : *sizes) st.ctx->ledger->stored(rec.tenant, rec.id, p.exec_id, c.seq, c.bytes);
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
    st.held += ended ? 0 : 1;
    self->send(st.meter, summary_atom::value, sandbox_summary{rec, !ended});  // metering
    st.ctx->router->attach_sandbox(rec.tenant, rec.id, caf::actor_cast<caf::actor>(actor));
    count_stored_output(st, rec);
  }
  // What the runtime has on the host: listed off the actor's thread, judged by the node when the
  // list arrives (host_atom), so a sandbox created meanwhile is never taken for an orphan.
  auto rt = st.ctx->rt;
  auto node = caf::actor_cast<caf::actor>(self);
  self->spawn<caf::detached>(run_job, std::function<void()>([rt, node] {
    caf::anon_send(node, host_atom::value, rt->list_host_sandboxes());
  }));
  pump(self);  // the warm pool boots, within what the recovered sandboxes leave of capacity
  return static_cast<uint32_t>(st.sandboxes.size());
}

node_actor::behavior_type node_impl(node_self self, context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  self->state.meter = spawn_usage_meter(self, self->state.ctx);  // metering
  // Shutdown: the node takes its sandbox actors with it (they keep their sandboxes running).
  self->set_exit_handler([=](caf::exit_msg& m) {
    for (auto& [id, e] : self->state.sandboxes) self->send_exit(e.actor, m.reason);
    for (auto& [id, w] : self->state.warm) self->send_exit(w.actor, m.reason);  // they destroy theirs
    self->quit(m.reason);
  });
  self->delayed_send(self, std::chrono::milliseconds(self->state.ctx->config.heartbeat_interval_ms),
                     tick_atom::value);
  return {
      [=](verb::create& req) { on_create(self, req); },
      [=](verb::list& req) { on_list(self, req); },
      [=](summary_atom, sandbox_summary& s) {
        if (s.warm) return on_warm_summary(self, s);
        auto it = self->state.sandboxes.find(s.rec.id);
        if (it == self->state.sandboxes.end()) return;
        self->send(self->state.meter, summary_atom::value, s);  // metering
        auto& held = self->state.held;
        held = held - (it->second.summary.holds_resources ? 1 : 0) + (s.holds_resources ? 1 : 0);
        it->second.summary = std::move(s);
        pump(self);
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
          if (st.warm.count(id) > 0) continue;  // this process's warm pool
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
        auto& st = self->state;
        st.draining = true;
        for (auto& [id, w] : st.warm) {
          if (w.ended) continue;
          w.ended = true;
          w.ready = false;
          self->send(w.actor, retire_atom::value);
        }
        for (auto& c : st.waiting)
          reply(self, c.reply,
                wire::make_error_reply(wire::ErrorCode::unavailable, "executor is draining"));
        st.waiting.clear();
        update_accepting(self);
      },
      [=](refill_atom) {
        self->state.refill_paused = false;
        pump(self);
      },
      [=](stats_atom) -> node_stats {
        node_stats out;
        const auto& st = self->state;
        out.sandboxes = static_cast<uint32_t>(st.sandboxes.size());
        out.holding = holding(st);
        for (const auto& [id, e] : st.sandboxes)
          out.running += e.summary.rec.state == wire::SandboxState::running ? 1 : 0;
        out.accepting = st.accepting;
        const auto pool = count_pool(st);
        out.warm = pool.live;
        out.warm_ready = pool.ready;
        out.waiting = static_cast<uint32_t>(st.waiting.size());
        return out;
      },
  };
}

}  // namespace

node_actor spawn_node(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(node_impl, std::move(ctx));
}

}  // namespace corral
