#pragma once
// The process actor: one per exec. Owns the exec's output sequence numbers and byte offsets,
// its stdin, its per-exec timeout and its single terminal status (docs/architecture.md).
//
// Every output chunk is stored (unsynced, batched by RocksDB's WAL) before it is published on
// the exec's output stream (outbox::publish_output); the terminal status is stored with
// sync=true before the ExecExit frame is published. When the process has ended the actor tells its sandbox
// (proc_done_atom), which then shuts it down: a finished exec is answered from the store.
#include <memory>

#include <caf/all.hpp>

#include "actors/context.hpp"
#include "actors/messages.hpp"
#include "storage/records.hpp"

namespace corral {

using process_actor = caf::typed_actor<
    // An event corral-init sent about this process (from the sandbox's init listener, in the
    // order init sent them: actors/sandbox_init_events.hpp).
    caf::reacts_to<event_atom, init_process_event>,
    // The process is ended from outside (sandbox terminated, timed out, lost): no more events.
    caf::reacts_to<end_atom, process_end_cause>,
    // Client verbs about this exec, handed on by its sandbox. exec: re-attach, answered with its
    // ExecReply (never a second process). stdin: an Ack once init has the data (held while more
    // than stdin_window_bytes wait to be written), or an ErrorReply. signal, resize: an Ack once
    // the link took the command. Once the exec has finished, each is failed_precondition.
    caf::reacts_to<verb::exec>, caf::reacts_to<verb::stdin_write>,
    caf::reacts_to<verb::signal>, caf::reacts_to<verb::resize>,
    // Per-exec timeout and kill-grace timers; the next write of a terminal status whose synced
    // write failed (attempt number).
    caf::reacts_to<timeout_atom, uint64_t>, caf::reacts_to<store_atom, int>>;

// Starts the exec's actor. The record is already stored (sync) and the Spawn frame is the
// sandbox's to send. `sandbox` receives (proc_done_atom, the finished record) when the process has ended.
process_actor spawn_process(caf::local_actor* parent, context_ptr ctx, std::string tenant,
                            storage::process_record rec, std::shared_ptr<init_link> link,
                            caf::actor sandbox);

}  // namespace corral
