#include "tests/support/deployment.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "bus/connection.hpp"
#include "bus/nats_auth.hpp"

namespace corral::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Between two looks at the server's log or at whether it accepts an identity yet (a reload is
// an event only the log shows).
constexpr auto log_poll_interval = 5ms;

std::string bin(const std::string& name) {
  // CORRAL_TEST_BIN_DIR runs the tests against other binaries (another build, an older corral).
  const char* other = std::getenv("CORRAL_TEST_BIN_DIR");
  return std::string(other != nullptr && *other != '\0' ? other : CORRAL_BIN_DIR) + "/" + name;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool deployment::start(std::string* why) {
  char tmpl[] = "/tmp/corral-deployment-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    *why = "mkdtemp failed";
    return false;
  }
  dir_ = tmpl;
  if (!fs::exists(bin("corral-runsc"))) {
    *why = "missing " + bin("corral-runsc") + ": build with deploy/build.sh";
    return false;
  }
  // Builds from before NATS identities (CORRAL_TEST_BIN_DIR of an older corral) run without.
  if (const char* off = std::getenv("CORRAL_TEST_NO_NATS_AUTH"); off != nullptr && *off == '1')
    opts_.nats_auth = false;
  if (opts_.nats_auth) {
    std::string e;
    if (creds(opts_.tenant).empty() ||
        !bus::nats_auth_dir(dir_ + "/auth").ensure(bus::nats_role::executor, "test", nullptr, &e)) {
      *why = "NATS identities: " + e;
      return false;
    }
    unsigned char raw[16];
    std::ifstream urandom("/dev/urandom", std::ios::binary);
    urandom.read(reinterpret_cast<char*>(raw), sizeof raw);
    for (unsigned char b : raw) harness_password_ += "0123456789abcdef"[b & 15];
    nats_server_process::options o;
    o.config = nats_config();
    nats_ = std::make_unique<nats_server_process>(o);
  }
  if (!nats_->start()) {
    *why = "nats-server: " + nats_->error();
    return false;
  }
  return start_executor(why);
}

// The deployment's identities, and an anonymous "harness" user with every permission (the
// test's own bus connections).
std::string deployment::nats_config() const {
  std::string e;
  auto ids = bus::nats_auth_dir(dir_ + "/auth").identities(&e);
  const std::string harness = "      {user: \"harness\", password: \"" + harness_password_ +
                              "\", permissions: {publish: \">\", subscribe: \">\"}}\n";
  return bus::accounts_config(ids ? *ids : std::vector<bus::nats_identity>{}, harness) +
         "no_auth_user: \"harness\"\n";
}

std::string deployment::creds(const std::string& tenant) {
  return identity_creds(bus::nats_role::tenant, tenant);
}

std::string deployment::gateway_creds(const std::string& name) {
  return identity_creds(bus::nats_role::gateway, name);
}

std::string deployment::identity_creds(bus::nats_role role, const std::string& tenant) {
  if (!opts_.nats_auth || dir_.empty()) return {};
  bus::nats_auth_dir auth(dir_ + "/auth");
  bool created = false;
  std::string e;
  auto seed = auth.ensure(role, tenant, &created, &e);
  if (!seed) {
    ADD_FAILURE() << "NATS identity of " << bus::to_string(role) << " " << tenant << ": " << e;
    return {};
  }
  if (created && nats_->running()) {
    // Twice, each reload waited for in the server's log: nats-server 2.9.10 wires a new
    // account's imports only on the reload after the one that created it (as `corral token
    // create` does: cli/up.cpp). Then the server must accept the new identity.
    auto reloads = [&] {
      const std::string log = nats_->log();
      std::size_t n = 0;
      for (std::size_t at = 0; (at = log.find("Reloaded server configuration", at)) != std::string::npos; ++at) ++n;
      return n;
    };
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    const std::size_t before = reloads();
    for (std::size_t k = 1; k <= 2; ++k) {
      EXPECT_TRUE(nats_->reload(nats_config())) << nats_->error();
      while (reloads() < before + k && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(log_poll_interval);
      EXPECT_GE(reloads(), before + k) << "the server did not log reload " << k;
    }
    bus::options o;
    o.urls = {nats_->url()};
    o.nkey_seed_file = *seed;
    o.max_reconnect = 0;
    o.delivery_pool_threads = 0;
    std::string why;
    while (!bus::connection::connect(o, &why) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(log_poll_interval);
    EXPECT_TRUE(bus::connection::connect(o, &why)) << "the server never accepted " << tenant
                                                   << "'s identity: " << why;
  }
  return *seed;
}

bool deployment::start_executor(std::string* why) {
  executor_ = std::make_unique<background_process>();
  std::vector<std::string> argv = {bin("corral-executor"), "--data", dir_ + "/executor", "--nats",
                                   nats_->url(), "--node", opts_.node, "--runsc", bin("corral-runsc")};
  if (opts_.nats_auth) {
    argv.push_back("--nats-creds");
    argv.push_back(bus::nats_auth_dir(dir_ + "/auth").seed_file(bus::nats_role::executor, "test"));
  }
  argv.insert(argv.end(), opts_.executor_args.begin(), opts_.executor_args.end());
  if (!executor_->start(argv)) {
    *why = "cannot start the executor";
    return false;
  }
  if (!executor_->wait_for_output("corral-executor: ready", 60s)) {
    *why = "executor not ready: " + executor_->output();
    return false;
  }
  return true;
}

deployment::~deployment() {
  if (executor_) executor_->stop();
  if (dir_.empty()) return;
  // Sandboxes a failed test left behind: end them (runsc list prints a header, then one id a line).
  auto listed = run({bin("corral-runsc"), "--root", runsc_root(), "list"}, {}, 30s);
  std::istringstream lines(listed.out);
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string id;
    if (words >> id)
      (void)run_quiet({bin("corral-runsc"), "--root", runsc_root(), "delete", "-force", id}, 30s);
  }
  // Overlay and loop mounts of the sandboxes, innermost first.
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::vector<std::string> mounts;
  while (std::getline(mountinfo, line)) {
    std::istringstream words(line);
    std::string w;
    for (int i = 0; i < 5 && words >> w; ++i) {
    }
    if (w.rfind(dir_ + "/", 0) == 0) mounts.push_back(w);
  }
  for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) (void)run_quiet({"umount", "-l", *it}, 30s);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::vector<std::string> deployment::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {bin("corral"), "--nats", nats_->url(), "--tenant", opts_.tenant};
  if (opts_.nats_auth) {
    argv.push_back("--nats-creds");
    argv.push_back(bus::nats_auth_dir(dir_ + "/auth").seed_file(bus::nats_role::tenant, opts_.tenant));
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

run_result deployment::corral(const std::vector<std::string>& args, const std::string& input,
                              std::chrono::milliseconds timeout, const std::string& tenant) {
  auto argv = cli(args);
  if (!tenant.empty()) {
    argv[4] = tenant;
    if (opts_.nats_auth) argv[6] = creds(tenant);
  }
  return run(argv, input, timeout);
}

std::string deployment::create(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"sandbox", "create"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = corral(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return trim(r.out);
}

}  // namespace corral::test
