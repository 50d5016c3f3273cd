#pragma once
// The sandbox actor: one per sandbox. Owns the lifecycle state machine
//   pending -> starting -> running -> exited | timed_out | terminated | failed
// the runtime handle (the link to corral-init), the lifetime timer and the live processes.
// Every transition is stored with sync=true before it is published or replied.
// An ended sandbox's actor stays to answer info/wait/replay until the node drops it after the
// retention period.
//
// Warm pool (sandbox_start_mode::warm): the node boots sandboxes of the default shape ahead of
// demand. Such a sandbox has no tenant and no stored record; it boots (starting) and then waits,
// booted but not running, with no lifetime or idle timer, reachable by nobody (the node attaches
// no routes). A claim hands it to a create: it takes the tenant's record, applies limits other
// than the default ones (runtime::update_limits), stores the record as running and answers the
// creator, and from then on is a sandbox like any created one (mode create). An unclaimed one
// that dies, or that the node retires, ends without any record and is destroyed; one whose
// actor exits (executor shutdown) is destroyed too.
#include <string>

#include <caf/all.hpp>

#include "actors/context.hpp"
#include "actors/messages.hpp"
#include "storage/records.hpp"

namespace corral {

using sandbox_actor = caf::typed_actor<
    // Client verbs (actors/requests.hpp); each is answered on its reply handle, with an
    // ErrorReply when refused.
    //   info: SandboxReply.   terminate: SandboxReply (terminated), once stored.
    //   wait: SandboxReply when it ends (or is ready, until_ready), or deadline_exceeded.
    //   tags: SandboxReply, after the new set is stored.
    //   exec: ExecReply once the exec is stored and spawned (a known exec id re-attaches);
    //     its output goes to its stream (outbox::publish_output).
    //   stdin, signal, resize: handed to the exec's process actor (actors/process.hpp).
    //   replay: the stored OutputChunks from from_seq (the ExecExit if reached), then an Ack.
    //   fs: FsReply when corral-init answers (actors/files.hpp).
    caf::reacts_to<verb::info>, caf::reacts_to<verb::exec>, caf::reacts_to<verb::stdin_write>,
    caf::reacts_to<verb::signal>, caf::reacts_to<verb::resize>,
    caf::reacts_to<verb::terminate>, caf::reacts_to<verb::wait>,
    caf::reacts_to<verb::replay>, caf::reacts_to<verb::tags>, caf::reacts_to<verb::fs>,
    // A frame from corral-init that is not about one process (those go to the process actor:
    // actors/sandbox_init_events.hpp); the link to it closed.
    caf::reacts_to<frame_atom, bytes>, caf::reacts_to<link_down_atom, close_reason, std::string>,
    // The runtime finished starting/adopting (link or error) or destroying the sandbox.
    caf::reacts_to<started_atom, runtime::started>, caf::reacts_to<destroyed_atom>,
    // Timers: lifetime end; start deadline; a waiter's deadline (waiter id).
    caf::reacts_to<lifetime_atom>, caf::reacts_to<timeout_atom>,
    caf::reacts_to<wait_atom, uint64_t>,
    // A process actor has ended: its finished record (as stored).
    caf::reacts_to<proc_done_atom, storage::process_record>,
    // Timers: idle timeout check; next readiness probe attempt.
    caf::reacts_to<idle_atom>, caf::reacts_to<probe_atom>,
    // Warm pool: hand out to a create (true: taken, it answers the creator; false: it can no
    // longer be claimed, it ended); retire unclaimed (re-reports its state to the node when it
    // has ended already); the runtime finished update_limits (error text, empty on success).
    caf::replies_to<claim_atom, sandbox_claim>::with<bool>, caf::reacts_to<retire_atom>,
    caf::reacts_to<limits_atom, std::string>>;
// It sends: its node (summary_atom, sandbox_summary) on every change of its record; its process
// actors the client verbs above and (end_atom, process_end_cause) when it ends.

enum class sandbox_start_mode {
  create,   // a new sandbox: start it and answer `create_reply` when ready
  recover,  // a sandbox that was live when the previous executor process stopped: adopt it
  ended,    // an ended sandbox: only answer queries
  warm,     // a warm-pool sandbox: start it, store nothing, wait for a claim (then as create)
};

// Spawns the actor for `rec` (already stored, except in mode warm). It reports every change of
// its record to `node` as (summary_atom, sandbox_summary).
sandbox_actor spawn_sandbox(caf::local_actor* parent, context_ptr ctx, storage::sandbox_record rec,
                            sandbox_start_mode mode, reply_handle create_reply, caf::actor node);

}  // namespace corral
