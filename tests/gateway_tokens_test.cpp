// The gateway's token store: hashes only, bad lines skipped, the file re-read when it changes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gateway/tenant_slots.hpp"
#include "gateway/token_store.hpp"

namespace corral::gateway {
namespace {

std::string temp_file() {
  std::string path = (std::filesystem::temp_directory_path() / "corral-tokens-XXXXXX").string();
  const int fd = ::mkstemp(path.data());
  EXPECT_GE(fd, 0);
  ::close(fd);
  return path;
}

TEST(TokenStore, Sha256IsTheStandardOne) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TokenStore, MapsHashesToTenantsAndReloads) {
  const auto path = temp_file();
  {
    std::ofstream out(path);
    out << "# comment\n"
        << sha256_hex("t1") << " alice\n"
        << "nothex bob\n"                           // not a hash: skipped
        << sha256_hex("t3") << " bad.tenant!\n"     // not a valid tenant: skipped
        << "\n";
  }
  token_store store(path);
  EXPECT_EQ(store.tenant_of("t1"), std::optional<std::string>("alice"));
  EXPECT_FALSE(store.tenant_of("t3"));
  EXPECT_FALSE(store.tenant_of("t2"));
  EXPECT_FALSE(store.tenant_of(""));
  EXPECT_EQ(store.size(), 1u);
  {
    std::ofstream out(path, std::ios::app);
    out << sha256_hex("t2") << " carol\n";
  }
  EXPECT_EQ(store.tenant_of("t2"), std::optional<std::string>("carol"));
  std::filesystem::remove(path);
  EXPECT_FALSE(store.tenant_of("t1"));  // the file is gone: nobody is let in
}

TEST(TokenStore, LinesMayCarryLimitsAndARole) {
  const auto path = temp_file();
  {
    std::ofstream out(path);
    out << sha256_hex("plain") << " alice\n"                                   // the old format
        << sha256_hex("limited") << " bob max_streams=3 max_inflight=7\n"
        << sha256_hex("op") << " operator role=admin\n"
        << sha256_hex("odd") << " carol max_streams=lots colour=blue  # a comment\n"
        << sha256_hex("bad-role") << " dave role=root\n";                      // skipped
  }
  token_store store(path);
  auto alice = store.lookup("plain");
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->tenant, "alice");
  EXPECT_FALSE(alice->max_streams);
  EXPECT_FALSE(alice->admin);
  auto bob = store.lookup("limited");
  ASSERT_TRUE(bob);
  EXPECT_EQ(bob->max_streams, std::optional<std::size_t>(3));
  EXPECT_EQ(bob->max_inflight, std::optional<std::size_t>(7));
  auto op = store.lookup("op");
  ASSERT_TRUE(op);
  EXPECT_TRUE(op->admin);
  EXPECT_FALSE(store.tenant_of("op")) << "an operator's token is no tenant's";
  auto carol = store.lookup("odd");
  ASSERT_TRUE(carol) << "bad fields are ignored, the token stays good";
  EXPECT_FALSE(carol->max_streams);
  EXPECT_FALSE(store.lookup("bad-role"));
  std::string ignored;
  EXPECT_TRUE(parse_token_line(sha256_hex("x") + " erin max_inflight=0 max_streams=2", &ignored));
  EXPECT_EQ(ignored, "max_inflight=0");
  std::filesystem::remove(path);
}

TEST(TokenStore, NoFileLetsNobodyIn) {
  token_store store("/nonexistent/corral-tokens");
  EXPECT_FALSE(store.tenant_of("anything"));
}

// Each tenant against its own limit, streams also against the gateway's; a slot comes back once,
// by release() or with its last owner.
TEST(GatewayTenantSlots, PerTenantAndTotalLimits) {
  tenant_slots slots(3);  // streams of all tenants together
  using k = tenant_slots::kind;
  auto a1 = slots.take("a", k::stream, 2), a2 = slots.take("a", k::stream, 2);
  ASSERT_TRUE(a1 && a2);
  bool all_full = true;
  EXPECT_FALSE(slots.take("a", k::stream, 2, &all_full)) << "a is at its limit";
  EXPECT_FALSE(all_full);
  auto b1 = slots.take("b", k::stream, 2);
  ASSERT_TRUE(b1) << "b is served while a is at its limit";
  EXPECT_FALSE(slots.take("b", k::stream, 2, &all_full)) << "the gateway is full";
  EXPECT_TRUE(all_full);
  auto inflight = slots.take("a", k::inflight, 1);
  EXPECT_TRUE(inflight) << "in flight is counted apart from streams";
  EXPECT_FALSE(slots.take("a", k::inflight, 1));
  a1->release();
  a1->release();  // once only
  EXPECT_EQ(slots.held("a", k::stream), 1u);
  EXPECT_EQ(slots.total(k::stream), 2u);
  a2.reset();  // the last owner gives it back
  b1.reset();
  inflight.reset();
  EXPECT_EQ(slots.total(k::stream), 0u);
  EXPECT_EQ(slots.total(k::inflight), 0u);
  EXPECT_EQ(slots.held("a", k::stream), 0u);
}

}  // namespace
}  // namespace corral::gateway
