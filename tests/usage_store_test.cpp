// storage/: the usage records (metering) over a real RocksDB in a temp dir: encoding, the typed
// API, durability across a reopen, and removal with the sandbox.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "storage/key_layout.hpp"
#include "storage/records.hpp"
#include "storage/store.hpp"

namespace corral::storage {
namespace {

class usage_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/corral-usage-store-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<store> open_store() {
    auto s = store::open(dir_ + "/db", store_options{});
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::string dir_;
};

usage_record sample(const std::string& id, const std::string& tenant, double cpu) {
  usage_record u;
  u.sandbox_id = id;
  u.tenant = tenant;
  u.cpu_core_seconds = cpu;
  u.gib_seconds = cpu / 2;
  u.cost = cpu * 0.00003942;
  u.last_sample_ms = 1'700'000'000'000;
  u.last_cpu_usage_ns = 123'456'789;
  return u;
}

TEST(usage_record_encoding, round_trips_and_rejects_garbage) {
  const auto u = sample("sb-a", "t1", 1.5);
  auto back = decode_usage(encode(u));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(*back == u);
  EXPECT_EQ(decode_usage("not a record").code(), wire::ErrorCode::malformed);
  // A record of another kind never decodes as usage.
  sandbox_record sb;
  sb.id = "sb-a";
  EXPECT_EQ(decode_usage(encode(sb)).code(), wire::ErrorCode::malformed);
}

TEST_F(usage_store_test, put_get_list_survive_reopen) {
  {
    auto st = open_store();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->get_usage("sb-b").code(), wire::ErrorCode::not_found);
    ASSERT_TRUE(st->put_usage({sample("sb-b", "t1", 2), sample("sb-a", "t2", 1)}).ok());
    ASSERT_TRUE(st->put_usage({sample("sb-b", "t1", 3)}).ok());  // replaces
    ASSERT_TRUE(st->close().ok());
  }
  auto st = open_store();
  ASSERT_TRUE(st);
  auto got = st->get_usage("sb-b");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == sample("sb-b", "t1", 3));
  auto all = st->list_usage();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->records.size(), 2u);
  EXPECT_EQ(all->records[0].sandbox_id, "sb-a");
  EXPECT_EQ(all->records[1].sandbox_id, "sb-b");
  EXPECT_TRUE(all->undecodable.empty());
}

TEST_F(usage_store_test, rejects_bad_ids_and_writes_nothing) {
  auto st = open_store();
  ASSERT_TRUE(st);
  auto bad = sample(std::string("sb\0x", 4), "t1", 1);
  EXPECT_EQ(st->put_usage({sample("sb-ok", "t1", 1), bad}).code, wire::ErrorCode::invalid_argument);
  EXPECT_EQ(st->get_usage("sb-ok").code(), wire::ErrorCode::not_found);
  EXPECT_EQ(st->get_usage("").code(), wire::ErrorCode::invalid_argument);
}

TEST_F(usage_store_test, delete_sandbox_removes_its_usage_only) {
  auto st = open_store();
  ASSERT_TRUE(st);
  ASSERT_TRUE(st->put_usage({sample("sb-a", "t1", 1), sample("sb-b", "t1", 2)}).ok());
  ASSERT_TRUE(st->delete_sandbox("sb-a").ok());
  EXPECT_EQ(st->get_usage("sb-a").code(), wire::ErrorCode::not_found);
  EXPECT_TRUE(st->get_usage("sb-b").ok());
}

TEST_F(usage_store_test, undecodable_value_is_reported_not_dropped) {
  {
    auto st = open_store();
    ASSERT_TRUE(st);
    ASSERT_TRUE(st->put_usage({sample("sb-a", "t1", 1)}).ok());
    ASSERT_TRUE(st->close().ok());
  }
  {
    // Raw garbage under a usage key, written past the typed API.
    rocksdb::DBOptions db_opts;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(db_opts, dir_ + "/db", &names).ok());
    for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(db_opts, dir_ + "/db", cfs, &handles, &raw).ok());
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == key_layout::usage_cf) {
        ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), handles[i], "sb-z", "garbage").ok());
      }
    }
    for (auto* h : handles) ASSERT_TRUE(raw->DestroyColumnFamilyHandle(h).ok());
    delete raw;
  }
  auto st = open_store();
  ASSERT_TRUE(st);
  auto all = st->list_usage();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->records.size(), 1u);
  ASSERT_EQ(all->undecodable.size(), 1u);
  EXPECT_EQ(all->undecodable[0], "sb-z");
  EXPECT_EQ(st->get_usage("sb-z").code(), wire::ErrorCode::malformed);
}

}  // namespace
}  // namespace corral::storage
