#pragma once
// corral's NATS client for the command line: typed calls over the public protocol
// (DESIGN.md §3). One instance per command; not thread-safe except where noted.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bus/connection.hpp"
#include "schemas/codec.hpp"

namespace corral::cli {

struct call_error {
  wire::ErrorCode code = wire::ErrorCode::ok;
  std::string message;
  std::string field;
};

struct sandbox_view {
  std::string id, tenant, name, node, image, message;
  wire::SandboxState state = wire::SandboxState::pending;
  int64_t created_at_ms = 0, started_at_ms = 0, ended_at_ms = 0, timeout_ms = 0;
  bool has_return_code = false;
  int32_t return_code = 0;
  std::vector<std::pair<std::string, std::string>> tags;
};

struct create_options {
  std::string name;
  int64_t timeout_ms = 0;
  uint32_t cpu_millis = 0;
  uint32_t memory_mib = 0;
  std::string workdir;
  std::vector<std::pair<std::string, std::string>> tags;
  std::vector<std::pair<std::string, std::string>> env;
};

struct exec_options {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  std::string workdir;
  int64_t timeout_ms = 0;
  bool stdin_open = false;
  std::string exec_id;  // empty = a fresh one
};

struct exec_result {
  wire::Outcome outcome = wire::Outcome::internal;
  int32_t exit_code = 255;  // shell convention
  int32_t signal = 0;
  std::string message;
  uint64_t stdout_bytes = 0, stderr_bytes = 0;
};

template <class T>
struct outcome {
  std::optional<T> value;
  call_error error;
  explicit operator bool() const { return value.has_value(); }
};

class client {
 public:
  struct config {
    std::string nats_url = "nats://127.0.0.1:4222";
    std::string tenant = "default";
    std::string pool = "default";
    int64_t request_timeout_ms = 30000;
  };
  static std::unique_ptr<client> connect(const config& cfg, std::string* error);

  outcome<sandbox_view> create(const create_options& opts);
  outcome<sandbox_view> info(const std::string& id);
  outcome<sandbox_view> terminate(const std::string& id);
  outcome<sandbox_view> wait(const std::string& id, int64_t timeout_ms);
  outcome<std::vector<sandbox_view>> list(bool include_ended, const std::string& name,
                                          const std::vector<std::pair<std::string, std::string>>& tags);

  // Runs argv in the sandbox and streams its output, in order and gap-free, to on_output
  // (stream, bytes). stdin_source, when set, is called on a separate thread and returns the next
  // chunk of stdin, or nullopt at EOF. Returns when the exec has ended.
  using output_fn = std::function<void(wire::Stream, const uint8_t*, std::size_t)>;
  using stdin_fn = std::function<std::optional<std::vector<uint8_t>>()>;
  outcome<exec_result> exec(const std::string& sandbox_id, const exec_options& opts,
                            const output_fn& on_output, stdin_fn stdin_source = {});

  bus::connection& conn() { return *conn_; }
  const config& cfg() const { return cfg_; }

 private:
  client(config cfg, std::unique_ptr<bus::connection> conn);
  outcome<bus::message> call(const std::string& subject, const std::vector<uint8_t>& payload,
                             int64_t timeout_ms);
  outcome<sandbox_view> sandbox_call(const std::string& id, const std::string& op,
                                     const std::vector<uint8_t>& payload, int64_t timeout_ms);

  config cfg_;
  std::unique_ptr<bus::connection> conn_;
};

// "2.3s", "4m", "1h"
std::string format_age(int64_t ms);

}  // namespace corral::cli
