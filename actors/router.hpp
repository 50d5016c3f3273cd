#pragma once
// The port through which actors ask to be reached by clients' requests (implemented by the
// executor's bridge).
#include <string>

#include <caf/all.hpp>

namespace corral {

class request_router {
 public:
  virtual ~request_router() = default;
  // Routes the requests to sandbox `id` of `tenant` to the sandbox actor, as the typed verbs of
  // actors/requests.hpp. Replaces an earlier route of the same id. Thread-safe.
  virtual void attach_sandbox(const std::string& tenant, const std::string& id,
                              caf::actor sandbox) = 0;
  virtual void detach_sandbox(const std::string& tenant, const std::string& id) = 0;
  // Joins (true) or leaves (false) the pool's create queue group: an executor at capacity stops
  // taking creates so another member of the pool answers them.
  virtual void accept_creates(bool on) = 0;
  // Routes every tenant's usage requests to the usage meter as usage_request (actors/usage.hpp).
  // Called once, by the meter when it starts. Thread-safe.
  virtual void serve_usage(caf::actor meter) { (void)meter; }
};

}  // namespace corral
