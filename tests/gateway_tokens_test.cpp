// The gateway's token store: hashes only, bad lines skipped, the file re-read when it changes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

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

TEST(TokenStore, NoFileLetsNobodyIn) {
  token_store store("/nonexistent/corral-tokens");
  EXPECT_FALSE(store.tenant_of("anything"));
}

}  // namespace
}  // namespace corral::gateway
