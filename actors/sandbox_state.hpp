#pragma once
// The sandbox actor's state and the functions of its concerns, one file each:
//   sandbox.cpp              the behavior: which message goes to which function
//   sandbox_lifecycle.cpp    start, stored transitions, running, ending, timers, teardown
//   sandbox_init_events.cpp  what corral-init sends (the listener and the actor's side)
//   sandbox_exec.cpp         exec start, quotas on execs, verbs for a running exec, exec end
//   sandbox_queries.cpp      info, wait, replay, tags
//   sandbox_probe.cpp        the readiness probe
//   sandbox_warm.cpp         the warm pool: pre-started command, claim, retire
// Internal to those files (the actor's interface is actors/sandbox.hpp). Every function runs on
// the actor's thread.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "actors/files.hpp"
#include "actors/process.hpp"
#include "actors/sandbox.hpp"
#include "actors/sandbox_init_events.hpp"
#include "actors/wire_build.hpp"

namespace corral::sandbox_detail {

struct waiter {
  reply_handle reply;
  bool until_ready = false;  // answered once the readiness probe passed, not only at the end
};

struct sandbox_state {
  context_ptr ctx;
  storage::sandbox_record rec;
  caf::actor node;
  reply_handle create_reply;      // answered once the sandbox is ready (or failed)
  sandbox_start_mode mode = sandbox_start_mode::create;
  std::shared_ptr<init_link> link;
  bool holds_resources = true;
  bool destroying = false;
  bool ready = false;  // init answered our Hello
  std::unordered_map<std::string, process_actor> processes;  // live execs by exec id
  // The same by init handle, read by the init listener (actors/sandbox_init_events.hpp).
  std::shared_ptr<exec_routes> routes = std::make_shared<exec_routes>();
  // New execs per second (tenant_quota::execs_per_second): a token bucket, full at the start.
  double exec_tokens = -1;  // < 0: not filled yet
  int64_t exec_tokens_at_ms = 0;
  // Bytes of argv and env in this sandbox's stored exec records (tenant_quota::
  // sandbox_exec_record_bytes); < 0: not counted yet (counted from the store at the first exec).
  int64_t exec_record_bytes = -1;
  std::map<uint64_t, waiter> waiters;
  file_ops files;  // fs.* requests waiting for init
  int64_t last_active_ms = 0;  // last exec start/end or stdin write (idle timeout)
  uint64_t probes = 0;         // readiness probe attempts so far
  uint64_t next_waiter = 1;
  // The cpu and memory limits the runtime started it with (a claim applies others).
  uint32_t booted_cpu_millis = 0;
  uint32_t booted_memory_mib = 0;
  // A warm sandbox's pre-started command (node_config::warm_prestart), held by init until the
  // first exec adopts it; 0 when there is none (any more).
  uint64_t held_handle = 0;
  static inline const char* name = "sandbox";
};

using sandbox_self = sandbox_actor::stateful_pointer<sandbox_state>;

// Start-up deadline: runtime start plus init's HelloAck.
inline constexpr std::chrono::seconds start_deadline{60};

// The exec id of a sandbox's entrypoint command: its output is replayable like any exec's, and
// its end ends the sandbox with its exit code.
inline constexpr const char* entrypoint_exec_id = "entrypoint";

// Why a sandbox ends: asked for (terminate), or a fact (it died, its time is up, ...).
enum class end_kind { requested, fact };

// -- shared (sandbox.cpp) ------------------------------------------------------------------------
void reply(sandbox_self self, const reply_handle& to, bytes payload);
void reply_error(sandbox_self self, const reply_handle& to, wire::ErrorCode code,
                 std::string_view message, std::string_view field = {});
// Reports the record to the node (summary_atom).
void notify_node(sandbox_self self);

// -- lifecycle (sandbox_lifecycle.cpp) ----------------------------------------------------------
// Starts (create, warm) or adopts (recover) the sandbox, or only restores an ended one.
void start(sandbox_self self);
[[nodiscard]] status persist(sandbox_self self, const storage::sandbox_record& stored);
status end_sandbox(sandbox_self self, wire::SandboxState state, std::optional<int32_t> return_code,
                   std::string message, const process_end_cause& cause,
                   end_kind kind = end_kind::fact);
void become_running(sandbox_self self);
void on_started(sandbox_self self, runtime::started& res);
void on_link_down(sandbox_self self, close_reason why, const std::string& detail);
void on_destroyed(sandbox_self self);
void on_lifetime(sandbox_self self);
void on_start_timeout(sandbox_self self);
void on_idle(sandbox_self self);
void arm_idle_timer(sandbox_self self);
void on_terminate(sandbox_self self, const verb::terminate& req);
void end_orphaned_execs(sandbox_self self);
bool end_orphaned_execs_impl(sandbox_self self);
void on_exit(sandbox_self self, caf::exit_msg& m);

// -- init events (sandbox_init_events.cpp) -------------------------------------------------------
// A frame that is not about one process: HelloAck, a file result, or one that does not verify.
void on_init_frame(sandbox_self self, const bytes& payload);

// -- execs (sandbox_exec.cpp) --------------------------------------------------------------------
std::string start_process(sandbox_self self, storage::process_record& proc,
                          const pty_options& pty);
void on_exec(sandbox_self self, verb::exec& req);
void to_exec(sandbox_self self, verb::stdin_write& req);
void to_exec(sandbox_self self, verb::signal& req);
void to_exec(sandbox_self self, verb::resize& req);
void on_proc_done(sandbox_self self, const storage::process_record& proc);

// -- queries (sandbox_queries.cpp) ---------------------------------------------------------------
void on_info(sandbox_self self, const verb::info& req);
void on_wait(sandbox_self self, const verb::wait& req);
void on_wait_timeout(sandbox_self self, uint64_t waiter_id);
void on_replay(sandbox_self self, const verb::replay& req);
void on_tags(sandbox_self self, const verb::tags& req);
void answer_ready_waiters(sandbox_self self);

// -- readiness probe (sandbox_probe.cpp) ---------------------------------------------------------
bool is_probe(const std::string& exec_id);
void start_probe(sandbox_self self);
void on_probe_done(sandbox_self self, const storage::process_record& proc);

// -- warm pool (sandbox_warm.cpp) ----------------------------------------------------------------
void prestart(sandbox_self self);
bool on_claim(sandbox_self self, sandbox_claim& c);
void on_retire(sandbox_self self);
void on_limits(sandbox_self self, const std::string& error);

}  // namespace corral::sandbox_detail
