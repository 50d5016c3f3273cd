#pragma once
// Validation of client input shared by the node (create) and sandbox (exec, tags) actors.
// Every check names the offending field and the error code to answer with; untrusted input
// never reaches an assert (docs/architecture.md).
#include <optional>
#include <string>
#include <utility>

#include <flatbuffers/flatbuffers.h>

#include "actors/config.hpp"
#include "actors/messages.hpp"
#include "actors/wire_build.hpp"
#include "schemas/codec.hpp"
#include "storage/records.hpp"

namespace corral {

struct field_error {
  wire::ErrorCode code = wire::ErrorCode::ok;
  std::string field;
  std::string why;
  explicit operator bool() const { return code != wire::ErrorCode::ok; }
  // "field: why", the message of the ErrorReply.
  [[nodiscard]] std::string message() const { return field + ": " + why; }
};

using string_vector = flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>;
using pair_vector = flatbuffers::Vector<flatbuffers::Offset<wire::KeyValue>>;

// A command line: when `required`, non-empty; at most max_argv_count arguments and
// max_argv_bytes in all (too_large); a non-empty program name.
[[nodiscard]] field_error check_command(const node_config& cfg, const string_vector* argv,
                                        const std::string& field, bool required);
// An environment: at most max_env_count variables and max_env_bytes (too_large); names
// non-empty, without '=' or NUL.
[[nodiscard]] field_error check_env(const node_config& cfg, const pair_vector* env);
// Tags: at most max_tags; keys 1..max_tag_bytes, values at most max_tag_bytes.
[[nodiscard]] field_error check_tags(const node_config& cfg, const pair_vector* tags);
// An optional absolute path (empty is fine).
[[nodiscard]] field_error check_abs_path(const node_config& cfg, std::string_view path,
                                         const std::string& field);


// -- whole requests: what the node, sandbox and process actors check and read of a verified
// request before they act on it (pure: the state-dependent checks stay with the actors) --

// A CreateSandbox, field by field in this order: name, image, timeout_ms, entrypoint, env,
// workdir, cpu_millis, memory_mib, idle_timeout_ms, the requests against the limits,
// probe_command, probe_tcp_port, probe_interval_ms, tags.
[[nodiscard]] field_error check_create(const node_config& cfg, const wire::CreateSandbox& msg);
// The record of a sandbox that a checked CreateSandbox asks for, with the node's defaults in
// place of zeros: state pending, on this node; id, times and placement are the node's to set.
[[nodiscard]] storage::sandbox_record create_record(const node_config& cfg,
                                                    const std::string& tenant,
                                                    const wire::CreateSandbox& msg);
// An ExecRequest that starts a process (not attach_only) against the node's limits.
[[nodiscard]] field_error check_exec(const node_config& cfg, const wire::ExecRequest& req);
// The environment of a process: the sandbox's, overridden by the exec's, with PATH and HOME
// defaulted. Nothing of the executor's own environment.
[[nodiscard]] storage::string_pairs merged_env(const storage::string_pairs& sandbox_env,
                                               const storage::string_pairs& exec_env);
// Fills what a checked ExecRequest asks to run in `sandbox` into proc (argv, env merged with
// the sandbox's, workdir: the exec's, else the sandbox's, else "/", timeout_ms, stdin_open) and
// returns its terminal. The caller sets the ids and the handle.
[[nodiscard]] pty_options read_exec(const wire::ExecRequest& msg,
                                    const storage::sandbox_record& sandbox,
                                    storage::process_record& proc);
// Whether a sandbox is listed for a ListSandboxes filter (null: every live sandbox).
[[nodiscard]] bool list_matches(const storage::sandbox_record& r,
                                const wire::ListSandboxes* filter);
// A StdinWrite's data: at most max_stdin_write_bytes (too_large, field "data").
[[nodiscard]] field_error check_stdin_write(const node_config& cfg, const wire::StdinWrite& msg);
// A SignalRequest's signal: 1..64 (invalid_argument, field "signal").
[[nodiscard]] field_error check_signal(const wire::SignalRequest& msg);

// What the sandbox actor hands to a process actor for an InitEvent about a process (Started,
// Output, Exited, SpawnFailed, StdinWritten): the process's handle and the event; nullopt for
// the other events (HelloAck, FsResult).
[[nodiscard]] std::optional<std::pair<uint64_t, init_process_event>> process_event_of(
    const wire::InitEvent& event);

}  // namespace corral
