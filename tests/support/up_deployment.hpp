#pragma once
// `corral up` itself, for tests of what it promises as a product (docs/security.md): started in a
// fresh temporary data directory on free ports, waited on until its executor is ready, driven
// with the real CLI and `corral token create`. The destructor stops it (SIGTERM: the executor
// ends its sandboxes), ends what a failed test left behind and removes the directory.
//
// Not thread-safe: one test thread drives it. Needs root (runsc) and the built binaries.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/child_process.hpp"

namespace corral::test {

class up_deployment {
 public:
  up_deployment() = default;
  ~up_deployment();
  up_deployment(const up_deployment&) = delete;
  up_deployment& operator=(const up_deployment&) = delete;

  // Starts `corral up --data DIR --port P --gateway-port G extra...`; false with *why.
  bool start(std::string* why, const std::vector<std::string>& extra = {});

  // `corral token create --tenant T --data DIR`: the tenant's NATS seed file (empty on failure).
  std::string add_tenant(const std::string& tenant);
  // Runs the CLI as `tenant` with that tenant's credentials.
  run_result corral(const std::string& tenant, const std::vector<std::string>& args,
                    const std::string& input = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(120));

  [[nodiscard]] std::string nats_url() const;
  [[nodiscard]] int gateway_port() const { return gateway_port_; }
  [[nodiscard]] const std::string& data() const { return data_; }
  // The seed files corral up made for its own parties.
  [[nodiscard]] std::string seed_of(const std::string& role, const std::string& name) const;
  background_process& process() { return *up_; }

 private:
  std::string dir_, data_;
  int nats_port_ = 0, gateway_port_ = 0;
  std::unique_ptr<background_process> up_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int free_port();

}  // namespace corral::test
