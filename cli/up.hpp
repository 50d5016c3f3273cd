#pragma once
// `corral up`: a complete single-machine deployment for development and small installs: an
// embedded nats-server child (JetStream on, data under DIR/nats), one corral-executor child
// (data under DIR/executor) and the HTTP gateway. Runs in the foreground until SIGINT/SIGTERM,
// which it forwards (executor first, so it drains; then nats-server), waiting for both to exit.
//
// Nothing of it is open to anyone who can merely reach it (docs/security.md): DIR is 0700; the
// nats-server requires an nkey identity of every client (DIR/auth, bus/nats_auth.hpp): one for
// the executor, one for the gateway, one for the operator (admin) and one per tenant
// (`corral token create`). The children die with `corral up`, even when it is killed.
#include <optional>
#include <string>
#include <vector>

namespace corral::cli {

int run_up(const std::vector<std::string>& args, const char* argv0);

// The deployment's layout under its data directory (`corral up --data DIR`, default ./var).
struct up_layout {
  std::string data;  // DIR
  [[nodiscard]] std::string auth_dir() const { return data + "/auth"; }
  [[nodiscard]] std::string tokens_file() const { return data + "/tokens"; }
  [[nodiscard]] std::string nats_dir() const { return data + "/nats"; }
  [[nodiscard]] std::string nats_pid_file() const { return data + "/nats/nats-server.pid"; }
  // A tenant's NATS seed file (what `corral --tenant T` uses by default from DIR ./var).
  [[nodiscard]] std::string tenant_seed_file(const std::string& tenant) const;
  // The operator's (admin) NATS seed file (what `corral node ls` uses by default from ./var).
  [[nodiscard]] std::string operator_seed_file() const;
};

// The NATS identity of `tenant` in the deployment under `data` (created when missing, and then
// the running nats-server, if any, is told to reload its users: no restart). Returns its seed
// file; *created says whether the identity is new. Nullopt with *error.
[[nodiscard]] std::optional<std::string> ensure_tenant_identity(const std::string& data,
                                                                const std::string& tenant,
                                                                bool* created, std::string* error);

// Removes `tenant`'s NATS identity (and its seed file) from the deployment under `data`, and has
// the running nats-server, if any, reload: the tenant's connections are closed and its key is
// refused from then on. *removed says whether it existed.
[[nodiscard]] bool revoke_tenant_identity(const std::string& data, const std::string& tenant,
                                          bool* removed, std::string* error);

}  // namespace corral::cli
