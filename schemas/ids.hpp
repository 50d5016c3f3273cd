#pragma once
// Unguessable ids: a type prefix ("sb-", "ex-", "vo-", "im-") and 128 random bits in base62,
// always 22 characters after the prefix, so no id is a prefix of another (runsc matches
// container ids by prefix).
#include <string>
#include <string_view>

namespace corral::wire {

inline constexpr std::size_t id_random_chars = 22;

// Draws 128 bits from getrandom(2). Thread-safe.
[[nodiscard]] std::string new_id(std::string_view prefix);
// A new exec id ("ex-..."): what every side that mints one (a client, the gateway, a sandbox
// given an exec without one) calls.
[[nodiscard]] std::string new_exec_id();

// A subject token a client may choose (tenant, pool, node, exec id, names): 1..64 characters
// of [A-Za-z0-9_-]. Anything else could inject NATS wildcards or separators.
[[nodiscard]] bool valid_token(std::string_view s, std::size_t max_len = 64);

// An id of the given prefix as new_id makes it.
[[nodiscard]] bool valid_id(std::string_view id, std::string_view prefix);

}  // namespace corral::wire
