#pragma once
// Runs a blocking call (a runtime start, adopt or destroy: hundreds of milliseconds) on its own
// detached thread so it never occupies one of the scheduler's few worker threads, then reports
// back to an actor by message.
#include <functional>
#include <utility>

#include <caf/all.hpp>

#include "actors/messages.hpp"

namespace corral {

// The detached thread's body. The job travels as a spawn argument: CAF 0.17 dereferences a
// null argument tuple for function actors spawned without arguments (UBSan reports it).
inline void run_job(caf::blocking_actor*, std::function<void()> job) { job(); }

// Runs fn(), then sends `done` to target.
template <class F>
void run_blocking(caf::local_actor* self, F fn, caf::actor target, caf::message done) {
  self->spawn<caf::detached>(run_job, std::function<void()>([fn = std::move(fn),
                                                              target = std::move(target),
                                                              done = std::move(done)]() mutable {
    fn();
    caf::anon_send(target, std::move(done));
  }));
}

// Runs fn() (returning runtime::started) and sends (started_atom, result) to self.
template <class Self, class F>
void run_blocking_result(Self* self, F fn) {
  auto target = caf::actor_cast<caf::actor>(self);
  self->template spawn<caf::detached>(
      run_job, std::function<void()>([fn = std::move(fn), target]() mutable {
        caf::anon_send(target, started_atom::value, fn());
      }));
}

}  // namespace corral
