// `corral up` killed while it starts (docs/security.md, "Smaller boundaries"): its children,
// nats-server first, must not outlive it (a surviving server holds the port, and the next start
// fails on it).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/up_deployment.hpp"

namespace corral {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Waits until process `pid` (not our child) has exited: a pidfd becomes readable then.
bool wait_gone(pid_t pid, std::chrono::milliseconds within) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;  // already gone
  pollfd p{fd, POLLIN, 0};
  const int n = ::poll(&p, 1, static_cast<int>(within.count()));
  ::close(fd);
  return n == 1;
}

TEST(HostileUp, ChildrenDieWithAnInterruptedStart) {
  char tmpl[] = "/tmp/corral-upkill-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string data = std::string(tmpl) + "/var";
  const int port = test::free_port();
  test::background_process up;
  ASSERT_TRUE(up.start({test::bin("corral"), "up", "--data", data, "--port", std::to_string(port),
                        "--gateway-port", "0", "--runsc", test::bin("corral-runsc")}));
  // Its nats-server child, found as soon as it exists: corral up is then still starting (it
  // waits for the server to listen, then starts the executor).
  pid_t nats = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (nats <= 0 && std::chrono::steady_clock::now() < deadline) {
    for (const auto& e : fs::directory_iterator("/proc")) {
      const std::string name = e.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(e.path() / "stat");
      std::string pid, comm, state;
      long ppid = 0;
      if (!(stat >> pid >> comm >> state >> ppid) || ppid != up.pid()) continue;
      if (comm.find("nats") != std::string::npos) nats = static_cast<pid_t>(std::stol(pid));
    }
    if (nats <= 0) std::this_thread::yield();
  }
  ASSERT_GT(nats, 0) << "no nats-server child appeared: " << up.output();
  up.kill9();
  EXPECT_TRUE(wait_gone(nats, 20s)) << "nats-server (pid " << nats << ") outlived corral up";
  if (::kill(nats, 0) == 0) ::kill(nats, SIGKILL);  // leave nothing behind either way
  // The port is free again for the next start.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  const int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0)
      << "port " << port << " is still held";
  ::close(fd);
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

}  // namespace
}  // namespace corral
