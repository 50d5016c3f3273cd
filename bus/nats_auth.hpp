#pragma once
// Who may do what on corral's NATS (docs/security.md, "NATS identities"): every party connects
// as a NATS user named by an nkey (bus/nkey.hpp), with subject permissions by role, rendered into
// nats-server's `authorization` block. All users share one NATS account; what keeps tenants
// apart is that a tenant's permissions name only its own subjects, its own reply inbox and its
// own two JetStream streams.
//
//   executor  publish and subscribe everything (it answers every tenant's requests, publishes
//             output, exits, replies, results and heartbeats, and runs the job streams)
//   gateway   requests on behalf of any tenant: publish corral.v1.> except output, results and
//             node subjects; subscribe to output subjects and its own inbox (_INBOX_GW)
//   tenant T  publish corral.v1.T.> except its output and result subjects (which only executors
//             publish), plus the JetStream API calls that read its own results stream;
//             subscribe to its output subjects and its own inbox (_INBOX.T)
//   admin     everything (the operator's own tools)
//
// The state of a deployment lives in one directory (nats_auth_dir): the registry of identities,
// each identity's seed file and the rendered auth.conf that the server's configuration includes.
// Adding an identity rewrites auth.conf; the server then reloads it (SIGHUP), no restart.
#include <optional>
#include <string>
#include <vector>

namespace corral::bus {

enum class nats_role { admin, executor, gateway, tenant };

[[nodiscard]] const char* to_string(nats_role r) noexcept;
[[nodiscard]] std::optional<nats_role> nats_role_from(const std::string& s);

struct nats_identity {
  nats_role role = nats_role::tenant;
  std::string name;        // the tenant for tenants; a label otherwise ([A-Za-z0-9_-], 1..64)
  std::string public_key;  // the nkey the server knows it by
};

struct subject_permissions {
  std::vector<std::string> publish_allow, publish_deny, subscribe_allow, subscribe_deny;
};

[[nodiscard]] subject_permissions permissions_of(const nats_identity& id);

// nats-server's `authorization { users = [...] }` block for these identities.
[[nodiscard]] std::string authorization_config(const std::vector<nats_identity>& ids);

// Why `name` cannot name an identity of `role` (empty when it can).
[[nodiscard]] std::string invalid_identity_name(nats_role role, const std::string& name);

// The NATS security state of one deployment, in directory `dir` (created 0700):
//   identities             the registry: "role name public_key" per line (0600)
//   <role>-<name>.nk       each identity's seed (0600): hand it to that party only
//   auth.conf              authorization_config() of the registry (0600); the server's own
//                          configuration includes it
// Safe against concurrent writers (an flock on the registry). Not for concurrent use by threads
// of one process beyond that.
class nats_auth_dir {
 public:
  explicit nats_auth_dir(std::string dir) : dir_(std::move(dir)) {}

  // The seed file of the identity, creating the identity (its key, its registry line and a new
  // auth.conf) when it does not exist. *created says whether it did. Nullopt with *error.
  [[nodiscard]] std::optional<std::string> ensure(nats_role role, const std::string& name,
                                                  bool* created, std::string* error);
  // Writes auth.conf from the registry as it is (e.g. after an upgrade changed the permissions).
  [[nodiscard]] bool render(std::string* error);
  [[nodiscard]] std::optional<std::vector<nats_identity>> identities(std::string* error) const;

  [[nodiscard]] std::string seed_file(nats_role role, const std::string& name) const;
  [[nodiscard]] std::string auth_conf() const { return dir_ + "/auth.conf"; }
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  [[nodiscard]] bool render_locked(const std::vector<nats_identity>& ids, std::string* error);
  std::string dir_;
};

}  // namespace corral::bus
