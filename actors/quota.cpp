#include "actors/quota.hpp"

namespace corral {

std::string tenant_quota::validate() const {
  if (sandboxes < 1) return "sandboxes: at least 1";
  if (sandbox_stored_output_bytes < 64 * 1024) return "sandbox_stored_output: at least 64 KiB";
  if (stored_output_bytes < sandbox_stored_output_bytes)
    return "stored_output: at least the per-sandbox stored output";
  if (sandbox_exec_record_bytes < (1 << 20)) return "sandbox_exec_record_mib: at least 1";
  if (!(execs_per_second > 0) || execs_per_second > 1e6) return "execs_per_second: in (0, 1e6]";
  if (exec_burst < 1) return "exec_burst: at least 1";
  return {};
}

}  // namespace corral
