#pragma once
// The node actor: one per executor. Owns capacity accounting (an executor at capacity leaves
// its pool's create queue group), the sandbox actors of this node, the warm pool, placement
// (create), list, heartbeats, retention, and recovery after a restart.
//
// Warm pool (node_config::warm_pool): from recovery on, the node keeps up to warm_pool
// sandboxes of the default shape booted ahead of demand (sandbox_start_mode::warm), within
// max_sandboxes (they count in it). A poolable create (host image, no entrypoint, no probe) is
// handed a booted one (claim) and the pool refills in the background; any other create boots
// cold. When the node is full but holds warm sandboxes, a create still gets one: a poolable create
// waits for a booting one, another create waits for the room that a warm sandbox retired for it
// leaves. The node stays in the create queue group while it can serve a create that way.
// Unclaimed warm sandboxes have no tenant and no record: they are in no list, not metered, have
// no routes, and at recovery they are orphans (destroyed). Drain (SIGTERM) retires them. A warm
// sandbox that dies is replaced; boots that fail are retried with a growing delay. Each time the
// pool settles (every live warm sandbox booted) the node publishes a heartbeat.
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
  uint32_t warm = 0;             // unclaimed warm sandboxes in the pool (booting or booted)
  uint32_t warm_ready = 0;       // of which booted, ready to hand out
  uint32_t waiting = 0;          // creates waiting for a warm sandbox or for room
};

}  // namespace corral

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::node_stats)

namespace corral {

using node_actor = caf::typed_actor<
    // A create placed in the pool or on this node by name (answered alike): the new sandbox's
    // SandboxReply once it runs, or an ErrorReply. A list: the tenant's SandboxList.
    caf::reacts_to<verb::create>, caf::reacts_to<verb::list>,
    // A sandbox's record changed.
    caf::reacts_to<summary_atom, sandbox_summary>,
    // Reload records, adopt or end what the previous executor process left, clean orphans.
    // Replies once every sandbox actor is spawned (recovery of each goes on in the background).
    caf::replies_to<recover_atom>::with<uint32_t>,
    // Periodic: heartbeat, retention.
    caf::reacts_to<tick_atom>,
    // The sandboxes the runtime found on the host at recovery (orphan cleanup).
    caf::reacts_to<host_atom, std::vector<std::string>>,
    // Stop taking creates, retire the warm pool, refuse waiting creates (SIGTERM).
    caf::reacts_to<drain_atom>,
    // The warm pool's retry delay after failed boots is over.
    caf::reacts_to<refill_atom>,
    caf::replies_to<stats_atom>::with<node_stats>>;

node_actor spawn_node(caf::actor_system& sys, context_ptr ctx);

}  // namespace corral
