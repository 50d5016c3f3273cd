// corral node ls: the executors, as their heartbeats describe them (an operator's command: the
// heartbeats are on corral.v1.node.*.heartbeat, which tenants' credentials cannot read).
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>

#include "cli/commands/command.hpp"
#include "schemas/subjects.hpp"

namespace corral::cli {

namespace {

// Executors publish a heartbeat every 2 s (docs/protocol.md): listening a little longer hears
// every live one.
constexpr int64_t default_listen_ms = 2'500;
constexpr int64_t subscribe_flush_ms = 5'000;

struct node_view {
  std::string node, pool;
  uint32_t capacity = 0, running = 0, warm = 0;
  int64_t time_ms = 0;
  std::vector<std::pair<std::string, std::string>> tags;
};

int run(context& ctx, const args_t& args);

}  // namespace

extern const verb node_ls_verb{
    "node ls",
    "[--listen S] [--json]",
    "List the executors: pool, capacity, running and warm sandboxes, tags.",
    "From their heartbeats. An operator's command: it connects with --nats-creds, or by\n"
    "default with ./var/auth's operator identity (`corral up`'s layout).\n"
    "\n"
    "options:\n"
    "  --listen S  listen for heartbeats this long (default 2.5; executors send one every 2 s)\n"
    "  --json      one JSON document (docs/cli.md): {\"nodes\": [{node, pool, capacity, running,\n"
    "              warm, heartbeat_ms, tags ({K: V})}...]}, ordered by node\n"
    "\n"
    "columns: NODE, POOL, CAPACITY, RUNNING, WARM, SEEN (age of its last heartbeat), TAGS.\n",
    run};

namespace {

int run(context& ctx, const args_t& args) {
  const verb& v = node_ls_verb;
  bool json = false;
  int64_t listen_ms = default_listen_ms;
  std::string val;
  arg_reader r(args);
  while (r.next()) {
    if (r.is("--json")) json = true;
    else if (r.is("--listen")) {
      if (!r.value(val) || !parse_seconds(val, listen_ms)) return usage_error(v, "bad --listen");
    } else {
      return usage_error(v, "unknown argument " + r.arg());
    }
  }
  if (r.saw_separator()) return usage_error(v, "unknown argument --");
  auto conn = ctx.connect_operator();
  if (!conn) return exit_failed;

  std::mutex mu;
  std::map<std::string, node_view> nodes;  // the latest heartbeat of each
  const std::string subject = wire::subjects::heartbeat("*");
  auto sub = conn->subscribe(subject, "", [&](bus::message&& m) {
    const auto* h = wire::verify<wire::Heartbeat>(m.data.data(), m.data.size());
    if (h == nullptr) return;
    node_view n;
    n.node = std::string(wire::str(h->node()));
    n.pool = std::string(wire::str(h->pool()));
    n.capacity = h->capacity();
    n.running = h->running();
    n.warm = h->warm();
    n.time_ms = h->time_ms();
    n.tags = wire::pairs_of(h->tags());
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = nodes[n.node];
    if (n.time_ms >= slot.time_ms) slot = std::move(n);
  });
  if (!sub) return fail("cannot subscribe to " + subject + ": " + sub.error().message);
  if (auto st = conn->flush(subscribe_flush_ms); !st) return fail("NATS: " + st.error().message);
  {
    std::mutex wait_mu;
    std::condition_variable never;
    std::unique_lock<std::mutex> lock(wait_mu);
    never.wait_for(lock, std::chrono::milliseconds(listen_ms), [] { return false; });
  }
  sub.value()->unsubscribe();

  std::lock_guard<std::mutex> lock(mu);
  if (nodes.empty())
    std::cerr << "corral: no heartbeat in " << listen_ms / 1000.0
              << " s: no executor runs, or these credentials may not read " << subject
              << " (the operator's may)\n";
  if (json) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& [name, n] : nodes) {
      nlohmann::ordered_json j;
      j["node"] = n.node;
      j["pool"] = n.pool;
      j["capacity"] = n.capacity;
      j["running"] = n.running;
      j["warm"] = n.warm;
      j["heartbeat_ms"] = n.time_ms;
      nlohmann::ordered_json tags = nlohmann::ordered_json::object();
      for (const auto& [k, tv] : n.tags) tags[k] = tv;
      j["tags"] = std::move(tags);
      list.push_back(std::move(j));
    }
    nlohmann::ordered_json doc;
    doc["nodes"] = std::move(list);
    print_json(doc);
    return exit_ok;
  }
  std::printf("%-20s  %-12s  %8s  %7s  %4s  %6s  %s\n", "NODE", "POOL", "CAPACITY", "RUNNING",
              "WARM", "SEEN", "TAGS");
  const int64_t now = now_ms();
  for (const auto& [name, n] : nodes) {
    std::string tags;
    for (const auto& [k, tv] : n.tags) tags += (tags.empty() ? "" : ",") + k + "=" + tv;
    std::printf("%-20s  %-12s  %8u  %7u  %4u  %6s  %s\n", n.node.c_str(), n.pool.c_str(),
                n.capacity, n.running, n.warm, format_age(now - n.time_ms).c_str(),
                tags.empty() ? "-" : tags.c_str());
  }
  return exit_ok;
}

}  // namespace

}  // namespace corral::cli
