// What of the host a sandbox sees (docs/promises.md P6; docs/security.md, "Smaller boundaries"):
// the host's /usr, read-only, but not /usr/local, the host administrator's own tools, packages
// and their configuration.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/deployment.hpp"

namespace corral {
namespace {

using namespace std::chrono_literals;
using test::deployment;
using test::trim;

TEST(HostileImage, TheHostsUsrLocalIsNotInASandbox) {
  std::size_t host_entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/usr/local")) ++host_entries;
  ASSERT_GT(host_entries, 0u) << "this host's /usr/local is empty: the test would prove nothing";
  deployment d({.node = "image-node", .tenant = "curious", .executor_args = {"--warm-pool", "0"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  const auto sb = d.create({"--timeout", "120"});
  auto ls = d.corral({"exec", sb, "--", "ls", "-A", "/usr/local"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(ls.out, "") << "the host's /usr/local is visible in the sandbox";
  auto write = d.corral({"exec", sb, "--", "sh", "-c", "touch /usr/local/x 2>/dev/null && echo wrote || echo refused"});
  EXPECT_EQ(write.out, "refused\n");
  // The rest of /usr is the host's, read-only.
  auto python = d.corral({"exec", sb, "--", "python3", "-c", "print(1)"});
  EXPECT_EQ(python.out, "1\n") << python.err;
  (void)d.corral({"sandbox", "rm", sb});
}

}  // namespace
}  // namespace corral
