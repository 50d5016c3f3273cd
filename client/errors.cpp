#include "client/errors.hpp"

#include "client/replies.hpp"

namespace corral::client {

transport_failure transport_failure_of(wire::ErrorCode e) {
  switch (e) {
    case bus::errc::no_responders: return transport_failure::no_responders;
    case bus::errc::timeout: return transport_failure::timed_out;
    default: return transport_failure::failed;
  }
}

status wire_error(request_kind kind, transport_failure f, const std::string& what,
                  const std::string& detail) {
  if (f == transport_failure::timed_out)
    return failure(wire::ErrorCode::deadline_exceeded, "no answer in time");
  if (f == transport_failure::failed) return failure(wire::ErrorCode::unavailable, "NATS: " + detail);
  switch (kind) {
    case request_kind::sandbox: return failure(wire::ErrorCode::not_found, "no such sandbox: " + what);
    case request_kind::exec:
      return failure(wire::ErrorCode::not_found, what + ": no such sandbox or exec");
    case request_kind::create:
      return failure(wire::ErrorCode::resource_exhausted,
                     "no executor of pool '" + what + "' has room (or none is running)");
    case request_kind::create_on_node:
      return failure(wire::ErrorCode::resource_exhausted, "executor " + what + " does not answer");
    case request_kind::jobs:
      return failure(wire::ErrorCode::not_found, "no executor with JetStream answers");
  }
  return failure(wire::ErrorCode::not_found, "nobody answers");
}

std::optional<status> error_in(const bus::message& m) {
  return error_reply_of(m.data.data(), m.data.size());
}

}  // namespace corral::client
