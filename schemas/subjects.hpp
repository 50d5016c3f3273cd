#pragma once
// NATS subject names of the public protocol (docs/protocol.md). Callers validate tokens
// (valid_token / valid_id) before building a subject from client input.
#include <string>
#include <string_view>

namespace corral::wire::subjects {

inline constexpr std::string_view prefix = "corral.v1";

// corral.v1.{t}.pool.{pool}.create — request/reply, queue group "corral.pool.{pool}".
[[nodiscard]] std::string create(std::string_view tenant, std::string_view pool);
// Wildcard over tenants for an executor's placement subscription.
[[nodiscard]] std::string create_any_tenant(std::string_view pool);
[[nodiscard]] std::string create_queue_group(std::string_view pool);
// corral.v1.{t}.sbx.{sb}.{op}
[[nodiscard]] std::string sandbox_op(std::string_view tenant, std::string_view sandbox,
                                     std::string_view op);
// corral.v1.{t}.sbx.{sb}.* — every op of one sandbox (not its output).
[[nodiscard]] std::string sandbox_ops(std::string_view tenant, std::string_view sandbox);
// corral.v1.{t}.sbx.{sb}.fs.* — the file operations of one sandbox (fs.read, fs.write, ...).
[[nodiscard]] std::string sandbox_fs_ops(std::string_view tenant, std::string_view sandbox);
// corral.v1.{t}.sbx.{sb}.out.{ex}
[[nodiscard]] std::string output(std::string_view tenant, std::string_view sandbox,
                                 std::string_view exec);
// corral.v1.{t}.list and its any-tenant wildcard.
[[nodiscard]] std::string list(std::string_view tenant);
[[nodiscard]] std::string list_any_tenant();
// corral.v1.{t}.usage (scatter/gather, metering) and its any-tenant wildcard.
[[nodiscard]] std::string usage(std::string_view tenant);
[[nodiscard]] std::string usage_any_tenant();
// corral.v1.{t}.node.{node}.create — request/reply: a create placed on that one executor (the
// executor's own job runner uses it, so its sandboxes count against its own capacity).
[[nodiscard]] std::string node_create(std::string_view tenant, std::string_view node);
[[nodiscard]] std::string node_create_any_tenant(std::string_view node);
// corral.v1.{t}.pool.{pool}.run — request/reply, queue group "corral.pool.{pool}.run": one job
// (Job) run at once, answered with its JobResult.
[[nodiscard]] std::string run(std::string_view tenant, std::string_view pool);
[[nodiscard]] std::string run_any_tenant(std::string_view pool);
[[nodiscard]] std::string run_queue_group(std::string_view pool);
// corral.v1.{t}.jobs.{pool} — the JetStream work queue of jobs; corral.v1.*.jobs.{pool} is what
// the executors of a pool consume.
[[nodiscard]] std::string jobs(std::string_view tenant, std::string_view pool);
[[nodiscard]] std::string jobs_any_tenant(std::string_view pool);
// corral.internal.stored.{t}.jobs.{pool} — the headers of each job the tenant's jobs stream has
// stored, republished by the stream: the executors' doorbell (an idle puller asks that queue at
// once). Outside corral.v1, so no tenant reaches it; and since nothing but JetStream subscribes
// to corral.v1.{t}.jobs.*, a publish that no stream stores is answered "no responders" at once
// instead of being an unanswered request the server keeps a reply mapping for.
[[nodiscard]] std::string jobs_stored_any_tenant(std::string_view pool);
// The stream's republish destination for corral.v1.{t}.jobs.* (the pool token carried over).
[[nodiscard]] std::string jobs_stored_destination(std::string_view tenant);
// The tenant of a jobs_stored subject; empty when `subject` is not one.
[[nodiscard]] std::string_view tenant_of_jobs_stored(std::string_view subject);
// corral.v1.{t}.results.{batch} — one JobResult per job, in the tenant's results stream.
[[nodiscard]] std::string results(std::string_view tenant, std::string_view batch);
// The JetStream streams (file-backed), one pair per tenant so that a tenant's NATS permissions
// can name exactly its own (docs/security.md): CORRAL_JOBS_{t} holds corral.v1.{t}.jobs.* (the
// work queue of every pool), CORRAL_RESULTS_{t} holds corral.v1.{t}.results.*.
inline constexpr std::string_view jobs_stream_prefix = "CORRAL_JOBS_";
inline constexpr std::string_view results_stream_prefix = "CORRAL_RESULTS_";
[[nodiscard]] std::string jobs_stream(std::string_view tenant);
[[nodiscard]] std::string results_stream(std::string_view tenant);
[[nodiscard]] std::string jobs_stream_subjects(std::string_view tenant);
[[nodiscard]] std::string results_stream_subjects(std::string_view tenant);
// The tenant of a jobs stream's name; empty when `stream` is not one.
[[nodiscard]] std::string_view tenant_of_jobs_stream(std::string_view stream);
// corral.v1.{t}.setup.jobs — request, answered by every executor (scatter/gather): the tenant's
// two streams exist, and the executor consumes its jobs stream.
[[nodiscard]] std::string jobs_setup(std::string_view tenant);
[[nodiscard]] std::string jobs_setup_any_tenant();
// corral.v1.{t}.read.results — request (ResultsRead), answered by one executor (queue group
// results_read_queue_group()): a batch's stored results, read back for the tenant (tenants have
// no JetStream API of their own: docs/security.md).
[[nodiscard]] std::string results_read(std::string_view tenant);
[[nodiscard]] std::string results_read_any_tenant();
inline constexpr std::string_view results_read_queue_group = "corral.results.read";
// corral.v1.node.{node}.heartbeat
[[nodiscard]] std::string heartbeat(std::string_view node);

// Reply subjects. The gateway's inbox is "_INBOX_GW", the executors' "_INBOX_EX"; a tenant's
// client uses tenant_inbox_prefix(t) ("_INBOX.{t}", in the tenant's own NATS account). A
// tenant's request reaches the executors' account with a reply subject the server maps
// ("_R_..."). An executor answers only replies that are inboxes or such mapped subjects
// (valid_reply): a request naming another subject as its reply cannot make an executor publish
// there (docs/security.md).
[[nodiscard]] std::string tenant_inbox_prefix(std::string_view tenant);
inline constexpr std::string_view gateway_inbox_prefix = "_INBOX_GW";
inline constexpr std::string_view executor_inbox_prefix = "_INBOX_EX";
[[nodiscard]] bool valid_reply(std::string_view reply);
// Tenant names that are tokens of the protocol itself and may not name a tenant with NATS
// credentials ("node": corral.v1.node.{node}.heartbeat is the executors').
[[nodiscard]] bool reserved_tenant(std::string_view tenant);

// Splits "corral.v1.{t}.sbx.{sb}.{op}" (also ".pool.{p}.create", ".list"): returns the tenant
// token, or empty when the subject is not of this protocol.
[[nodiscard]] std::string_view tenant_of(std::string_view subject);
// The last token of a subject (the op of a sandbox subject).
[[nodiscard]] std::string_view last_token(std::string_view subject);

}  // namespace corral::wire::subjects
