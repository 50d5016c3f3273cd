#include "gateway/json_mapping.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace corral::gateway {

namespace http = boost::beast::http;

http::status status_of(wire::ErrorCode c) {
  switch (c) {
    case wire::ErrorCode::not_found: return http::status::not_found;
    case wire::ErrorCode::invalid_argument:
    case wire::ErrorCode::malformed:
    case wire::ErrorCode::is_a_directory:
    case wire::ErrorCode::not_a_directory: return http::status::bad_request;
    case wire::ErrorCode::too_large: return http::status::payload_too_large;
    case wire::ErrorCode::already_exists:
    case wire::ErrorCode::failed_precondition:
    case wire::ErrorCode::not_empty: return http::status::conflict;
    case wire::ErrorCode::permission_denied: return http::status::forbidden;
    case wire::ErrorCode::resource_exhausted: return http::status::too_many_requests;
    case wire::ErrorCode::unavailable: return http::status::service_unavailable;
    case wire::ErrorCode::deadline_exceeded: return http::status::gateway_timeout;
    case wire::ErrorCode::expired: return http::status::gone;
    default: return http::status::internal_server_error;
  }
}

json error_json(wire::ErrorCode code, const std::string& message) {
  return json{{"error", {{"code", wire::to_string(code)}, {"message", message}}}};
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') out.push_back(' ');
    else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
             std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else out.push_back(s[i]);
  }
  return out;
}

json sandbox_json(const client::sandbox_view& v) {
  json tags = json::object();
  for (const auto& [k, val] : v.tags) tags[k] = val;
  json j{{"id", v.id},           {"name", v.name},
         {"status", wire::EnumNameSandboxState(v.state)},
         {"node", v.node},       {"created_at_ms", v.created_at_ms},
         {"started_at_ms", v.started_at_ms}, {"ended_at_ms", v.ended_at_ms},
         {"timeout_ms", v.timeout_ms}, {"tags", tags}, {"ready", v.ready},
         {"message", v.message}};
  j["returncode"] = v.has_return_code ? json(v.return_code) : json(nullptr);
  return j;
}

json exit_json(const wire::ExitStatus* s) {
  if (s == nullptr) return json{{"status", "internal"}, {"returncode", 255}};
  return json{{"status", wire::EnumNameOutcome(s->outcome())},
              {"returncode", s->exit_code()},
              {"signal", s->signal()},
              {"message", std::string(wire::str(s->message()))},
              {"stdout_bytes", s->stdout_bytes()},
              {"stderr_bytes", s->stderr_bytes()}};
}

namespace {

status bad_field(const char* field, const std::string& message) {
  return failure(wire::ErrorCode::invalid_argument, message, field);
}

// The text nlohmann's get<> gave a value of the wrong type (these answers were its exception's
// message before the readers returned a status), so the API's messages stay as they were.
status type_error(const char* field, const char* want, const json& v) {
  return bad_field(field, std::string("[json.exception.type_error.302] type must be ") + want +
                              ", but is " + v.type_name());
}

}  // namespace

result<pairs> pairs_of(const json& j, const char* field) {
  pairs out;
  if (!j.contains(field)) return out;
  const auto& o = j.at(field);
  if (!o.is_object()) return bad_field(field, std::string(field) + " must be an object");
  for (auto it = o.begin(); it != o.end(); ++it) {
    if (!it.value().is_string()) return bad_field(field, std::string(field) + " values must be strings");
    out.emplace_back(it.key(), it.value().get<std::string>());
  }
  return out;
}

result<std::vector<std::string>> strings_of(const json& j, const char* field) {
  std::vector<std::string> out;
  if (!j.contains(field)) return out;
  const auto& a = j.at(field);
  if (!a.is_array()) return bad_field(field, std::string(field) + " must be an array of strings");
  for (const auto& v : a) {
    if (!v.is_string()) return bad_field(field, std::string(field) + " must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// Seconds (a number) in `field` as milliseconds; 0 when absent.
result<int64_t> ms_of(const json& j, const char* field) {
  if (!j.contains(field)) return int64_t{0};
  if (!j.at(field).is_number() || j.at(field).get<double>() < 0 || j.at(field).get<double>() > 1e7)
    return bad_field(field, std::string(field) + " must be a number of seconds");
  return static_cast<int64_t>(j.at(field).get<double>() * 1000);
}

result<uint32_t> uint_of(const json& j, const char* field, double scale) {
  if (!j.contains(field)) return uint32_t{0};
  if (!j.at(field).is_number() || j.at(field).get<double>() < 0 || j.at(field).get<double>() * scale > 4e9)
    return bad_field(field, std::string(field) + " must be a non-negative number");
  return static_cast<uint32_t>(j.at(field).get<double>() * scale);
}

result<std::string> string_of(const json& j, const char* field, const std::string& absent) {
  auto it = j.find(field);
  if (it == j.end()) return absent;
  if (!it->is_string()) return type_error(field, "string", *it);
  return it->get<std::string>();
}

result<bool> bool_of(const json& j, const char* field, bool absent) {
  auto it = j.find(field);
  if (it == j.end()) return absent;
  if (!it->is_boolean()) return type_error(field, "boolean", *it);
  return it->get<bool>();
}

result<client::create_options> create_options_of(const json& j) {
  client::create_options o;
  body_reader f;
  f.take(string_of(j, "name"), o.name);
  f.take(ms_of(j, "timeout"), o.timeout_ms);
  f.take(ms_of(j, "idle_timeout"), o.idle_timeout_ms);
  f.take(uint_of(j, "cpu", 1000), o.cpu_millis);  // cores
  f.take(uint_of(j, "memory"), o.memory_mib);       // MiB
  f.take(uint_of(j, "cpu_request", 1000), o.cpu_request_millis);
  f.take(uint_of(j, "memory_request"), o.memory_request_mib);
  f.take(string_of(j, "workdir"), o.workdir);
  f.take(pairs_of(j, "tags"), o.tags);
  f.take(pairs_of(j, "env"), o.env);
  f.take(strings_of(j, "entrypoint"), o.entrypoint);
  f.take(strings_of(j, "probe_command"), o.probe_command);
  uint32_t port = 0;
  f.take(uint_of(j, "probe_tcp_port"), port);
  o.probe_tcp_port = static_cast<int32_t>(port);
  f.take(ms_of(j, "probe_interval"), o.probe_interval_ms);
  if (!f.ok()) return f.error();
  return o;
}

result<uint64_t> offset_param(const std::string& text) {
  // What std::stoull accepted and answered before (leading blanks, a sign, trailing text).
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str() || errno == ERANGE)
    return failure(wire::ErrorCode::invalid_argument, "stoull", "offset");
  return static_cast<uint64_t>(v);
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

result<int64_t> seconds_param_ms(const std::string& text, int64_t max_ms) {
  const auto bad = [&] {
    return failure(wire::ErrorCode::invalid_argument,
                   "must be a number of seconds from 0 to " + std::to_string(max_ms / 1000));
  };
  // Decimal digits with at most one point: no sign, exponent, hex, inf or nan.
  if (text.empty() || text.size() > 32 || text.find_first_not_of("0123456789.") != std::string::npos ||
      text.find('.') != text.rfind('.') || text == ".")
    return bad();
  errno = 0;
  char* end = nullptr;
  const double s = std::strtod(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(s) || s < 0 ||
      s > static_cast<double>(max_ms) / 1000.0)
    return bad();
  // In range before the conversion: the product fits an int64.
  return std::min<int64_t>(static_cast<int64_t>(s * 1000.0), max_ms);
}

}  // namespace corral::gateway
