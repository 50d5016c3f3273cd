#pragma once
// Who may do what on corral's NATS (docs/security.md, "NATS identities"): every party connects
// as a NATS user named by an nkey (bus/nkey.hpp), in a NATS account by role, rendered into
// nats-server's `accounts` block:
//
//   account CORRAL    the executors, the gateways and the operator (admin), and JetStream: every
//                     stream lives here. It exports corral's request subjects (a service) and
//                     the output and result subjects (streams).
//   account tenant-T  tenant T's user(s). It imports exactly T's own request subjects, T's
//                     output subjects and T's result subjects: nothing else of CORRAL, and
//                     nothing of any other tenant, exists for it.
//
// Why accounts: in one account, whatever answers a request publishes onto the reply subject the
// requester chose, which NATS permissions never check: JetStream's own API answers and publish
// acks could be aimed at another tenant's job or result subjects and were stored in its streams.
// Across accounts, a tenant's reply subjects are its own account's, and a request that crosses
// into CORRAL carries a reply subject the server makes (_R_...), never the tenant's.
//
// Permissions inside the accounts:
//   executor  publish and subscribe everything
//   gateway   requests on behalf of any tenant: publish corral.v1.> except output, results and
//             node subjects; subscribe to output subjects and its own inbox (_INBOX_GW)
//   tenant T  publish corral.v1.T.> except output and results; subscribe to inboxes and its
//             output and result subjects (all within its own account)
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

// Creates `dir` (and its parents) when missing and makes it 0700, after checking that no other
// user could change it: it is ours, and every directory above it is root's or ours and not
// writable by others (unless sticky, like /tmp: the next one down must then be ours or root's).
// Empty on success, else why not (nothing is made private then).
[[nodiscard]] std::string make_private_dir(const std::string& dir);

inline constexpr const char* corral_account = "CORRAL";
// The NATS account of a tenant's users.
[[nodiscard]] std::string tenant_account(const std::string& tenant);
// What a tenant's account imports from CORRAL: request subjects (services) and subjects it
// receives (streams).
[[nodiscard]] std::vector<std::string> tenant_service_imports(const std::string& tenant);
[[nodiscard]] std::vector<std::string> tenant_stream_imports(const std::string& tenant);

// nats-server's `accounts { ... }` block for these identities. extra_corral_users: more user
// entries of the CORRAL account, as configuration text (a test harness's own user).
[[nodiscard]] std::string accounts_config(const std::vector<nats_identity>& ids,
                                          const std::string& extra_corral_users = {});

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
  // Removes the identity (its registry line and its seed file) and writes auth.conf without it.
  // *removed says whether it existed. The server must then reload (its connections close).
  [[nodiscard]] bool remove(nats_role role, const std::string& name, bool* removed,
                            std::string* error);
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
