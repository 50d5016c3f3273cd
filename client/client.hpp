#pragma once
// corral's client of its own protocol over NATS (docs/architecture.md): typed calls on sandboxes,
// execs (with the follower that puts their output in order, client/output_sequencer.hpp), files
// and job queues. The CLI uses a session per command; the executor's job runner shares one per
// tenant among its threads.
//
// Threads: a session is thread-safe. Its configuration and connection are fixed when it is made
// (both const) and bus::connection is thread-safe, so any thread may call any method, at the
// same time as others; each call waits on its own request or subscription. Callbacks run on the
// calling thread, except exec's stdin_source, which runs on a thread of its own.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bus/connection.hpp"
#include "schemas/codec.hpp"
#include "schemas/status.hpp"

namespace corral::client {

struct sandbox_view {
  std::string id, tenant, name, node, image, message;
  wire::SandboxState state = wire::SandboxState::pending;
  int64_t created_at_ms = 0, started_at_ms = 0, ended_at_ms = 0, timeout_ms = 0;
  bool has_return_code = false;
  int32_t return_code = 0;
  std::vector<std::pair<std::string, std::string>> tags;
  bool ready = false;
};

struct create_options {
  std::string name;
  int64_t timeout_ms = 0;
  uint32_t cpu_millis = 0;
  uint32_t memory_mib = 0;
  std::string workdir;
  std::vector<std::pair<std::string, std::string>> tags;
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> entrypoint;  // empty: the sandbox waits for execs
  int64_t idle_timeout_ms = 0;
  uint32_t cpu_request_millis = 0;
  uint32_t memory_request_mib = 0;
  std::vector<std::string> probe_command;
  int32_t probe_tcp_port = 0;
  int64_t probe_interval_ms = 0;
  std::string node;  // set: placed on this executor (corral.v1.{t}.node.{node}.create), not the pool
};

struct exec_options {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  std::string workdir;
  int64_t timeout_ms = 0;
  bool stdin_open = false;
  std::string exec_id;  // empty = a fresh one
  bool pty = false;     // a pseudo-terminal: stderr merged into stdout
  uint16_t rows = 0, cols = 0;
  // With pty: asked by exec() while the exec runs (at least every window_poll_ms, and after
  // each frame of output) whether the terminal changed size; true with the new size, which
  // exec() then sends (a ResizeRequest on corral.v1.{t}.sbx.{sb}.resize). Empty: the size stays.
  std::function<bool(uint16_t& rows, uint16_t& cols)> window_changed;
  static constexpr int64_t window_poll_ms = 100;
};

struct exec_result {
  wire::Outcome outcome = wire::Outcome::internal;
  int32_t exit_code = 255;  // shell convention
  int32_t signal = 0;
  std::string message;
  uint64_t stdout_bytes = 0, stderr_bytes = 0;
};

// One file as the sandbox sees it (lstat).
struct fs_entry_view {
  std::string name;
  wire::FsFileType type = wire::FsFileType::unknown;
  uint64_t size = 0;
  uint32_t mode = 0;  // permission bits
  int64_t mtime_ms = 0;
};

// One FsRequest (schemas/fs_request.fbs).
struct fs_request_options {
  std::string path;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<uint8_t> data;
  bool create = true, truncate = false, append = false, exclusive = false;
  bool parents = false, recursive = false;
  uint32_t mode = 0;
};

// One FsReply (schemas/fs_reply.fbs).
struct fs_reply_view {
  std::vector<uint8_t> data;
  std::vector<fs_entry_view> entries;
  std::optional<fs_entry_view> stat;
  bool eof = false;
  uint64_t next_offset = 0;
  uint64_t count = 0;
};

// Metered use (corral.v1.{t}.usage): billed on max(request, actual).
struct usage_amount {
  double cpu_core_seconds = 0, gib_seconds = 0, cost = 0;
};
struct sandbox_usage_view {
  std::string sandbox_id, node;
  usage_amount usage;
};
// Every executor's answer gathered: per sandbox, and the tenant's total.
struct usage_report {
  std::vector<sandbox_usage_view> sandboxes;
  usage_amount total;
};

enum class request_kind;  // client/errors.hpp

class session {
 public:
  struct config {
    std::string nats_url = "nats://127.0.0.1:4222";
    // The tenant's NATS nkey seed file (docs/security.md); empty: no credentials (a server
    // that requires them refuses the connection). Replies come to the tenant's own inbox
    // (wire::subjects::tenant_inbox_prefix), the only one its permissions let it read.
    std::string nats_creds;
    std::string nats_ca;       // TLS: the CA (PEM) that verifies the server; empty: plain TCP
    std::string inbox_prefix;  // empty: the tenant's own; a service sets its own (the gateway)
    std::string tenant = "default";
    std::string pool = "default";
    int64_t request_timeout_ms = 30000;
    std::size_t fs_write_chunk_bytes = 256 * 1024;  // data per fs.write request
  };
  static std::unique_ptr<session> connect(const config& cfg, std::string* error);
  // A client over a connection shared with others (e.g. one client per tenant in the executor's
  // job runner). Null when the tenant is not a valid token.
  static std::unique_ptr<session> over(std::shared_ptr<bus::connection> conn, const config& cfg);

  result<sandbox_view> create(const create_options& opts);
  result<sandbox_view> info(const std::string& id);
  result<sandbox_view> terminate(const std::string& id);
  // Waits for the end (or, with until_ready, for the readiness probe to pass).
  result<sandbox_view> wait(const std::string& id, int64_t timeout_ms, bool until_ready = false);
  // Replaces the sandbox's tags (set) or reads them.
  result<sandbox_view> tags(const std::string& id,
                            const std::optional<std::vector<std::pair<std::string, std::string>>>& set);
  result<std::vector<sandbox_view>> list(bool include_ended, const std::string& name,
                                         const std::vector<std::pair<std::string, std::string>>& tags);

  // Usage of this client's tenant, gathered from every executor; only one sandbox when
  // sandbox_id is set. No executor answering is an empty report.
  result<usage_report> usage(const std::string& sandbox_id = {});

  // Runs argv in the sandbox and streams its output, in order and gap-free, to on_output
  // (stream, bytes). stdin_source, when set, is called on a separate thread and returns the next
  // chunk of stdin, or nullopt at EOF. Returns when the exec has ended.
  using output_fn = std::function<void(wire::Stream, const uint8_t*, std::size_t)>;
  using stdin_fn = std::function<std::optional<std::vector<uint8_t>>()>;
  result<exec_result> exec(const std::string& sandbox_id, const exec_options& opts,
                           const output_fn& on_output, stdin_fn stdin_source = {});

  // One StdinWrite to a running exec started with stdin_open (and no stdin_source): waits for
  // its acknowledgement (flow control). eof closes the process's stdin after the data.
  status stdin_write(const std::string& sandbox_id, const std::string& exec_id,
                     const uint8_t* data, std::size_t n, bool eof);

  // File operations (corral.v1.{t}.sbx.{sb}.fs.*). fs_call is one request; the others loop
  // over the executor's per-request caps (offsets, continuation) until the whole job is done.
  result<fs_reply_view> fs_call(const std::string& sandbox_id, const std::string& op,
                                const fs_request_options& request);
  // Streams the file to sink chunk by chunk until its end, or until max_bytes (0: no cap) have
  // been delivered. Returns the bytes delivered.
  using bytes_fn = std::function<void(const uint8_t*, std::size_t)>;
  result<uint64_t> fs_read(const std::string& sandbox_id, const std::string& path,
                           const bytes_fn& sink, uint64_t max_bytes = 0);
  // Writes what source yields (until nullopt) in chunks of at most fs_write_chunk_bytes: the
  // file is created or truncated first, or with append, appended to. Returns bytes written.
  result<uint64_t> fs_write(const std::string& sandbox_id, const std::string& path,
                            const stdin_fn& source, bool append);
  result<std::vector<fs_entry_view>> fs_list(const std::string& sandbox_id,
                                             const std::string& path);
  result<fs_entry_view> fs_stat(const std::string& sandbox_id, const std::string& path);
  status fs_mkdir(const std::string& sandbox_id, const std::string& path, bool parents);
  // Returns the number of entries removed.
  result<uint64_t> fs_remove(const std::string& sandbox_id, const std::string& path,
                             bool recursive);

  // Asks every executor to set up this tenant's job streams (corral.v1.{t}.setup.jobs) and
  // waits for the first answer: the queue can be published to once it returns ok.
  status setup_jobs();

  // Reads the stored results of a batch from stream sequence from_seq on (corral.v1.{t}.read.
  // results): on_result gets each stored JobResult's bytes, in stream order. Returns the
  // sequence to read from next and whether more were there than one answer carries.
  struct results_page {
    uint64_t next = 1;
    bool more = false;
  };
  result<results_page> read_results(const std::string& batch, uint64_t from_seq,
                                    const std::function<void(std::vector<uint8_t>&&)>& on_result);

  bus::connection& conn() { return *conn_; }
  const config& cfg() const { return cfg_; }

 private:
  session(config cfg, std::shared_ptr<bus::connection> conn);
  // One request; nobody answering, no answer in time and NATS failures become the wire error
  // of a request of this kind (client/errors.hpp), an ErrorReply the call's error.
  result<bus::message> call(const std::string& subject, const std::vector<uint8_t>& payload,
                            int64_t timeout_ms, request_kind kind, const std::string& what);
  result<sandbox_view> sandbox_call(const std::string& id, const std::string& op,
                                    const std::vector<uint8_t>& payload, int64_t timeout_ms);

  const config cfg_;
  const std::shared_ptr<bus::connection> conn_;
};

// "2.3s", "4m", "1h"
std::string format_age(int64_t ms);

}  // namespace corral::client
