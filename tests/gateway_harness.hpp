#pragma once
// corral-gateway for integration tests: the real binary on a free port (port 0, read back from
// its "listening on" line) in front of a test::deployment, and a small blocking HTTP client.
// The binary is CORRAL_TEST_GATEWAY_BIN when set (e.g. an older build, to show a test fails
// against it), else the build's. With the deployment's NATS identities the gateway connects as
// its own identity (role gateway).
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"

namespace corral::test {

struct http_reply {
  unsigned status = 0;  // 0: no answer (connection failed)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// The corral-gateway binary under test.
std::string gateway_bin();

// One request on a fresh connection; waits at most `timeout` for the whole answer.
http_reply http_call(uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body = {}, const std::string& token = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));

class gateway_process {
 public:
  // Starts corral-gateway against `d` with a tokens file in d's dir (`tokens_file` when given);
  // false with *why (also when the gateway exits at once, e.g. refusing a flag).
  bool start(deployment& d, std::string* why, const std::vector<std::string>& extra = {},
             const std::string& tokens_file = {});
  // `corral token create --tenant T` into this gateway's tokens file; returns the token.
  std::string new_token(deployment& d, const std::string& tenant);
  // A token of its own for tenant T with `fields` ("max_streams=2 ...") on its line, or an
  // operator's token (fields "role=admin").
  std::string add_token(const std::string& tenant, const std::string& fields);
  // The metrics listener's port (--metrics-listen), 0 without one.
  uint16_t metrics_port() const { return metrics_port_; }
  // Kills the running gateway (SIGKILL: no drain, its connections just break) and starts a new
  // one on the same port, tokens file and NATS, with `extra` flags: clients reconnect to the
  // same URL. False with *why (e.g. the port was taken in between).
  bool restart(deployment& d, std::string* why, const std::vector<std::string>& extra = {});
  uint16_t port() const { return port_; }
  const std::string& url() const { return url_; }
  background_process& process() { return proc_; }
  http_reply call(const std::string& method, const std::string& target, const std::string& body = {},
                  const std::string& token = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return http_call(port_, method, target, body, token, timeout);
  }

 private:
  background_process proc_;
  std::string tokens_file_;
  uint16_t port_ = 0, metrics_port_ = 0;
  std::string url_;
};

}  // namespace corral::test
