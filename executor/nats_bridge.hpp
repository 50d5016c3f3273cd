#pragma once
// The executor's NATS adapters: the outbox the actors publish through, and the router that
// turns subscriptions into the actors' typed verbs (executor/request_decode.hpp; nats.c delivery
// threads -> CAF mailboxes). A request that does not decode is answered here.
#include <mutex>
#include <string>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/ports.hpp"
#include "actors/router.hpp"
#include "bus/connection.hpp"

namespace corral {

// Publishes through the shared connection: a reply on its handle's inbox, output on
// corral.v1.{t}.sbx.{sb}.out.{ex}, heartbeats on corral.v1.node.{node}.heartbeat. Thread-safe.
// A failed publish (disconnected with a full reconnect buffer, payload too large) is counted and
// logged, never thrown.
class nats_outbox final : public outbox {
 public:
  explicit nats_outbox(bus::connection& conn) : conn_(conn) {}
  void reply(const reply_handle& to, std::vector<uint8_t> message) override;
  void publish_output(const exec_address& exec, std::vector<uint8_t> frame) override;
  void publish_heartbeat(const std::string& node_id, std::vector<uint8_t> heartbeat) override;
  [[nodiscard]] uint64_t failures() const;

 private:
  void publish(const std::string& subject, std::vector<uint8_t> payload);
  bus::connection& conn_;
  mutable std::mutex mu_;
  uint64_t failures_ = 0;
};

// Subscriptions of one executor: per-sandbox op subjects, the pool's create queue group (while
// the node accepts creates), this node's own create subject corral.v1.*.node.{node}.create
// (always, from start() to stop(): at capacity the node answers it resource_exhausted), and
// the any-tenant list subject. Thread-safe. Handlers decode and enqueue into an actor's mailbox.
class nats_router final : public request_router {
 public:
  nats_router(bus::connection& conn, std::string pool, std::string node_id);
  ~nats_router() override;

  // Routes lists and this node's creates to the node actor; call once before recovery.
  [[nodiscard]] bool start(caf::actor node, std::string* error);
  void attach_sandbox(const std::string& tenant, const std::string& id, caf::actor sandbox) override;
  void detach_sandbox(const std::string& tenant, const std::string& id) override;
  void accept_creates(bool on) override;
  void serve_usage(caf::actor meter) override;  // metering: corral.v1.*.usage
  // Drops every subscription (shutdown). Idempotent.
  void stop();

 private:
  bus::connection& conn_;
  const std::string pool_;
  const std::string node_id_;
  caf::actor node_;
  std::mutex mu_;
  bool stopped_ = false;
  std::unique_ptr<bus::subscription> create_sub_;
  std::unique_ptr<bus::subscription> list_sub_;
  std::unique_ptr<bus::subscription> node_create_sub_;
  std::unique_ptr<bus::subscription> usage_sub_;  // metering
  // Per sandbox: its ops (corral.v1.{t}.sbx.{sb}.*) and its file ops (...fs.*).
  struct sandbox_routes {
    std::unique_ptr<bus::subscription> ops;
    std::unique_ptr<bus::subscription> fs;
  };
  std::unordered_map<std::string, sandbox_routes> sandbox_subs_;
};

}  // namespace corral
