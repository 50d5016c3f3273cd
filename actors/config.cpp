#include "actors/config.hpp"

#include "schemas/ids.hpp"

namespace corral {

std::string node_config::validate() const {
  if (!wire::valid_token(node_id)) return "node_id: must be 1..64 characters of [A-Za-z0-9_-]";
  if (!wire::valid_token(pool)) return "pool: must be 1..64 characters of [A-Za-z0-9_-]";
  for (const auto& [k, v] : tags)
    if (!wire::valid_token(k) || v.size() > 256) return "tags: keys are tokens, values at most 256 bytes";
  if (max_sandboxes == 0) return "max_sandboxes: must be at least 1";
  if (warm_pool > max_warm_pool) return "warm_pool: must be at most 256";
  if (!warm_prestart.empty()) {
    if (warm_prestart.front().empty()) return "warm_prestart: the program name is empty";
    for (const auto& a : warm_prestart)
      if (a.find('\0') != std::string::npos) return "warm_prestart: an argument holds a NUL byte";
    if (warm_prestart_tag.empty()) return "warm_prestart_tag: must not be empty";
  }
  if (warm_retry_min_ms < 10 || warm_retry_max_ms < warm_retry_min_ms)
    return "warm_retry_min_ms, warm_retry_max_ms: must be >= 10 and min <= max";
  if (default_timeout_ms <= 0 || default_timeout_ms > max_timeout_ms)
    return "default_timeout_ms: must be in (0, max_timeout_ms]";
  if (min_cpu_millis == 0 || min_cpu_millis > max_cpu_millis)
    return "min_cpu_millis: must be in (0, max_cpu_millis]";
  if (default_cpu_millis < min_cpu_millis || default_cpu_millis > max_cpu_millis)
    return "default_cpu_millis: must be in [min_cpu_millis, max_cpu_millis]";
  if (default_memory_mib < 16 || default_memory_mib > max_memory_mib)
    return "default_memory_mib: must be in [16, max_memory_mib]";
  if (pids_limit < 8) return "pids_limit: must be at least 8";
  if (default_cpu_request_millis == 0 || default_cpu_request_millis > default_cpu_millis)
    return "default_cpu_request_millis: must be in (0, default_cpu_millis]";
  if (default_memory_request_mib == 0 || default_memory_request_mib > default_memory_mib)
    return "default_memory_request_mib: must be in (0, default_memory_mib]";
  if (min_probe_interval_ms < 1 || default_probe_interval_ms < min_probe_interval_ms)
    return "default_probe_interval_ms: must be at least min_probe_interval_ms (>= 1)";
  if (max_argv_bytes == 0 || max_argv_bytes > 512 * 1024)
    return "max_argv_bytes: must be in (0, 512 KiB] (one message is at most 1 MiB)";
  if (max_env_bytes == 0 || max_env_bytes > 256 * 1024) return "max_env_bytes: must be in (0, 256 KiB]";
  if (max_stdin_write_bytes == 0 || max_stdin_write_bytes > 900 * 1024)
    return "max_stdin_write_bytes: must be in (0, 900 KiB]";
  if (stdin_window_bytes == 0 || stdin_window_bytes + max_stdin_write_bytes > stdin_max_in_flight_bytes)
    return "stdin_window_bytes: window plus one write must fit in stdin_max_in_flight_bytes";
  if (stdin_max_in_flight_bytes > 4 * 1024 * 1024)
    return "stdin_max_in_flight_bytes: at most 4 MiB (corral-init's stdin buffer)";
  if (max_output_bytes < 1024) return "max_output_bytes: must be at least 1 KiB";
  if (replay_batch_bytes < 64 * 1024) return "replay_batch_bytes: must be at least 64 KiB";
  if (heartbeat_interval_ms < 100) return "heartbeat_interval_ms: must be at least 100";
  if (retention_ms < 0) return "retention_ms: must not be negative";
  if (output_retention_ms < 0 || output_retention_ms > retention_ms)
    return "output_retention_ms: must be in [0, retention_ms]";
  if (exec_kill_grace_ms < 100) return "exec_kill_grace_ms: must be at least 100";
  if (exec_store_retry_ms < 10) return "exec_store_retry_ms: must be at least 10";
  if (exec_store_attempts < 1) return "exec_store_attempts: must be at least 1";
  if (fs_max_read_bytes < 4096 || fs_max_read_bytes > 900 * 1024)
    return "fs_max_read_bytes: must be in [4 KiB, 900 KiB] (a reply is at most 1 MiB)";
  if (fs_max_write_bytes < 4096 || fs_max_write_bytes > 900 * 1024)
    return "fs_max_write_bytes: must be in [4 KiB, 900 KiB] (a request is at most 1 MiB)";
  if (fs_max_list_entries == 0 || fs_max_list_entries > 2048)
    return "fs_max_list_entries: must be in [1, 2048] (a reply is at most 1 MiB)";
  if (fs_max_remove_entries == 0) return "fs_max_remove_entries: must be at least 1";
  if (fs_max_pending_calls == 0 || fs_max_pending_calls > 1024)
    return "fs_max_pending_calls: must be in [1, 1024]";
  if (usage_sample_interval_ms < 100 || usage_sample_interval_ms > 60'000)
    return "usage_sample_interval_ms: must be in [100, 60000]";
  if (!(price_per_core_second >= 0) || !(price_per_gib_second >= 0))
    return "price_per_core_second, price_per_gib_second: must not be negative";
  if (min_cpu_request_millis > max_cpu_millis)
    return "min_cpu_request_millis: must be at most max_cpu_millis";
  return {};
}

}  // namespace corral
