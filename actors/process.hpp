#pragma once
// The process actor: one per exec. Owns the exec's output sequence numbers and byte offsets,
// its stdin, its per-exec timeout and its single terminal status (RELIABILITY.md P1, P3, P4).
//
// Every output chunk is stored (unsynced, batched by RocksDB's WAL) before it is published on
// corral.v1.{t}.sbx.{sb}.out.{ex}; the terminal status is stored with sync=true before the
// ExecExit frame is published. When the process has ended the actor tells its sandbox
// (proc_done_atom), which then shuts it down: a finished exec is answered from the store.
#include <memory>

#include <caf/all.hpp>

#include "actors/context.hpp"
#include "actors/messages.hpp"
#include "storage/records.hpp"

namespace corral {

using process_actor = caf::typed_actor<
    // An event corral-init sent about this process.
    caf::reacts_to<event_atom, init_process_event>,
    // The process is ended from outside (sandbox terminated, timed out, lost): no more events.
    caf::reacts_to<end_atom, process_end_cause>,
    // NATS requests about this exec: exec (re-attach), stdin, signal.
    caf::reacts_to<op_atom, bus_request>,
    // Per-exec timeout and kill-grace timers.
    caf::reacts_to<timeout_atom, uint64_t>>;

// Starts the exec's actor. The record is already stored (sync) and the Spawn frame is the
// sandbox's to send. `sandbox` receives (proc_done_atom, the finished record) when the process has ended.
process_actor spawn_process(caf::local_actor* parent, context_ptr ctx, std::string tenant,
                            storage::process_record rec, std::shared_ptr<init_link> link,
                            caf::actor sandbox);

}  // namespace corral
