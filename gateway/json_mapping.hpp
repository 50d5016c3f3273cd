#pragma once
// The HTTP API's JSON and query values (docs/openapi.yaml) in the protocol's terms, and back:
// request bodies to create options, sandboxes and exit statuses to JSON, wire error codes to HTTP
// statuses. Pure functions; the routes (gateway/api.cpp) use them.
//
// The body readers answer invalid_argument (with the field's name in status::field) on a field of
// the wrong type or range; the route that calls them answers 400 with its message. Nothing here
// throws (docs/architecture.md, "Results and errors").
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

// Body fields (absent: empty or 0). invalid_argument when the type or range is wrong.
[[nodiscard]] result<pairs> pairs_of(const json& j, const char* field);
[[nodiscard]] result<std::vector<std::string>> strings_of(const json& j, const char* field);
// Seconds (a number) as milliseconds.
[[nodiscard]] result<int64_t> ms_of(const json& j, const char* field);
[[nodiscard]] result<uint32_t> uint_of(const json& j, const char* field, double scale = 1);
// A string or a boolean field; `absent` when the body has none.
[[nodiscard]] result<std::string> string_of(const json& j, const char* field,
                                            const std::string& absent = {});
[[nodiscard]] result<bool> bool_of(const json& j, const char* field, bool absent);
[[nodiscard]] result<client::create_options> create_options_of(const json& j);

// Reads body fields in turn and keeps the first error: after `take(ms_of(j, "timeout"), ms)` and
// more, error() is the first field's that did not fit (ok when all did); fields after a failed
// one are not kept.
class body_reader {
 public:
  template <class T, class U>
  void take(result<T>&& r, U& out) {
    if (!first_.ok()) return;
    if (!r) first_ = r.error();
    else out = std::move(r).value();
  }
  bool ok() const { return first_.ok(); }
  const status& error() const { return first_; }

 private:
  status first_;
};

// A query parameter offset=N: a decimal number (as strtoull reads it), else invalid_argument.
[[nodiscard]] result<uint64_t> offset_param(const std::string& text);

// A query parameter of seconds ("2", "0.5") as milliseconds, at most max_ms. Anything else (a
// sign, an exponent, inf, nan, more than max_ms) is invalid_argument, decided before any
// conversion that could overflow.
[[nodiscard]] result<int64_t> seconds_param_ms(const std::string& text, int64_t max_ms);

}  // namespace corral::gateway
