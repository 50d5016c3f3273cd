#pragma once
// NATS subject names of the public protocol (DESIGN.md §3). Callers validate tokens
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
// corral.v1.node.{node}.heartbeat
[[nodiscard]] std::string heartbeat(std::string_view node);

// Splits "corral.v1.{t}.sbx.{sb}.{op}" (also ".pool.{p}.create", ".list"): returns the tenant
// token, or empty when the subject is not of this protocol.
[[nodiscard]] std::string_view tenant_of(std::string_view subject);
// The last token of a subject (the op of a sandbox subject).
[[nodiscard]] std::string_view last_token(std::string_view subject);

}  // namespace corral::wire::subjects
