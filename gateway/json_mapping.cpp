#include "gateway/json_mapping.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

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

pairs pairs_of(const json& j, const char* field) {
  pairs out;
  if (!j.contains(field)) return out;
  const auto& o = j.at(field);
  if (!o.is_object()) throw std::invalid_argument(std::string(field) + " must be an object");
  for (auto it = o.begin(); it != o.end(); ++it) {
    if (!it.value().is_string()) throw std::invalid_argument(std::string(field) + " values must be strings");
    out.emplace_back(it.key(), it.value().get<std::string>());
  }
  return out;
}

std::vector<std::string> strings_of(const json& j, const char* field) {
  std::vector<std::string> out;
  if (!j.contains(field)) return out;
  const auto& a = j.at(field);
  if (!a.is_array()) throw std::invalid_argument(std::string(field) + " must be an array of strings");
  for (const auto& v : a) {
    if (!v.is_string()) throw std::invalid_argument(std::string(field) + " must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// Seconds (a number) in `field` as milliseconds; 0 when absent.
int64_t ms_of(const json& j, const char* field) {
  if (!j.contains(field)) return 0;
  if (!j.at(field).is_number() || j.at(field).get<double>() < 0 || j.at(field).get<double>() > 1e7)
    throw std::invalid_argument(std::string(field) + " must be a number of seconds");
  return static_cast<int64_t>(j.at(field).get<double>() * 1000);
}

uint32_t uint_of(const json& j, const char* field, double scale) {
  if (!j.contains(field)) return 0;
  if (!j.at(field).is_number() || j.at(field).get<double>() < 0 || j.at(field).get<double>() * scale > 4e9)
    throw std::invalid_argument(std::string(field) + " must be a non-negative number");
  return static_cast<uint32_t>(j.at(field).get<double>() * scale);
}

client::create_options create_options_of(const json& j) {
  client::create_options o;
  o.name = j.value("name", "");
  o.timeout_ms = ms_of(j, "timeout");
  o.idle_timeout_ms = ms_of(j, "idle_timeout");
  o.cpu_millis = uint_of(j, "cpu", 1000);  // cores
  o.memory_mib = uint_of(j, "memory");       // MiB
  o.cpu_request_millis = uint_of(j, "cpu_request", 1000);
  o.memory_request_mib = uint_of(j, "memory_request");
  o.workdir = j.value("workdir", "");
  o.tags = pairs_of(j, "tags");
  o.env = pairs_of(j, "env");
  o.entrypoint = strings_of(j, "entrypoint");
  o.probe_command = strings_of(j, "probe_command");
  o.probe_tcp_port = static_cast<int32_t>(uint_of(j, "probe_tcp_port"));
  o.probe_interval_ms = ms_of(j, "probe_interval");
  return o;
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
