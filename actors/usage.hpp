#pragma once
// The usage meter: one per executor node ("pays per CPU-second and GiB-second").
//
// Every node_config::usage_sample_interval_ms it samples the cgroups of this node's running
// sandboxes (runtime::usage) and bills each interval on max(request, actual), as Modal does:
//   core-seconds += max(cpu request in cores * interval, cpu time used in the interval)
//   GiB-seconds  += max(memory request, memory in use at the sample) * interval
//   cost         += core-seconds * price_per_core_second + GiB-seconds * price_per_gib_second
// Requests are the sandbox's create options (cpu_request_millis, memory_request_mib), else the
// node's defaults; the cpu request is never below node_config::min_cpu_request_millis.
// Billing starts at the sandbox's started_at_ms and stops at its ended_at_ms (a last sample is
// taken when the sandbox ends while its cgroups still exist).
//
// Durability: after every sample the changed records are written to the store's usage column
// family in one synced batch, and reloaded when the meter starts, so an executor restart
// (kill -9 included) loses at most the interval in flight: the first sample after a restart
// bills from the last stored sample to now, using the cgroup's cumulative cpu counter.
//
// Queries: verb::usage (a UsageRequest, or empty) is answered with one UsageReply of this
// node's sandboxes of tenant {t} only, and their total (scatter/gather like list: every executor
// answers). The meter asks the router for that subscription when it starts.
//
// The node forwards every sandbox_summary to the meter; the meter forgets a sandbox when the
// node's retention drops it (its usage row goes with delete_sandbox).
#include <string>

#include <caf/all.hpp>

#include "actors/context.hpp"
#include "actors/messages.hpp"
#include "storage/records.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(corral::storage::usage_record)

namespace corral {

using usage_atom = caf::atom_constant<caf::atom("usage")>;
using sample_atom = caf::atom_constant<caf::atom("sample")>;

using usage_actor = caf::typed_actor<
    // A sandbox's record changed (forwarded by the node).
    caf::reacts_to<summary_atom, sandbox_summary>,
    // A tenant's usage: its UsageReply (this node's sandboxes of the tenant).
    caf::reacts_to<verb::usage>,
    // Periodic sampling (self-sent every usage_sample_interval_ms).
    caf::reacts_to<tick_atom>,
    // Samples now, persists, and replies with the number of sandboxes sampled (tests, drain).
    caf::replies_to<sample_atom>::with<uint32_t>,
    // What has been billed to one sandbox so far (an empty record when unknown).
    caf::replies_to<usage_atom, std::string>::with<storage::usage_record>>;

// Spawns the meter linked to `parent` (it ends with the node), loads the stored usage records
// and starts sampling.
usage_actor spawn_usage_meter(caf::local_actor* parent, context_ptr ctx);

}  // namespace corral
