#include "actors/usage.hpp"

#include <algorithm>
#include <map>

#include "actors/wire_build.hpp"
#include "schemas/ids.hpp"

namespace corral {

namespace {

constexpr double bytes_per_gib = 1024.0 * 1024.0 * 1024.0;

struct metered {
  storage::usage_record rec;
  storage::sandbox_record sandbox;  // last summary; id empty when only the usage row is known
  bool holds_resources = false;
  bool dirty = false;
};

struct usage_state {
  context_ptr ctx;
  std::map<std::string, metered> sandboxes;  // by sandbox id
  static inline const char* name = "usage_meter";
};

using usage_self = usage_actor::stateful_pointer<usage_state>;

// The sandbox's requests (create options), else the node's defaults; cpu never below the
// billing minimum.
double cpu_request_cores(const node_config& cfg, const storage::sandbox_record& rec) {
  const uint32_t asked =
      rec.cpu_request_millis != 0 ? rec.cpu_request_millis : cfg.default_cpu_request_millis;
  return std::max(asked, cfg.min_cpu_request_millis) / 1000.0;
}

double memory_request_gib(const node_config& cfg, const storage::sandbox_record& rec) {
  const uint32_t asked =
      rec.memory_request_mib != 0 ? rec.memory_request_mib : cfg.default_memory_request_mib;
  return asked / 1024.0;
}

// Folds one sample taken at `at_ms` into m.rec.
void bill(const node_config& cfg, metered& m, const sandbox_usage& u, int64_t at_ms) {
  auto& r = m.rec;
  if (r.last_sample_ms == 0) {
    // First sample: bill from the start; the cgroup's cpu counter started at zero.
    r.last_sample_ms = m.sandbox.started_at_ms > 0 ? m.sandbox.started_at_ms : at_ms;
    r.last_cpu_usage_ns = 0;
  }
  if (at_ms <= r.last_sample_ms) return;
  const double seconds = static_cast<double>(at_ms - r.last_sample_ms) / 1000.0;
  // Zeros mean the runtime could not read the cgroups (e.g. already removed): bill the
  // requests and keep the last counter. A counter below the last one means a new cgroup
  // (should not happen): count it from zero.
  const bool unknown = u.cpu_usage_ns == 0 && u.memory_bytes == 0;
  const uint64_t cpu_ns = unknown                                  ? 0
                          : u.cpu_usage_ns >= r.last_cpu_usage_ns ? u.cpu_usage_ns - r.last_cpu_usage_ns
                                                                   : u.cpu_usage_ns;
  const double core_s =
      std::max(cpu_request_cores(cfg, m.sandbox) * seconds, static_cast<double>(cpu_ns) / 1e9);
  const double gib_s = std::max(memory_request_gib(cfg, m.sandbox),
                                static_cast<double>(u.memory_bytes) / bytes_per_gib) *
                       seconds;
  r.cpu_core_seconds += core_s;
  r.gib_seconds += gib_s;
  r.cost += core_s * cfg.price_per_core_second + gib_s * cfg.price_per_gib_second;
  r.last_sample_ms = at_ms;
  if (!unknown) r.last_cpu_usage_ns = u.cpu_usage_ns;
  m.dirty = true;
}

bool billable(const metered& m) {
  return !m.sandbox.id.empty() && m.holds_resources &&
         m.sandbox.state == wire::SandboxState::running;
}

void persist(usage_self self) {
  auto& st = self->state;
  std::vector<storage::usage_record> changed;
  for (auto& [id, m] : st.sandboxes) {
    if (!m.dirty) continue;
    changed.push_back(m.rec);
    m.dirty = false;
  }
  if (changed.empty()) return;
  auto status = st.ctx->store->put_usage(changed);
  if (!status.ok()) {
    caf::aout(self) << "usage: could not store " << changed.size()
                    << " records: " << status.message << "\n";
    for (const auto& r : changed) st.sandboxes[r.sandbox_id].dirty = true;  // retry next tick
  }
}

uint32_t sample_all(usage_self self) {
  auto& st = self->state;
  const auto now = st.ctx->clk->now_ms();
  uint32_t n = 0;
  for (auto it = st.sandboxes.begin(); it != st.sandboxes.end();) {
    auto& m = it->second;
    if (billable(m)) {
      bill(st.ctx->config, m, st.ctx->rt->usage(it->first), now);
      ++n;
    }
    // The node's retention deleted the sandbox (and its usage row): forget it.
    const bool expired = !m.sandbox.id.empty() && wire::is_terminal(m.sandbox.state) &&
                         !m.dirty && m.sandbox.ended_at_ms + st.ctx->config.retention_ms < now;
    it = expired ? st.sandboxes.erase(it) : std::next(it);
  }
  persist(self);
  return n;
}

void on_summary(usage_self self, sandbox_summary& s) {
  auto& st = self->state;
  auto& m = st.sandboxes[s.rec.id];
  const bool was_billable = billable(m);
  if (m.rec.sandbox_id.empty()) {
    m.rec.sandbox_id = s.rec.id;
    m.rec.tenant = s.rec.tenant;
  }
  const bool ended_now = was_billable && wire::is_terminal(s.rec.state);
  m.sandbox = std::move(s.rec);
  m.holds_resources = s.holds_resources;
  if (ended_now && m.holds_resources) {
    // Last sample while the cgroups still exist, up to the end.
    const auto end = m.sandbox.ended_at_ms > 0 ? m.sandbox.ended_at_ms : st.ctx->clk->now_ms();
    bill(st.ctx->config, m, st.ctx->rt->usage(m.sandbox.id), end);
    persist(self);
  }
}

void add(flatbuffers::FlatBufferBuilder& fbb, std::vector<flatbuffers::Offset<wire::SandboxUsage>>& out,
         const storage::usage_record& r) {
  auto id = fbb.CreateString(r.sandbox_id);
  auto amount = wire::CreateUsageAmount(fbb, r.cpu_core_seconds, r.gib_seconds, r.cost);
  out.push_back(wire::CreateSandboxUsage(fbb, id, amount));
}

void on_request(usage_self self, verb::usage& req) {
  auto& st = self->state;
  if (req.reply.empty()) return;
  const std::string& tenant = req.tenant;
  const std::string& only = req.sandbox_id;
  flatbuffers::FlatBufferBuilder fbb(4096);
  std::vector<flatbuffers::Offset<wire::SandboxUsage>> items;
  storage::usage_record total;
  std::size_t approx = 0;
  for (const auto& [id, m] : st.sandboxes) {
    if (m.rec.tenant != tenant || (!only.empty() && id != only)) continue;
    total.cpu_core_seconds += m.rec.cpu_core_seconds;
    total.gib_seconds += m.rec.gib_seconds;
    total.cost += m.rec.cost;
    // One reply must fit one message (wire::max_message_bytes): the total always counts
    // every sandbox.
    approx += 96 + id.size();
    if (approx <= wire::max_message_bytes / 2) add(fbb, items, m.rec);
  }
  auto node = fbb.CreateString(st.ctx->config.node_id);
  auto vec = fbb.CreateVector(items);
  auto sum = wire::CreateUsageAmount(fbb, total.cpu_core_seconds, total.gib_seconds, total.cost);
  fbb.Finish(wire::CreateUsageReply(fbb, node, vec, sum), wire::UsageReplyIdentifier());
  st.ctx->out->reply(req.reply, wire::release(fbb));
}

usage_actor::behavior_type usage_impl(usage_self self, context_ptr ctx) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  // Ends with its node whatever the reason (a linked actor ignores a `normal` exit by default).
  self->set_exit_handler([=](caf::exit_msg& m) { self->quit(m.reason); });
  auto stored = st.ctx->store->list_usage();
  if (stored) {
    for (auto& r : stored->records) st.sandboxes[r.sandbox_id].rec = std::move(r);
    for (const auto& id : stored->undecodable)
      caf::aout(self) << "usage: record " << id << " does not decode; left alone\n";
  } else {
    caf::aout(self) << "usage: cannot load records: " << stored.error().message << "\n";
  }
  if (st.ctx->router != nullptr) st.ctx->router->serve_usage(caf::actor_cast<caf::actor>(self));
  const auto interval = std::chrono::milliseconds(st.ctx->config.usage_sample_interval_ms);
  self->delayed_send(self, interval, tick_atom::value);
  return {
      [=](summary_atom, sandbox_summary& s) { on_summary(self, s); },
      [=](verb::usage& req) { on_request(self, req); },
      [=](tick_atom) {
        (void)sample_all(self);
        self->delayed_send(self, interval, tick_atom::value);
      },
      [=](sample_atom) -> uint32_t { return sample_all(self); },
      [=](usage_atom, const std::string& id) -> storage::usage_record {
        auto it = self->state.sandboxes.find(id);
        return it == self->state.sandboxes.end() ? storage::usage_record{} : it->second.rec;
      },
  };
}

}  // namespace

usage_actor spawn_usage_meter(caf::local_actor* parent, context_ptr ctx) {
  return parent->spawn<caf::linked>(usage_impl, std::move(ctx));
}

}  // namespace corral
