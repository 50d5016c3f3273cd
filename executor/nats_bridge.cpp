#include "executor/nats_bridge.hpp"

#include <atomic>
#include <type_traits>
#include <variant>
#include <iostream>

#include "actors/messages.hpp"
#include "actors/usage.hpp"  // metering
#include "executor/request_decode.hpp"
#include "schemas/subjects.hpp"

namespace corral {

void nats_outbox::reply(const reply_handle& to, std::vector<uint8_t> message) {
  if (!to.empty()) publish(to.address(), std::move(message));
}

void nats_outbox::publish_output(const exec_address& exec, std::vector<uint8_t> frame) {
  publish(wire::subjects::output(exec.tenant, exec.sandbox_id, exec.exec_id), std::move(frame));
}

void nats_outbox::publish_heartbeat(const std::string& node_id, std::vector<uint8_t> heartbeat) {
  publish(wire::subjects::heartbeat(node_id), std::move(heartbeat));
}

void nats_outbox::publish(const std::string& subject, std::vector<uint8_t> payload) {
  auto st = conn_.publish(subject, payload.data(), payload.size());
  if (!st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (failures_++ % 1000 == 0)
      std::cerr << "corral-executor: publish on " << subject << " failed: " << st.error().message << "\n";
  }
}

uint64_t nats_outbox::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

namespace {
// A request whose reply subject is not an inbox is dropped: answering it would publish the
// executor's bytes (e.g. a replay of stored output frames) onto a subject the requester chose,
// such as another tenant's output subject (docs/security.md, "Replies").
std::atomic<uint64_t> dropped_requests{0};

bool acceptable(const bus::message& m) {
  if (m.reply.empty() || wire::subjects::valid_reply(m.reply)) return true;
  if (dropped_requests++ % 1000 == 0)
    std::cerr << "corral-executor: dropped a request on " << m.subject
              << " whose reply subject is not an inbox\n";
  return false;
}

// Hands a decoded verb to its actor, or answers the refusal (when someone waits for it).
template <class Verb>
void deliver(bus::connection& conn, const caf::actor& to, bridge::decoded<Verb> d) {
  if (d.verb) {
    if constexpr (std::is_same_v<Verb, bridge::sandbox_verb>)
      std::visit([&](auto& verb) { caf::anon_send(to, std::move(verb)); }, *d.verb);
    else
      caf::anon_send(to, std::move(*d.verb));
    return;
  }
  if (d.refused.to.empty()) return;
  auto bytes = d.refused.reply();
  (void)conn.publish(d.refused.to.address(), bytes.data(), bytes.size());  // best effort
}

// Decodes a message with `decode` (executor/request_decode.hpp) and delivers it to `to`.
template <class Decode>
auto serve(bus::connection& conn, caf::actor to, Decode decode) {
  return [&conn, to, decode](bus::message&& m) {
    if (!acceptable(m)) return;
    deliver(conn, to, decode(m.subject, std::move(m.data), reply_handle(std::move(m.reply))));
  };
}
}  // namespace

nats_router::nats_router(bus::connection& conn, std::string pool, std::string node_id)
    : conn_(conn), pool_(std::move(pool)), node_id_(std::move(node_id)) {}

nats_router::~nats_router() { stop(); }

bool nats_router::start(caf::actor node, std::string* error) {
  node_ = node;
  auto sub = conn_.subscribe(wire::subjects::list_any_tenant(), "",
                             serve(conn_, node, bridge::decode_list));
  if (!sub) {
    if (error) *error = "subscribe list: " + sub.error().message;
    return false;
  }
  // Creates placed on this node by name: answered like pool creates, never left.
  auto direct = conn_.subscribe(wire::subjects::node_create_any_tenant(node_id_), "",
                                serve(conn_, node, bridge::decode_create));
  if (!direct) {
    if (error) *error = "subscribe node create: " + direct.error().message;
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  list_sub_ = std::move(sub).value();
  node_create_sub_ = std::move(direct).value();
  return true;
}

void nats_router::attach_sandbox(const std::string& tenant, const std::string& id,
                                 caf::actor sandbox) {
  auto handler = serve(conn_, sandbox, bridge::decode_sandbox_request);
  auto ops = conn_.subscribe(wire::subjects::sandbox_ops(tenant, id), "", handler);
  auto fs = conn_.subscribe(wire::subjects::sandbox_fs_ops(tenant, id), "", handler);
  if (!ops || !fs) {
    std::cerr << "corral-executor: cannot subscribe for " << id << ": " << ops.error().message << fs.error().message
              << "\n";
    return;
  }
  sandbox_routes old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    auto& slot = sandbox_subs_[id];
    old = std::move(slot);
    slot = sandbox_routes{std::move(ops).value(), std::move(fs).value()};
  }
  // `old` unsubscribes outside the lock.
}

void nats_router::detach_sandbox(const std::string&, const std::string& id) {
  sandbox_routes old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sandbox_subs_.find(id);
    if (it == sandbox_subs_.end()) return;
    old = std::move(it->second);
    sandbox_subs_.erase(it);
  }
}

void nats_router::accept_creates(bool on) {
  std::unique_ptr<bus::subscription> old;
  if (on) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_ || create_sub_) return;
    }
    auto node = node_;
    auto sub = conn_.subscribe(wire::subjects::create_any_tenant(pool_),
                               wire::subjects::create_queue_group(pool_),
                               serve(conn_, node, bridge::decode_create));
    if (!sub) {
      std::cerr << "corral-executor: cannot join the create queue group: " << sub.error().message << "\n";
      return;
    }
    // Make the interest known to the server before creates are expected to land here.
    (void)conn_.flush(2000);  // best effort: the subscription is valid either way
    std::lock_guard<std::mutex> lock(mu_);
    create_sub_ = std::move(sub).value();
  } else {
    std::lock_guard<std::mutex> lock(mu_);
    old = std::move(create_sub_);
  }
}

// Metering: the usage meter answers corral.v1.{t}.usage for every tenant.
void nats_router::serve_usage(caf::actor meter) {
  auto sub = conn_.subscribe(wire::subjects::usage_any_tenant(), "",
                             serve(conn_, meter, bridge::decode_usage));
  if (!sub) {
    std::cerr << "corral-executor: cannot subscribe to usage requests: " << sub.error().message << "\n";
    return;
  }
  std::unique_ptr<bus::subscription> old;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  old = std::move(usage_sub_);
  usage_sub_ = std::move(sub).value();
}

void nats_router::stop() {
  std::unordered_map<std::string, sandbox_routes> subs;
  std::unique_ptr<bus::subscription> create, list, usage, node_create;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    usage = std::move(usage_sub_);  // metering
    subs.swap(sandbox_subs_);
    create = std::move(create_sub_);
    list = std::move(list_sub_);
    node_create = std::move(node_create_sub_);
  }
}

}  // namespace corral
