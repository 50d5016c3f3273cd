#pragma once
// Child subreaping for processes that run runsc.
//
// `runsc run --detach` leaves the sandbox and gofer processes behind as orphans. They reparent
// to the nearest child subreaper, and `runsc delete` polls until they are gone, zombies
// included: when the host's init reaps them late, every delete takes ~1.5 s. A process that
// runs runsc should therefore be a subreaper that reaps its orphans promptly.
//
// start_orphan_reaper() sets PR_SET_CHILD_SUBREAPER and starts (once per process) a thread that
// reaps every zombie child EXCEPT the children that corral code is waiting for itself: those
// are registered for their lifetime (see register_child below) and reaped by their owner.
//
// Contract for the rest of the process: code that spawns a child and wants its exit status
// must register it (hold a child_registration from before the child can exit until after it is
// reaped), or the reaper may take the status first. The runtime's own spawns do this, and also
// tolerate a foreign reaper (an exit status taken by someone else is reported as unknown and
// the runtime verifies the outcome with `runsc state` instead).
#include <string>

namespace corral {

// Idempotent and thread-safe. Returns an error text when prctl fails (the reaper thread is then
// not started).
[[nodiscard]] std::string start_orphan_reaper();

// Reaps, now and without blocking, every zombie child that nobody registered. For processes
// that reap from their own loop (e.g. on SIGCHLD) instead of running the reaper thread.
void reap_unregistered_children();

}  // namespace corral
