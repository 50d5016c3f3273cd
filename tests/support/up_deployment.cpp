#include "tests/support/up_deployment.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/deployment.hpp"

namespace corral::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool up_deployment::start(std::string* why, const std::vector<std::string>& extra) {
  char tmpl[] = "/tmp/corral-up-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    *why = "mkdtemp failed";
    return false;
  }
  dir_ = tmpl;
  data_ = dir_ + "/var";
  nats_port_ = free_port();
  gateway_port_ = free_port();
  std::vector<std::string> argv = {bin("corral"), "up", "--data", data_, "--port",
                                   std::to_string(nats_port_), "--gateway-port",
                                   std::to_string(gateway_port_), "--runsc", bin("corral-runsc")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  up_ = std::make_unique<background_process>();
  if (!up_->start(argv)) {
    *why = "cannot start corral up";
    return false;
  }
  if (!up_->wait_for_output("corral-executor: ready", 90s) ||
      !up_->wait_for_output("corral-gateway: listening", 30s)) {
    *why = "corral up did not get ready: " + up_->output();
    return false;
  }
  return true;
}

up_deployment::~up_deployment() {
  if (up_) up_->stop(60s);
  if (dir_.empty()) return;
  const std::string root = data_ + "/executor/runtime/runsc";
  auto listed = run({bin("corral-runsc"), "--root", root, "list"}, {}, 30s);
  std::istringstream lines(listed.out);
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string id;
    if (words >> id) (void)run_quiet({bin("corral-runsc"), "--root", root, "delete", "-force", id}, 30s);
  }
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

std::string up_deployment::nats_url() const {
  return "nats://127.0.0.1:" + std::to_string(nats_port_);
}

std::string up_deployment::seed_of(const std::string& role, const std::string& name) const {
  return data_ + "/auth/" + role + "-" + name + ".nk";
}

std::string up_deployment::add_tenant(const std::string& tenant) {
  auto r = run({bin("corral"), "--nats", nats_url(), "token", "create", "--tenant", tenant,
                "--data", data_},
               {}, 60s);
  if (r.exit_code != 0) return {};
  return seed_of("tenant", tenant);
}

run_result up_deployment::corral(const std::string& tenant, const std::vector<std::string>& args,
                                 const std::string& input, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {bin("corral"), "--nats", nats_url(), "--tenant", tenant,
                                   "--nats-creds", seed_of("tenant", tenant)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, input, timeout);
}

}  // namespace corral::test
