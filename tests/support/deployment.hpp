#pragma once
// A single-machine corral for integration tests: a real nats-server on a free port and a real
// corral-executor (runsc sandboxes, RocksDB) with its data in a fresh temp dir, driven through
// the real `corral` CLI. The destructor stops the executor, ends every sandbox it left (runsc
// delete -force), unmounts what is mounted under the data dir and removes it.
//
// Not thread-safe: one test thread drives it. Needs root (runsc) and the built binaries in
// CORRAL_BIN_DIR (corral, corral-executor, corral-init, corral-runsc from deploy/build.sh).
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bus/nats_auth.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/nats_server.hpp"

namespace corral::test {

// A built program: CORRAL_BIN_DIR, or $CORRAL_TEST_BIN_DIR when set (e.g. an older build).
std::string bin(const std::string& name);
std::string trim(std::string s);

class deployment {
 public:
  struct options {
    std::string node = "test-node";
    std::string tenant = "test";
    std::vector<std::string> executor_args;  // extra flags for corral-executor
    // NATS with identities (docs/security.md): the executor and every tenant the CLI is run as
    // connect with their own nkey and permissions, as under `corral up`. Connections without
    // credentials (a test's own bus connections) get every permission: they are the test.
    bool nats_auth = true;
  };
  deployment() = default;
  explicit deployment(options opts) : opts_(std::move(opts)) {}
  ~deployment();
  deployment(const deployment&) = delete;
  deployment& operator=(const deployment&) = delete;

  // Starts nats-server and the executor; false with *why on failure.
  bool start(std::string* why);
  // (Re)starts the executor on the same data dir and waits for its ready line.
  bool start_executor(std::string* why);

  // The seed file of `tenant`'s NATS identity (created, and the server reloaded, when new);
  // empty without nats_auth.
  std::string creds(const std::string& tenant);
  // The same for a gateway's identity (role gateway, in account CORRAL).
  std::string gateway_creds(const std::string& name = "test");

  // Runs `corral --nats URL --tenant T args...` (tenant: the deployment's by default).
  run_result corral(const std::vector<std::string>& args, const std::string& input = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(120),
                    const std::string& tenant = {});
  // `corral sandbox create extra...`; returns the id (a test failure when it fails).
  std::string create(const std::vector<std::string>& extra = {});
  // The argv prefix of the CLI, for running it as a background_process.
  std::vector<std::string> cli(const std::vector<std::string>& args) const;

  nats_server_process& nats() { return *nats_; }
  background_process& executor() { return *executor_; }
  const std::string& dir() const { return dir_; }
  const std::string& tenant() const { return opts_.tenant; }
  // runsc's --root of this deployment's runtime.
  std::string runsc_root() const { return dir_ + "/executor/runtime/runsc"; }

 private:
  options opts_;
  std::string nats_config() const;
  // creds() of any role: the identity made when missing, and the server reloaded until it
  // accepts it.
  std::string identity_creds(bus::nats_role role, const std::string& name);
  std::string dir_;
  std::string harness_password_;
  std::unique_ptr<nats_server_process> nats_ = std::make_unique<nats_server_process>();
  std::unique_ptr<background_process> executor_;
};

// A test fixture whose suite shares one deployment, made from make_options(), started once
// before the suite's first test and torn down after its last.
template <deployment::options (*make_options)()>
class deployment_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(geteuid(), 0u) << "runsc needs root";
    d_ = new deployment(make_options());
    std::string why;
    if (!d_->start(&why)) {
      delete d_;
      d_ = nullptr;
      FAIL() << why;
    }
  }
  static void TearDownTestSuite() {
    delete d_;
    d_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(d_, nullptr) << "the deployment did not start"; }
  static inline deployment* d_ = nullptr;
};

}  // namespace corral::test
