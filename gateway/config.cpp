#include "gateway/config.hpp"

namespace corral::gateway {

std::string gateway_config::validate() const {
  if (tokens_file.empty()) return "--tokens FILE is required";
  if (nats_url.empty()) return "--nats URL is required";
  if (io_threads < 1 || io_threads > 64) return "io_threads must be 1..64";
  if (worker_threads < 1 || worker_threads > 1024) return "worker_threads must be 1..1024";
  if (nats_delivery_threads < 1 || nats_delivery_threads > 64) return "nats_delivery_threads must be 1..64";
  if (max_header_bytes < 1024 || max_header_bytes > 1024 * 1024) return "max_header_bytes must be 1 KiB..1 MiB";
  if (max_body_bytes < 1024 || max_body_bytes > 1024ull * 1024 * 1024) return "max_body_bytes must be 1 KiB..1 GiB";
  if (read_timeout_ms < 100 || write_timeout_ms < 100 || idle_timeout_ms < 100)
    return "timeouts must be at least 100 ms";
  if (max_open_streams < 1) return "max_open_streams must be at least 1";
  if (tenant_max_streams < 1 || tenant_max_inflight < 1)
    return "tenant_max_streams and tenant_max_inflight must be at least 1";
  if (max_connections != 0 && max_connections < 4) return "max_connections must be 0 or at least 4";
  if (retry_after_s < 1 || retry_after_s > 3600) return "retry_after_s must be 1..3600";
  if (max_wait_ms < 1000) return "max_wait_ms must be at least 1 s";
  if (request_timeout_ms < 100) return "request_timeout_ms must be at least 100 ms";
  if (max_stream_queued_bytes < 64 * 1024) return "max_stream_queued_bytes must be at least 64 KiB";
  if (max_stdin_chunk_bytes < 1024 || max_stdin_chunk_bytes > 512 * 1024)
    return "max_stdin_chunk_bytes must be 1..512 KiB";
  return {};
}

}  // namespace corral::gateway
