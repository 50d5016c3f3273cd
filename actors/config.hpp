#pragma once
// Limits and defaults of one executor node. Every limit is a named value with a default;
// validate() is called once at start-up and names the first bad field.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace corral {

struct node_config {
  std::string node_id;                         // required; a token ([A-Za-z0-9_-])
  std::string pool = "default";                // placement pool (queue group per pool)
  // What this node advertises in its heartbeats, e.g. {"gpu", "H100"}.
  std::vector<std::pair<std::string, std::string>> tags;
  uint32_t max_sandboxes = 32;                 // sandboxes holding host resources at once
  // Warm pool: sandboxes of the default shape (host image, default limits, no entrypoint or
  // probe) booted ahead of demand and handed out on create; they count in max_sandboxes and
  // the pool never grows past it. 0 disables the pool.
  uint32_t warm_pool = 2;
  static constexpr uint32_t max_warm_pool = 256;
  // A command every warm sandbox starts once booted, before any tenant has it (the executor's
  // job runner puts its guest runner here: a lease then finds it up). init holds it: it runs,
  // nothing of it is reported and its output waits, until the sandbox's first exec asks for
  // exactly this command (argv, environment, workdir, stdin open, no pty) and takes it over. A
  // claim by a create without the tag key warm_prestart_tag kills it first, so an ordinary
  // sandbox never sees it. Empty: nothing is started.
  std::vector<std::string> warm_prestart;
  std::string warm_prestart_tag = "corral.job-runner";
  // A create with this tag (key, value) borrows the warm sandbox it is handed: the pool boots
  // its replacement only when that sandbox ends, or at once when a create without the tag
  // arrives (then every outstanding loan is refilled). The executor's job runner tags its fresh
  // leases so: a sweep holds its leases for its whole run, and booting their replacements at its
  // start took ~10% of a 500-program sweep on 2 cores, for sandboxes nobody had asked for yet.
  // Tags are the tenant's to set: a tenant that sets this one only delays refills until the
  // next create of anyone else. An empty key: every claim is refilled at once.
  std::pair<std::string, std::string> warm_loan_tag;
  // After a warm sandbox fails to boot, the pool waits this long before the next boot, doubling
  // on every further failure up to the maximum (a broken runtime is not retried in a hot loop).
  int64_t warm_retry_min_ms = 500;
  int64_t warm_retry_max_ms = 60'000;
  int64_t default_timeout_ms = 300'000;        // sandbox lifetime when the client gives none
  int64_t max_timeout_ms = 24LL * 3600 * 1000; // longest lifetime a client may ask for
  // A sandbox's long polls: each `wait` is answered within max_wait_ms (clients wait longer in
  // rounds), before the message bus drops its reply mapping (15 minutes); past max_waiters
  // waiting at once a new one is refused at once (each holds a reply mapping).
  int64_t max_wait_ms = 10 * 60 * 1000;
  uint32_t max_waiters = 256;
  // Stdin writes whose acks wait for init to catch up, per process; past it, refused at once.
  uint32_t max_held_stdin_acks = 256;
  uint32_t default_cpu_millis = 1000;          // cgroup cpu limit when the client gives none
  uint32_t max_cpu_millis = 2000;
  // Smallest cpu limit a client may ask for: a gVisor sandbox's sentry runs inside the same
  // limit, and below a tenth of a core a `python3 -c pass` takes seconds (at 2 millicores an exec
  // never seemed to end).
  uint32_t min_cpu_millis = 100;
  uint32_t default_memory_mib = 1024;          // cgroup memory limit when the client gives none
  uint32_t max_memory_mib = 16384;
  uint32_t pids_limit = 1024;                  // processes per sandbox
  // Memory the node admits: the sum of its sandboxes' memory requests (warm ones included), and
  // any one sandbox's limit, stay within it; creates beyond are refused resource_exhausted
  // (docs/security.md, "Fair share"). The executor sets it from the host's memory less a reserve
  // for itself and the host's services; 0: not checked.
  uint64_t memory_capacity_mib = 0;
  uint32_t default_cpu_request_millis = 125;   // billed at least this (Modal's minimum)
  int64_t default_probe_interval_ms = 100;     // readiness probe attempts
  int64_t min_probe_interval_ms = 10;
  std::size_t max_argv_bytes = 64 * 1024;      // sum of argv string sizes of one exec
  std::size_t max_argv_count = 4096;
  std::size_t max_env_bytes = 64 * 1024;       // sum of key and value sizes of one exec's env
  std::size_t max_env_count = 1024;
  std::size_t max_path_bytes = 4096;           // workdir
  std::size_t max_tags = 64;
  std::size_t max_tag_bytes = 256;             // per key and per value
  std::size_t max_stdin_write_bytes = 512 * 1024;
  // Stdin flow control: once this many bytes are sent to init but not yet written into the
  // process's pipe, a StdinWrite is acknowledged only when init catches up (clients wait for
  // the ack before sending more). Writes that would put more than stdin_max_in_flight_bytes in
  // flight are refused: corral-init buffers at most 4 MiB per process.
  std::size_t stdin_window_bytes = 1024 * 1024;
  std::size_t stdin_max_in_flight_bytes = 3 * 1024 * 1024;
  std::size_t replay_batch_bytes = 4 * 1024 * 1024;  // output replayed per replay request
  // Output kept per exec (stdout + stderr). Past it the process tree is killed and the exec
  // ends with status output_limit; the stream stops exactly at the cap.
  uint64_t max_output_bytes = 64ULL * 1024 * 1024;
  int64_t heartbeat_interval_ms = 2000;
  int64_t output_retention_ms = 24LL * 3600 * 1000;  // output of ended sandboxes kept this long
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;     // ended sandboxes' records kept this long
  int64_t exec_kill_grace_ms = 5000;           // after a kill, how long to wait for init's Exited
  // An exec's terminal status whose synced write failed is written again this often, up to
  // exec_store_attempts writes in all, before its ExecExit is published; past the last attempt
  // it is published unstored (a client is never left waiting; recovery ends the stored record
  // as executor_lost).
  int64_t exec_store_retry_ms = 500;
  int exec_store_attempts = 20;
  int64_t destroy_watchdog_ms = 30'000;        // a runtime destroy slower than this is logged
  // File operations (verb::fs), done by corral-init inside the sandbox.
  // Bytes of one fs.read (length 0 asks for this much; more is too_large). corral-init reads at
  // most its own fs-max-read-bytes (512 KiB by default) per call: clients go on from next_offset.
  std::size_t fs_max_read_bytes = 512 * 1024;
  std::size_t fs_max_write_bytes = 512 * 1024;  // data of one fs.write; more is too_large
  uint32_t fs_max_list_entries = 1000;          // entries per fs.list reply (larger asks clamped)
  uint32_t fs_max_remove_entries = 10000;       // entries one fs.remove call deletes at most
  uint32_t fs_max_pending_calls = 16;           // per sandbox, waiting for init; then resource_exhausted
  // Metering (actors/usage.hpp). Billed per interval on max(request, actual).
  int64_t usage_sample_interval_ms = 1000;     // how often running sandboxes are sampled
  double price_per_core_second = 0.00003942;   // cost of one CPU core for one second
  double price_per_gib_second = 0.00000672;    // cost of one GiB of memory for one second
  uint32_t min_cpu_request_millis = 125;       // cpu billed at least this (0.125 core)
  uint32_t default_memory_request_mib = 128;   // memory request when the sandbox has none

  // Empty when valid; otherwise "field: reason".
  [[nodiscard]] std::string validate() const;
};

}  // namespace corral
