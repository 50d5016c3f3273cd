#pragma once
// The bridge's decoding of clients' requests into the actors' typed verbs (actors/requests.hpp):
// which verb a subject names (subjects are read here and in schemas/subjects, nowhere in
// actors/), and the payload verified, once, as that verb's wire table. Pure functions with no
// NATS in them, so the tests decode exactly as the executor does.
//
// A request that does not decode gets a refusal: the ErrorReply to answer it with. Codes:
// malformed (the payload is not the verb's table), invalid_argument (unknown verb, an invalid
// tenant token, a signal out of range).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "actors/requests.hpp"

namespace corral::bridge {

struct refusal {
  wire::ErrorCode code = wire::ErrorCode::internal;
  std::string message;
  std::string field;  // may be empty
  reply_handle to;    // where to answer it (empty: nobody waits)
  // The ErrorReply that answers the request.
  [[nodiscard]] std::vector<uint8_t> reply() const;
};

// Either the verb or why the request was refused.
template <class T>
struct decoded {
  std::optional<T> verb;
  refusal refused;  // when !verb
  explicit operator bool() const { return verb.has_value(); }
};

using sandbox_verb =
    std::variant<verb::info, verb::exec, verb::stdin_write, verb::signal, verb::resize,
                 verb::terminate, verb::wait, verb::replay, verb::tags, verb::fs>;

// A request on corral.v1.{t}.sbx.{sb}.{op} (op: info, exec, stdin, signal, resize, terminate,
// wait, replay, tags) or corral.v1.{t}.sbx.{sb}.fs.{op} (read, write, list, stat, mkdir, remove).
[[nodiscard]] decoded<sandbox_verb> decode_sandbox_request(std::string_view subject,
                                                           std::vector<uint8_t> data,
                                                           reply_handle reply);
// corral.v1.{t}.pool.{pool}.create and corral.v1.{t}.node.{node}.create.
[[nodiscard]] decoded<verb::create> decode_create(std::string_view subject,
                                                    std::vector<uint8_t> data, reply_handle reply);
// corral.v1.{t}.list (an empty payload lists every live sandbox).
[[nodiscard]] decoded<verb::list> decode_list(std::string_view subject,
                                                std::vector<uint8_t> data, reply_handle reply);
// corral.v1.{t}.usage (an empty payload asks for all of the tenant's sandboxes).
[[nodiscard]] decoded<verb::usage> decode_usage(std::string_view subject,
                                                  std::vector<uint8_t> data, reply_handle reply);

}  // namespace corral::bridge
