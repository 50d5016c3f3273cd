#pragma once
// What every actor of a node shares: configuration and the ports. The pointed-to objects are
// owned by the program (executor main or a test) and outlive the actor system.
#include <cstdint>
#include <memory>

#include "actors/config.hpp"
#include "actors/output_ledger.hpp"
#include "actors/quota.hpp"
#include "actors/ports.hpp"
#include "actors/router.hpp"
#include "storage/store.hpp"

namespace corral {

struct node_context {
  node_config config;
  storage::store* store = nullptr;
  outbox* out = nullptr;
  clock* clk = nullptr;
  runtime* rt = nullptr;
  request_router* router = nullptr;
  // Per-tenant quotas and the stored-output ledger (actors/quota.hpp, actors/output_ledger.hpp).
  // Null: no quota is enforced (unit tests of other behaviour).
  const quota_source* quotas = nullptr;
  output_ledger* ledger = nullptr;
  uint64_t session = 0;  // this executor process's session, sent to every corral-init in Hello
};

using context_ptr = std::shared_ptr<const node_context>;

}  // namespace corral
