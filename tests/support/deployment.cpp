#include "tests/support/deployment.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace corral::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string bin(const std::string& name) { return std::string(CORRAL_BIN_DIR) + "/" + name; }

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
  if (!nats_.start()) {
    *why = "nats-server: " + nats_.error();
    return false;
  }
  return start_executor(why);
}

bool deployment::start_executor(std::string* why) {
  executor_ = std::make_unique<background_process>();
  std::vector<std::string> argv = {bin("corral-executor"), "--data", dir_ + "/executor", "--nats",
                                   nats_.url(), "--node", opts_.node, "--runsc", bin("corral-runsc")};
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
  std::vector<std::string> argv = {bin("corral"), "--nats", nats_.url(), "--tenant", opts_.tenant};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

run_result deployment::corral(const std::vector<std::string>& args, const std::string& input,
                              std::chrono::milliseconds timeout, const std::string& tenant) {
  auto argv = cli(args);
  if (!tenant.empty()) argv[4] = tenant;
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
