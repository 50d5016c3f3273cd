#pragma once
// Atoms and message types shared by the node, sandbox and process actors (the verbs clients
// send are in actors/requests.hpp). Types sent between actors are local-only (never serialized).
#include <cstdint>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "schemas/codec.hpp"
#include "actors/ports.hpp"
#include "storage/records.hpp"

namespace corral {

using bytes = std::vector<uint8_t>;

// What a sandbox tells its node whenever its record changes (for list, names and capacity).
struct sandbox_summary {
  storage::sandbox_record rec;
  bool holds_resources = true;  // false once the runtime has destroyed it on the host
  // An unclaimed warm-pool sandbox (sandbox_start_mode::warm): no tenant, nothing stored; the
  // node keeps it out of lists, names and metering. `warm_ready` once corral-init answered and
  // it can be handed out.
  bool warm = false;
  bool warm_ready = false;
};

// The node hands a warm-pool sandbox out to a create: the tenant's record (validated, with the
// warm sandbox's id; stored by the sandbox before `create_reply` is answered).
struct sandbox_claim {
  storage::sandbox_record rec;
  reply_handle create_reply;
};

// An event that corral-init sent about one process, routed by the sandbox to its process actor.
struct init_process_event {
  enum class kind : uint8_t { started, output, exited, spawn_failed, stdin_written } what = kind::output;
  wire::Stream stream = wire::Stream::none;
  bytes data;
  int32_t pid = 0;
  int32_t exit_code = 0;
  int32_t signal = 0;
  int32_t error_number = 0;
  uint64_t stdin_total = 0;  // stdin_written: bytes of stdin init has written into the pipe
  std::string message;
};

// Why a process ended when the process did not end by itself.
struct process_end_cause {
  wire::Outcome outcome = wire::Outcome::internal;
  int32_t exit_code = 0;
  int32_t signal = 0;
  std::string message;
};

// -- atoms (at most 10 characters each) ---------------------------------------------------------

using frame_atom = caf::atom_constant<caf::atom("frame")>;
using link_down_atom = caf::atom_constant<caf::atom("link_down")>;
using started_atom = caf::atom_constant<caf::atom("started")>;
using summary_atom = caf::atom_constant<caf::atom("summary")>;
using ended_atom = caf::atom_constant<caf::atom("ended")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using lifetime_atom = caf::atom_constant<caf::atom("lifetime")>;
using destroyed_atom = caf::atom_constant<caf::atom("destroyed")>;
using event_atom = caf::atom_constant<caf::atom("event")>;
using end_atom = caf::atom_constant<caf::atom("end")>;
using attach_atom = caf::atom_constant<caf::atom("attach")>;
using stdin_atom = caf::atom_constant<caf::atom("stdin")>;
using signal_atom = caf::atom_constant<caf::atom("signal")>;
using timeout_atom = caf::atom_constant<caf::atom("timeout")>;
using recover_atom = caf::atom_constant<caf::atom("recover")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using wait_atom = caf::atom_constant<caf::atom("wait")>;
using proc_done_atom = caf::atom_constant<caf::atom("proc_done")>;
using idle_atom = caf::atom_constant<caf::atom("idle")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
using host_atom = caf::atom_constant<caf::atom("host")>;
using claim_atom = caf::atom_constant<caf::atom("claim")>;
using retire_atom = caf::atom_constant<caf::atom("retire")>;
using limits_atom = caf::atom_constant<caf::atom("limits")>;
using refill_atom = caf::atom_constant<caf::atom("refill")>;
using store_atom = caf::atom_constant<caf::atom("store")>;

}  // namespace corral

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::create)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::list)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::usage)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::info)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::exec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::stdin_write)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::signal)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::resize)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::terminate)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::wait)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::replay)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::tags)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::verb::fs)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::sandbox_summary)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::sandbox_claim)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::storage::process_record)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::init_process_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::process_end_cause)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<uint8_t>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::runtime::started)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::close_reason)
