#pragma once
// Validation of client input shared by the node (create) and sandbox (exec, tags) actors.
// Every check names the offending field and the error code to answer with; untrusted input
// never reaches an assert (RELIABILITY.md P9).
#include <string>

#include <flatbuffers/flatbuffers.h>

#include "actors/config.hpp"
#include "schemas/codec.hpp"

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

}  // namespace corral
