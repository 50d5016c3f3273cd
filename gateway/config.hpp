#pragma once
// corral-gateway's configuration: every limit is a named value with a default, validated by
// validate() at start-up.
#include <cstddef>
#include <cstdint>
#include <string>

namespace corral::gateway {

struct gateway_config {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;  // 0: pick a free port
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string nats_creds;  // the gateway's NATS nkey seed file (docs/security.md)
  std::string nats_ca;     // TLS: the CA that verifies the NATS server (docs/operations.md)
  std::string tokens_file;      // lines "SHA256HEX TENANT [key=value...]"; reloaded when it changes
  std::string pool = "default";

  // /metrics (and /healthz) on a listener of their own, without a token; empty: none, and
  // /metrics on the main listener answers only an operator token (role=admin).
  std::string metrics_host;
  uint16_t metrics_port = 0;

  int io_threads = 2;           // Asio threads: accept, parse, write; never block
  // Route a complete request (parse its JSON, find its tenant's NATS link) and start its NATS
  // calls; nothing on them waits for NATS: every answer comes back on the connection's strand.
  int worker_threads = 8;
  // nats.c's shared delivery pool for the subscriptions of output streams (one subscription per
  // stream, all served by these threads; nats.c's default is a thread per subscription).
  int nats_delivery_threads = 4;
  std::size_t max_header_bytes = 16 * 1024;          // request line + headers
  std::size_t max_body_bytes = 8 * 1024 * 1024;      // any request body (413 beyond)
  int64_t read_timeout_ms = 30'000;  // a client must send a whole request within this
  int64_t write_timeout_ms = 30'000; // a client must take each response piece within this
  int64_t idle_timeout_ms = 60'000;  // keep-alive connection without a request
  // Output streams, WebSockets and long-polls at once, all tenants together (429 beyond).
  std::size_t max_open_streams = 1024;
  // Per tenant (defaults; the tokens file may set max_streams= / max_inflight= per token): its
  // output streams, WebSockets and long-polls (wait, terminate?wait, run) at once, and its other
  // requests at once, counted from their headers (so also bounding their bodies in memory).
  std::size_t tenant_max_streams = 256;
  std::size_t tenant_max_inflight = 32;
  // Connections at once: all (0: three quarters of the descriptor limit at start) and from one
  // source address (0: no limit; behind a load balancer every client has its address).
  std::size_t max_connections = 0;
  std::size_t max_connections_per_address = 0;
  int64_t max_wait_ms = 600'000;        // longest long-poll (wait, run)
  int64_t request_timeout_ms = 30'000;  // one NATS request
  // The Retry-After (seconds) of a 429 for a tenant at its limit.
  int retry_after_s = 1;
  // Live output held per stream while its client is slow; beyond it the gateway drops it and
  // later replays from the executor's store (the executor keeps the output, not the gateway).
  std::size_t max_stream_queued_bytes = 4 * 1024 * 1024;
  std::size_t max_stdin_chunk_bytes = 256 * 1024;  // one StdinWrite to the executor

  // Empty when valid, else why not.
  [[nodiscard]] std::string validate() const;
};

}  // namespace corral::gateway
