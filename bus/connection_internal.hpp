#pragma once
// Internal to bus/: what the library's other files (jetstream.cpp) need of a connection's nats.c
// state. Includes <nats/nats.h>, so it is never included outside bus/ and never from a public
// header.
#include <nats/nats.h>

#include <cstddef>
#include <string>

#include "bus/connection.hpp"

namespace corral::bus::internal {

struct connection_access {
  // The nats.c connection; valid for the life of `c`.
  static natsConnection* native(connection& c);
  // Takes over the caller's reference to a subscription that natsSubscription_Unsubscribe has
  // been called on, and frees it once nats.c's read loop can no longer touch it (the read-loop use-after-free
  // workaround of connection.cpp). Never blocks. Every natsSubscription that bus/ creates must
  // end here, never in a direct natsSubscription_Destroy.
  static void retire(connection& c, natsSubscription* sub);
  // options::max_subject_bytes of `c`.
  static std::size_t max_subject_bytes(const connection& c);
};

// The status mapping of connection.cpp, shared so that every bus/ call classifies alike.
wire::ErrorCode classify_status(natsStatus s);
// "<what>: <status text> (<nats.c's last error text of this thread, when more precise>)".
std::string describe_status(natsStatus s, const char* what);

}  // namespace corral::bus::internal
