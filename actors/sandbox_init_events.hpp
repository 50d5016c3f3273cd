#pragma once
// What corral-init sends about one sandbox, and where it goes. The runtime calls the sandbox's
// init listener on its I/O thread; the listener sends an event about a process (Started, Output,
// Exited, SpawnFailed, StdinWritten) straight to the process actor that owns its handle, and
// everything else (HelloAck, file results, a frame that does not verify) to the sandbox actor.
// So an output chunk takes one actor hop from init to its publication: init -> link reactor ->
// process actor -> outbox.
//
// Order: each process's events reach its actor in the order init sent them, and before the
// sandbox learns the link closed (link_down), after which the sandbox ends its processes.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/ports.hpp"
#include "actors/process.hpp"

namespace corral {

// The process actors of one sandbox by init handle. The sandbox actor adds one before it sends
// the Spawn and removes it once the process has ended; the listener reads it. Thread-safe.
class exec_routes {
 public:
  void add(uint64_t handle, process_actor process);
  void remove(uint64_t handle);
  void clear();
  // The actor of the handle; null when there is none (never started, or ended).
  [[nodiscard]] process_actor find(uint64_t handle) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, process_actor> by_handle_;
};

// The sandbox actor's init listener. `sandbox` receives (frame_atom, bytes) for the frames that
// are not about one process, and (link_down_atom, close_reason, std::string) once.
class sandbox_init_listener final : public init_listener {
 public:
  sandbox_init_listener(caf::actor sandbox, std::shared_ptr<const exec_routes> routes)
      : sandbox_(std::move(sandbox)), routes_(std::move(routes)) {}
  void on_frame(std::vector<uint8_t> payload) override;
  void on_closed(close_reason reason, std::string detail) override;

 private:
  caf::actor sandbox_;
  std::shared_ptr<const exec_routes> routes_;
};

}  // namespace corral
