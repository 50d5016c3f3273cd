#pragma once
// corral-gateway for integration tests: the real binary on a free port (port 0, read back from
// its "listening on" line) in front of a test::deployment, and a small blocking HTTP client.
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

// One request on a fresh connection; waits at most `timeout` for the whole answer.
http_reply http_call(uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body = {}, const std::string& token = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));

class gateway_process {
 public:
  // Starts corral-gateway against `d` with a tokens file in d's dir; false with *why.
  bool start(deployment& d, std::string* why, const std::vector<std::string>& extra = {});
  // `corral token create --tenant T` into this gateway's tokens file; returns the token.
  std::string new_token(deployment& d, const std::string& tenant);
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
  uint16_t port_ = 0;
  std::string url_;
};

}  // namespace corral::test
