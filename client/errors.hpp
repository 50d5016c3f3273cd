#pragma once
// What a request that got no answer means, the same for every caller of the protocol (the CLI,
// the gateway, the job runner), and the ErrorReply an answer may be.
#include <optional>
#include <string>

#include "bus/connection.hpp"
#include "client/client.hpp"
#include "schemas/status.hpp"

namespace corral::client {

// How a request ended without an answer.
enum class transport_failure {
  no_responders,  // nobody subscribes to the request's subject
  timed_out,      // no answer before the deadline
  failed,         // NATS failed (not connected, publish refused, …)
};
[[nodiscard]] transport_failure transport_failure_of(wire::ErrorCode e);

// What a request was about: it says what nobody answering means.
enum class request_kind {
  sandbox,         // an operation on one sandbox (what = its id): no such sandbox
  exec,            // on one exec of a sandbox (what = the operation: stdin, signal, …)
  create,          // a create in a pool (what = the pool): no executor of it has room
  create_on_node,  // a create on one executor (what = its node): that executor does not answer
  jobs,            // a job-queue request: no executor with JetStream answers
};

// The wire error of a request that ended without an answer.
[[nodiscard]] status wire_error(request_kind kind, transport_failure f, const std::string& what,
                                const std::string& detail = {});

// The ErrorReply in a reply (code, message and field), if it carries one (malformed when it then
// does not verify); nullopt for any other message.
[[nodiscard]] std::optional<status> error_in(const bus::message& m);

}  // namespace corral::client
