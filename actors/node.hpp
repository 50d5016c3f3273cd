#pragma once
// The node actor: one per executor. Owns capacity accounting (an executor at capacity leaves
// its pool's create queue group), the sandbox actors of this node, placement (create), list,
// heartbeats, retention, and recovery after a restart.
#include <cstdint>

#include <caf/all.hpp>

#include "actors/context.hpp"
#include "actors/messages.hpp"

namespace corral {

struct node_stats {
  uint32_t sandboxes = 0;        // actors (live and ended within retention)
  uint32_t holding = 0;          // sandboxes holding host resources
  uint32_t running = 0;          // in state running
  bool accepting = false;        // in the create queue group
};

}  // namespace corral

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::node_stats)

namespace corral {

using node_actor = caf::typed_actor<
    // corral.v1.{t}.pool.{pool}.create and corral.v1.{t}.list requests.
    caf::reacts_to<create_atom, bus_request>, caf::reacts_to<list_atom, bus_request>,
    // A sandbox's record changed.
    caf::reacts_to<summary_atom, sandbox_summary>,
    // Reload records, adopt or end what the previous executor process left, clean orphans.
    // Replies once every sandbox actor is spawned (recovery of each goes on in the background).
    caf::replies_to<recover_atom>::with<uint32_t>,
    // Periodic: heartbeat, retention.
    caf::reacts_to<tick_atom>,
    // The sandboxes the runtime found on the host at recovery (orphan cleanup).
    caf::reacts_to<host_atom, std::vector<std::string>>,
    // Stop taking creates (SIGTERM).
    caf::reacts_to<drain_atom>,
    caf::replies_to<stats_atom>::with<node_stats>>;

node_actor spawn_node(caf::actor_system& sys, context_ptr ctx);

}  // namespace corral
