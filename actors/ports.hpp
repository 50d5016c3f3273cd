#pragma once
// The ports the actors need from the world outside (docs/architecture.md): the runtime that runs a
// sandbox, the outbox that sends replies and output out, and the clock. executor/ implements them;
// tests use fakes. Nothing here includes executor/ code.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/requests.hpp"

namespace corral {

// What a runtime needs to start one sandbox.
struct sandbox_spec {
  std::string id;            // "sb-" id; fixed length, used as the container id
  std::string image;         // empty = the host default image
  uint32_t cpu_millis = 0;   // cgroup cpu limit in millicores; 0 = no limit
  uint32_t memory_mib = 0;   // cgroup memory limit; 0 = no limit
  uint32_t pids_limit = 0;   // cgroup pids limit; 0 = runtime default
  bool network = false;      // false: no network at all
  // A warm-pool boot: once booted, the sandbox waits at the lowest cpu weight, so that what it
  // runs ahead of demand takes only CPU that running sandboxes leave idle, until foreground().
  bool background = false;
};

// Why the link to a sandbox's corral-init closed.
enum class close_reason : uint8_t {
  died,           // the sandbox process ended, init's output closed, or the runtime ended it
  out_of_memory,  // its memory cgroup's OOM killer killed it (the host's limit kills the whole
                  // sandbox, never one process inside; its running execs end oom_killed)
};

// Receives what corral-init sends. Called on a runtime I/O thread; calls for one link never
// overlap. Implementations must not block (they forward to an actor).
class init_listener {
 public:
  virtual ~init_listener() = default;
  // One frame payload exactly as init sent it (unverified: the receiver verifies).
  virtual void on_frame(std::vector<uint8_t> payload) = 0;
  // The link is gone: init's output closed (the sandbox died) or the runtime tore it down.
  // Called at most once, after the last on_frame. `detail` says more, for people.
  virtual void on_closed(close_reason reason, std::string detail) = 0;
};

// The executor's side of the connection to one sandbox's corral-init.
class init_link {
 public:
  virtual ~init_link() = default;
  // Queues one payload (an InitCommand) to be framed and written to init. Thread-safe and
  // non-blocking. Returns false when the link is closed or its send queue is over its cap.
  [[nodiscard]] virtual bool send(std::vector<uint8_t> payload) = 0;
  // Stops delivering to the listener and closes the executor's ends. Does not stop the
  // sandbox. Idempotent.
  virtual void close() = 0;
};


struct sandbox_usage {
  uint64_t cpu_usage_ns = 0;    // cumulative CPU time of the sandbox's cgroup
  uint64_t memory_bytes = 0;    // current memory use
  bool oom_killed = false;      // the memory cgroup saw an OOM kill
};

// Runs sandboxes. Thread-safe. start/adopt/destroy block for up to a few hundred milliseconds:
// callers run them off the actor scheduler's threads.
class runtime {
 public:
  virtual ~runtime() = default;
  struct started {
    std::shared_ptr<init_link> link;
    std::string error;  // set (and link null) when the sandbox could not be started
  };
  // Creates and starts a sandbox whose PID 1 is corral-init and connects to it. On failure
  // nothing of the sandbox is left on the host.
  [[nodiscard]] virtual started start(const sandbox_spec& spec,
                                      std::shared_ptr<init_listener> listener) = 0;
  // Reconnects to a sandbox that an earlier executor process started, if it still runs.
  [[nodiscard]] virtual started adopt(const std::string& id,
                                      std::shared_ptr<init_listener> listener) = 0;
  // Kills the sandbox (its whole process tree) and removes all of it from the host: container,
  // cgroups, layers. Idempotent; safe for ids that never started.
  virtual void destroy(const std::string& id) = 0;
  // Ids of the sandboxes present on this host (running or not yet cleaned).
  [[nodiscard]] virtual std::vector<std::string> list_host_sandboxes() = 0;
  // Resource use sampled from the sandbox's cgroups; zeros when unknown.
  [[nodiscard]] virtual sandbox_usage usage(const std::string& id) = 0;
  // Changes the cpu and memory limits of a started sandbox, as start() applies them (0 = the
  // runtime's default). Used when a warm-pool sandbox, booted with the default limits, is handed
  // out for a create that asked for others. Empty on success, else why (the limits are then
  // unspecified: the caller ends the sandbox). Blocks briefly (a few cgroup file writes): callers
  // run it off the actor scheduler's threads. A memory limit below what the sandbox already
  // uses fails. This default implementation supports nothing.
  [[nodiscard]] virtual std::string update_limits(const std::string& id, uint32_t cpu_millis,
                                                  uint32_t memory_mib) {
    (void)id, (void)cpu_millis, (void)memory_mib;
    return "this runtime cannot change the limits of a started sandbox";
  }
  // Hands a sandbox started in the background (sandbox_spec::background) to a tenant: the normal
  // cpu weight, and its cpu usage counted from zero (what it used while warm is nobody's).
  // Empty on success. Blocks briefly, like update_limits. This default has nothing to change.
  [[nodiscard]] virtual std::string foreground(const std::string& id) {
    (void)id;
    return {};
  }
};

// What the actors send out, by meaning (the executor's bridge knows where each goes).
// Thread-safe, non-blocking; delivery is best-effort.
class outbox {
 public:
  virtual ~outbox() = default;
  // An answer to a request (a request may have several: a replay's frames, then its Ack).
  // Nothing when `to` is empty.
  virtual void reply(const reply_handle& to, std::vector<uint8_t> message) = 0;
  // A frame of an exec's output stream: an OutputChunk or its ExecExit.
  virtual void publish_output(const exec_address& exec, std::vector<uint8_t> frame) = 0;
  // This node's Heartbeat.
  virtual void publish_heartbeat(const std::string& node_id, std::vector<uint8_t> heartbeat) = 0;
};

// Wall clock in unix epoch milliseconds (injected so tests can control it).
class clock {
 public:
  virtual ~clock() = default;
  [[nodiscard]] virtual int64_t now_ms() const = 0;
};

}  // namespace corral
