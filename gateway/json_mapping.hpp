#pragma once
// The HTTP API's JSON and query values (docs/openapi.yaml) in the protocol's terms, and back:
// request bodies to create options, sandboxes and exit statuses to JSON, wire error codes to HTTP
// statuses. Pure functions; the routes (gateway/api.cpp) use them.
//
// The body readers throw std::invalid_argument on a field of the wrong type or range; the route
// that calls them answers 400 with its message (nothing escapes the gateway's routing).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/status.hpp>
#include <nlohmann/json.hpp>

#include "client/client.hpp"
#include "schemas/codec.hpp"
#include "schemas/status.hpp"

namespace corral::gateway {

using json = nlohmann::json;
using pairs = std::vector<std::pair<std::string, std::string>>;

// The HTTP status that answers a wire error code.
[[nodiscard]] boost::beast::http::status status_of(wire::ErrorCode c);
// {"error": {"code": …, "message": …}}
[[nodiscard]] json error_json(wire::ErrorCode code, const std::string& message);
// A query component: %XX and '+' decoded.
[[nodiscard]] std::string percent_decode(std::string_view s);
[[nodiscard]] json sandbox_json(const client::sandbox_view& v);
// An exit status as the API shows it (null: internal, returncode 255).
[[nodiscard]] json exit_json(const wire::ExitStatus* s);
// Compact JSON; invalid UTF-8 replaced, never an exception.
[[nodiscard]] std::string dump(const json& j);

// Body fields (absent: empty or 0). Throw std::invalid_argument when the type or range is wrong.
[[nodiscard]] pairs pairs_of(const json& j, const char* field);
[[nodiscard]] std::vector<std::string> strings_of(const json& j, const char* field);
// Seconds (a number) as milliseconds.
[[nodiscard]] int64_t ms_of(const json& j, const char* field);
[[nodiscard]] uint32_t uint_of(const json& j, const char* field, double scale = 1);
[[nodiscard]] client::create_options create_options_of(const json& j);

// A query parameter of seconds ("2", "0.5") as milliseconds, at most max_ms. Anything else (a
// sign, an exponent, inf, nan, more than max_ms) is invalid_argument, decided before any
// conversion that could overflow.
[[nodiscard]] result<int64_t> seconds_param_ms(const std::string& text, int64_t max_ms);

}  // namespace corral::gateway
