// storage/: record encodings, the store over a real RocksDB in a temp dir, and a kill -9 crash
// test (docs/promises.md P2, P9, P10).
#include <sys/stat.h>
#include "storage/store.hpp"

#include <fcntl.h>
#include <flatbuffers/flatbuffers.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "corral/storage/records_generated.h"
#include "storage/key_layout.hpp"
#include "storage/records.hpp"

namespace corral::storage {

// Readable failures for record comparisons.
void PrintTo(const sandbox_record& r, std::ostream* os) {
  *os << "sandbox_record{" << r.id << " " << wire::to_string(r.state)
      << " next_exec_handle=" << r.next_exec_handle << " message=\"" << r.message << "\"}";
}
void PrintTo(const process_record& r, std::ostream* os) {
  *os << "process_record{" << r.sandbox_id << "/" << r.exec_id << " handle=" << r.handle
      << " next_seq=" << r.next_seq << "}";
}
void PrintTo(const output_chunk& c, std::ostream* os) {
  *os << "output_chunk{seq=" << c.seq << " offset=" << c.offset << " bytes=" << c.data.size()
      << "}";
}

namespace {

using namespace std::chrono_literals;
using wire::ErrorCode;
using steady = std::chrono::steady_clock;

::testing::AssertionResult is_ok(const status& st) {
  if (st.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << wire::to_string(st.code) << ": " << st.message;
}

template <class T>
::testing::AssertionResult is_ok(const result<T>& r) {
  return is_ok(r.ok() ? status{} : r.error());
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "corral_store_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

wire::bytes to_bytes(const std::string& s) { return wire::bytes(s.begin(), s.end()); }

// Every field set to a value other than its default.
sandbox_record full_sandbox(const std::string& id = "sb-full") {
  sandbox_record r;
  r.id = id;
  r.tenant = "tenant-a";
  r.name = "my sandbox";
  r.image = "im-0123456789";
  r.state = wire::SandboxState::terminating;
  r.node = "node-7";
  r.created_at_ms = 1'700'000'000'001;
  r.started_at_ms = 1'700'000'000'002;
  r.ended_at_ms = 1'700'000'000'003;
  r.timeout_ms = -5;  // stored as is, even when odd
  r.has_return_code = true;
  r.return_code = -137;
  r.message = std::string("killed\0by\xffsignal", 16);
  r.tags = {{"gpu", "H100"}, {"", ""}, {"team", "eval"}};
  r.entrypoint = {"/bin/sh", "-c", "sleep 1", ""};
  r.env = {{"PATH", "/usr/bin"}, {"EMPTY", ""}};
  r.workdir = "/work";
  r.cpu_millis = 1500;
  r.memory_mib = 4096;
  r.next_exec_handle = std::numeric_limits<uint64_t>::max();
  r.request_id = "rq-42";
  return r;
}

process_record full_process(const std::string& sandbox_id = "sb-full",
                            const std::string& exec_id = "ex-full", uint64_t handle = 3) {
  process_record r;
  r.sandbox_id = sandbox_id;
  r.exec_id = exec_id;
  r.handle = handle;
  r.argv = {"python3", "-c", "print(1)"};
  r.env = {{"HOME", "/root"}, {"LANG", "C.UTF-8"}};
  r.workdir = "/tmp";
  r.timeout_ms = 30'000;
  r.stdin_open = true;
  r.started_at_ms = 1'700'000'000'010;
  r.ended_at_ms = 1'700'000'000'020;
  r.finished = true;
  r.outcome = wire::Outcome::signaled;
  r.exit_code = 137;
  r.signal = 9;
  r.message = "killed";
  r.stdout_bytes = 1ull << 40;
  r.stderr_bytes = 12;
  r.next_seq = 77;
  return r;
}

output_chunk chunk(uint64_t seq, const std::string& data,
                   wire::Stream stream = wire::Stream::stdout, uint64_t offset = 0) {
  output_chunk c;
  c.seq = seq;
  c.stream = stream;
  c.offset = offset;
  c.data = to_bytes(data);
  return c;
}

std::vector<uint64_t> seqs(const std::vector<output_chunk>& chunks) {
  std::vector<uint64_t> out;
  for (const auto& c : chunks) out.push_back(c.seq);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Record encodings

TEST(store_records_test, sandbox_round_trips_every_field) {
  const sandbox_record r = full_sandbox();
  auto back = decode_sandbox(encode(r));
  ASSERT_TRUE(is_ok(back));
  EXPECT_EQ(*back, r);
}

TEST(store_records_test, process_round_trips_every_field) {
  const process_record r = full_process();
  auto back = decode_process(encode(r));
  ASSERT_TRUE(is_ok(back));
  EXPECT_EQ(*back, r);
}

TEST(store_records_test, output_chunk_round_trips_every_field) {
  output_chunk c = chunk(std::numeric_limits<uint64_t>::max(), std::string("a\0b\xff", 4),
                         wire::Stream::stderr, 1ull << 50);
  auto back = decode_output_chunk(encode(c));
  ASSERT_TRUE(is_ok(back));
  EXPECT_EQ(*back, c);
}

TEST(store_records_test, defaults_round_trip) {
  auto s = decode_sandbox(encode(sandbox_record{}));
  ASSERT_TRUE(is_ok(s));
  EXPECT_EQ(*s, sandbox_record{});
  auto p = decode_process(encode(process_record{}));
  ASSERT_TRUE(is_ok(p));
  EXPECT_EQ(*p, process_record{});
  auto c = decode_output_chunk(encode(output_chunk{}));
  ASSERT_TRUE(is_ok(c));
  EXPECT_EQ(*c, output_chunk{});
}

TEST(store_records_test, decodes_from_unaligned_bytes) {
  const std::string bytes = encode(full_sandbox());
  std::vector<char> buffer(bytes.size() + 16);
  for (std::size_t shift = 1; shift < 8; ++shift) {
    std::memcpy(buffer.data() + shift, bytes.data(), bytes.size());
    auto back = decode_sandbox(std::string_view(buffer.data() + shift, bytes.size()));
    ASSERT_TRUE(is_ok(back)) << "shift " << shift;
    EXPECT_EQ(*back, full_sandbox());
  }
}

TEST(store_records_test, one_kind_never_decodes_as_another) {
  EXPECT_EQ(decode_process(encode(full_sandbox())).code(), ErrorCode::malformed);
  EXPECT_EQ(decode_sandbox(encode(full_process())).code(), ErrorCode::malformed);
  EXPECT_EQ(decode_output_chunk(encode(full_process())).code(), ErrorCode::malformed);
}

TEST(store_records_test, garbage_fails_cleanly) {
  EXPECT_EQ(decode_sandbox("").code(), ErrorCode::malformed);
  EXPECT_EQ(decode_sandbox("abc").code(), ErrorCode::malformed);
  EXPECT_EQ(decode_sandbox(std::string(8, '\0')).code(), ErrorCode::malformed);
  EXPECT_EQ(decode_sandbox(std::string(64, '\xff')).code(), ErrorCode::malformed);
  std::mt19937 rng(1234);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 300, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng());
    if (i % 2 == 0 && bytes.size() >= 8) bytes.replace(4, 4, "CSSB");  // right identifier
    EXPECT_FALSE(decode_sandbox(bytes).ok()) << "random input " << i;
    EXPECT_FALSE(decode_process(bytes).ok()) << "random input " << i;
    EXPECT_FALSE(decode_output_chunk(bytes).ok()) << "random input " << i;
  }
}

TEST(store_records_test, truncated_records_fail) {
  const std::string sandbox = encode(full_sandbox());
  for (std::size_t n = 0; n < sandbox.size(); ++n) {
    EXPECT_FALSE(decode_sandbox(std::string_view(sandbox).substr(0, n)).ok()) << n;
  }
  const std::string process = encode(full_process());
  for (std::size_t n = 0; n < process.size(); ++n) {
    EXPECT_FALSE(decode_process(std::string_view(process).substr(0, n)).ok()) << n;
  }
}

// Any single corrupted byte either still decodes (e.g. inside a string) or fails: never a
// crash or an out-of-bounds read (run under ASan+UBSan in the sanitizer build).
TEST(store_records_test, corrupted_bytes_never_crash) {
  const std::string sandbox = encode(full_sandbox());
  const std::string process = encode(full_process());
  const std::string out = encode(chunk(5, "hello world"));
  for (const uint8_t mask : {0x01, 0x80, 0xff}) {
    for (std::size_t i = 0; i < sandbox.size(); ++i) {
      std::string bad = sandbox;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      (void)decode_sandbox(bad);  // ignored: only the absence of a crash is checked
    }
    for (std::size_t i = 0; i < process.size(); ++i) {
      std::string bad = process;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      (void)decode_process(bad);  // ignored: only the absence of a crash is checked
    }
    for (std::size_t i = 0; i < out.size(); ++i) {
      std::string bad = out;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      (void)decode_output_chunk(bad);  // ignored: only the absence of a crash is checked
    }
  }
}

TEST(store_records_test, over_cap_fails) {
  const std::string bytes = encode(full_sandbox());
  EXPECT_EQ(decode_sandbox(bytes, bytes.size() - 1).code(), ErrorCode::malformed);
  EXPECT_TRUE(decode_sandbox(bytes, bytes.size()).ok());
}

// Builds a sandbox record buffer by hand with the given version and state.
std::string handmade_sandbox(uint16_t version, uint8_t state) {
  const std::string reference = encode(sandbox_record{});
  const std::string identifier = reference.substr(4, 4);
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString("sb-x");
  fb::SandboxRecordBuilder b(fbb);
  b.add_version(version);
  b.add_id(id);
  b.add_state(state);
  fbb.Finish(b.Finish(), identifier.c_str());
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

TEST(store_records_test, versions) {
  auto current = decode_sandbox(handmade_sandbox(record_format_version, 2));
  ASSERT_TRUE(is_ok(current));
  EXPECT_EQ(current->id, "sb-x");
  EXPECT_EQ(current->state, wire::SandboxState::running);
  EXPECT_EQ(current->tags, string_pairs{});  // fields an older writer did not know: defaults
  EXPECT_EQ(decode_sandbox(handmade_sandbox(0, 2)).code(), ErrorCode::malformed);
  EXPECT_EQ(decode_sandbox(handmade_sandbox(record_format_version + 1, 2)).code(),
            ErrorCode::failed_precondition);
}

TEST(store_records_test, enum_out_of_range_fails) {
  EXPECT_TRUE(decode_sandbox(handmade_sandbox(record_format_version, 7)).ok());
  EXPECT_EQ(decode_sandbox(handmade_sandbox(record_format_version, 8)).code(),
            ErrorCode::malformed);
  EXPECT_EQ(decode_sandbox(handmade_sandbox(record_format_version, 255)).code(),
            ErrorCode::malformed);
}

TEST(store_records_test, output_keys_sort_by_seq) {
  const std::vector<uint64_t> ordered = {
      0, 1, 255, 256, 65535, 65536, 1ull << 40, std::numeric_limits<uint64_t>::max()};
  const std::string prefix = key_layout::output_prefix("sb-a", "ex-b");
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    const std::string key = key_layout::output_key("sb-a", "ex-b", ordered[i]);
    uint64_t seq = 0;
    ASSERT_TRUE(key_layout::parse_output_seq(key, prefix, seq));
    EXPECT_EQ(seq, ordered[i]);
    if (i > 0) {
      EXPECT_LT(key_layout::output_key("sb-a", "ex-b", ordered[i - 1]), key);
    }
  }
  uint64_t seq = 0;
  EXPECT_FALSE(key_layout::parse_output_seq(prefix + "1234567", prefix, seq));
  EXPECT_FALSE(key_layout::parse_output_seq("x" + prefix.substr(1) + "12345678", prefix, seq));
}

// ---------------------------------------------------------------------------------------------
// The store

class store_test : public ::testing::Test {
 protected:
  std::unique_ptr<store> open_store(const store_options& options = {}) {
    auto opened = store::open(dir_.path(), options);
    EXPECT_TRUE(is_ok(opened));
    return opened ? std::move(*opened) : nullptr;
  }

  temp_dir dir_;
};

TEST_F(store_test, open_creates_missing_directories) {
  const std::string nested = dir_.path() + "/a/b/c";
  auto opened = store::open(nested, store_options{});
  ASSERT_TRUE(is_ok(opened));
  EXPECT_TRUE(std::filesystem::exists(nested + "/CURRENT"));
  EXPECT_TRUE(is_ok((*opened)->close()));
}

// Every tenant's argv, env and output lives here: readable by the executor's user only.
TEST_F(store_test, every_file_is_private) {
  {
    auto s = open_store();
    ASSERT_NE(s, nullptr);
    sandbox_record r;
    r.id = "sb-private";
    r.tenant = "t";
    EXPECT_TRUE(is_ok(s->put_sandbox(r)));
    EXPECT_TRUE(is_ok(s->close()));
  }
  auto reopened = open_store();  // a second open writes a new log, manifest and options file
  ASSERT_NE(reopened, nullptr);
  EXPECT_TRUE(is_ok(reopened->close()));
  struct stat st {};
  ASSERT_EQ(::stat(dir_.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u) << "the store directory";
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
    ++files;
    EXPECT_EQ(st.st_mode & 077, 0u) << e.path() << " may be read by others";
  }
  EXPECT_GE(files, 5);
}

TEST_F(store_test, open_rejects_invalid_options) {
  store_options o;
  o.max_id_bytes = 0;
  EXPECT_EQ(store::open(dir_.path(), o).code(), ErrorCode::invalid_argument);
  o = {};
  o.max_record_bytes = max_record_bytes_limit + 1;
  EXPECT_EQ(store::open(dir_.path(), o).code(), ErrorCode::invalid_argument);
  o = {};
  o.output_write_buffer_bytes = 1;
  EXPECT_EQ(store::open(dir_.path(), o).code(), ErrorCode::invalid_argument);
  o = {};
  o.max_background_jobs = 0;
  EXPECT_EQ(store::open(dir_.path(), o).code(), ErrorCode::invalid_argument);
  EXPECT_TRUE(is_ok(validate(store_options{})));
}

TEST_F(store_test, second_open_of_an_open_database_fails_cleanly) {
  auto db = open_store();
  ASSERT_TRUE(db);
  auto second = store::open(dir_.path(), store_options{});
  EXPECT_FALSE(second.ok());
  EXPECT_FALSE(second.error().message.empty());
}

TEST_F(store_test, sandbox_round_trip_and_replace) {
  auto db = open_store();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->get_sandbox("sb-full").code(), ErrorCode::not_found);
  sandbox_record r = full_sandbox();
  ASSERT_TRUE(is_ok(db->put_sandbox(r)));
  auto back = db->get_sandbox("sb-full");
  ASSERT_TRUE(is_ok(back));
  EXPECT_EQ(*back, r);

  r.state = wire::SandboxState::exited;
  r.message = "done";
  ASSERT_TRUE(is_ok(db->put_sandbox(r)));
  back = db->get_sandbox("sb-full");
  ASSERT_TRUE(is_ok(back));
  EXPECT_EQ(*back, r);
}

TEST_F(store_test, list_sandboxes_returns_all_in_id_order) {
  auto db = open_store();
  ASSERT_TRUE(db);
  auto empty = db->list_sandboxes();
  ASSERT_TRUE(is_ok(empty));
  EXPECT_TRUE(empty->records.empty());
  for (const char* id : {"sb-c", "sb-a", "sb-b", "sb-ab"}) {
    ASSERT_TRUE(is_ok(db->put_sandbox(full_sandbox(id))));
  }
  auto all = db->list_sandboxes();
  ASSERT_TRUE(is_ok(all));
  EXPECT_TRUE(all->undecodable.empty());
  ASSERT_EQ(all->records.size(), 4u);
  std::vector<std::string> ids;
  for (const auto& r : all->records) {
    ids.push_back(r.id);
    EXPECT_EQ(r, full_sandbox(r.id));
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"sb-a", "sb-ab", "sb-b", "sb-c"}));
}

TEST_F(store_test, sandbox_with_processes_is_one_batch) {
  auto db = open_store();
  ASSERT_TRUE(db);
  const sandbox_record sb = full_sandbox("sb-1");
  const std::vector<process_record> procs = {full_process("sb-1", "ex-b", 2),
                                             full_process("sb-1", "ex-a", 1)};
  ASSERT_TRUE(is_ok(db->put_sandbox_with_processes(sb, procs)));
  auto back = db->get_sandbox("sb-1");
  ASSERT_TRUE(is_ok(back));
  EXPECT_EQ(*back, sb);
  for (const auto& p : procs) {
    auto got = db->get_process("sb-1", p.exec_id);
    ASSERT_TRUE(is_ok(got));
    EXPECT_EQ(*got, p);
  }

  // A process of another sandbox: refused, and nothing of the batch is written.
  const std::vector<process_record> mixed = {full_process("sb-2", "ex-a"),
                                             full_process("sb-other", "ex-b")};
  EXPECT_EQ(db->put_sandbox_with_processes(full_sandbox("sb-2"), mixed).code,
            ErrorCode::invalid_argument);
  EXPECT_EQ(db->get_sandbox("sb-2").code(), ErrorCode::not_found);
  EXPECT_EQ(db->get_process("sb-2", "ex-a").code(), ErrorCode::not_found);

  // An invalid exec id in the batch: the same.
  EXPECT_EQ(db->put_sandbox_with_processes(full_sandbox("sb-3"), {full_process("sb-3", "")}).code,
            ErrorCode::invalid_argument);
  EXPECT_EQ(db->get_sandbox("sb-3").code(), ErrorCode::not_found);
}

TEST_F(store_test, processes_round_trip_and_list_by_handle) {
  auto db = open_store();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->get_process("sb-a", "ex-1").code(), ErrorCode::not_found);
  ASSERT_TRUE(is_ok(db->put_process(full_process("sb-a", "ex-z", 1))));
  ASSERT_TRUE(is_ok(db->put_process(full_process("sb-a", "ex-b", 3))));
  ASSERT_TRUE(is_ok(db->put_process(full_process("sb-a", "ex-a", 2))));
  ASSERT_TRUE(is_ok(db->put_process(full_process("sb-a", "ex-c", 2))));
  // Sandboxes whose ids extend "sb-a": never part of its listing.
  ASSERT_TRUE(is_ok(db->put_process(full_process("sb-ab", "ex-x", 0))));
  ASSERT_TRUE(is_ok(db->put_process(full_process("sb-a-", "ex-y", 0))));

  auto got = db->get_process("sb-a", "ex-b");
  ASSERT_TRUE(is_ok(got));
  EXPECT_EQ(*got, full_process("sb-a", "ex-b", 3));

  auto list = db->list_processes("sb-a");
  ASSERT_TRUE(is_ok(list));
  EXPECT_TRUE(list->undecodable.empty());
  std::vector<std::string> execs;
  for (const auto& p : list->records) execs.push_back(p.exec_id);
  EXPECT_EQ(execs, (std::vector<std::string>{"ex-z", "ex-a", "ex-c", "ex-b"}));
  auto none = db->list_processes("sb-none");
  ASSERT_TRUE(is_ok(none));
  EXPECT_TRUE(none->records.empty());

  process_record updated = full_process("sb-a", "ex-b", 3);
  updated.finished = false;
  updated.next_seq = 1000;
  ASSERT_TRUE(is_ok(db->put_process(updated)));
  got = db->get_process("sb-a", "ex-b");
  ASSERT_TRUE(is_ok(got));
  EXPECT_EQ(*got, updated);
}

TEST_F(store_test, invalid_ids_are_refused) {
  store_options o;
  o.max_id_bytes = 16;
  auto db = open_store(o);
  ASSERT_TRUE(db);
  const std::string with_nul("sb-a\0b", 6);
  for (const std::string& bad : {std::string(), with_nul, std::string(17, 'x')}) {
    EXPECT_EQ(db->put_sandbox(full_sandbox(bad)).code, ErrorCode::invalid_argument);
    EXPECT_EQ(db->get_sandbox(bad).code(), ErrorCode::invalid_argument);
    EXPECT_EQ(db->put_process(full_process(bad, "ex-1")).code, ErrorCode::invalid_argument);
    EXPECT_EQ(db->put_process(full_process("sb-1", bad)).code, ErrorCode::invalid_argument);
    EXPECT_EQ(db->get_process("sb-1", bad).code(), ErrorCode::invalid_argument);
    EXPECT_EQ(db->list_processes(bad).code(), ErrorCode::invalid_argument);
    EXPECT_EQ(db->append_output(bad, "ex-1", {chunk(0, "x")}).code, ErrorCode::invalid_argument);
    EXPECT_EQ(db->read_output("sb-1", bad, 0, 100).code(), ErrorCode::invalid_argument);
    EXPECT_EQ(db->delete_sandbox(bad).code, ErrorCode::invalid_argument);
    EXPECT_EQ(db->put_meta(bad, "v").code, ErrorCode::invalid_argument);
  }
  EXPECT_TRUE(is_ok(db->put_sandbox(full_sandbox(std::string(16, 'x')))));
}

TEST_F(store_test, output_append_and_read_ranges) {
  auto db = open_store();
  ASSERT_TRUE(db);
  auto empty = db->read_output("sb-a", "ex-1", 0, 1 << 20);
  ASSERT_TRUE(is_ok(empty));
  EXPECT_TRUE(empty->empty());

  ASSERT_TRUE(is_ok(db->append_output("sb-a", "ex-1", {chunk(0, "aaaa"), chunk(1, "bbbb")})));
  ASSERT_TRUE(is_ok(db->append_output(
      "sb-a", "ex-1",
      {chunk(2, "cccc", wire::Stream::stderr, 0), chunk(3, "dddd", wire::Stream::stdout, 8)})));
  ASSERT_TRUE(is_ok(db->append_output("sb-a", "ex-1", {chunk(4, "eeee")})));
  ASSERT_TRUE(is_ok(db->append_output("sb-a", "ex-1", {})));
  // Neighbours: another exec whose id extends "ex-1", and another sandbox.
  ASSERT_TRUE(is_ok(db->append_output("sb-a", "ex-10", {chunk(0, "other")})));
  ASSERT_TRUE(is_ok(db->append_output("sb-ab", "ex-1", {chunk(0, "other")})));

  auto all = db->read_output("sb-a", "ex-1", 0, 1 << 20);
  ASSERT_TRUE(is_ok(all));
  EXPECT_EQ(seqs(*all), (std::vector<uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ((*all)[2], chunk(2, "cccc", wire::Stream::stderr, 0));
  EXPECT_EQ((*all)[3], chunk(3, "dddd", wire::Stream::stdout, 8));

  auto from = db->read_output("sb-a", "ex-1", 3, 1 << 20);
  ASSERT_TRUE(is_ok(from));
  EXPECT_EQ(seqs(*from), (std::vector<uint64_t>{3, 4}));

  auto capped = db->read_output("sb-a", "ex-1", 1, 8);
  ASSERT_TRUE(is_ok(capped));
  EXPECT_EQ(seqs(*capped), (std::vector<uint64_t>{1, 2}));
  capped = db->read_output("sb-a", "ex-1", 1, 11);
  ASSERT_TRUE(is_ok(capped));
  EXPECT_EQ(seqs(*capped), (std::vector<uint64_t>{1, 2}));

  // The first chunk comes back even when it alone is over max_bytes.
  auto first = db->read_output("sb-a", "ex-1", 2, 0);
  ASSERT_TRUE(is_ok(first));
  EXPECT_EQ(seqs(*first), (std::vector<uint64_t>{2}));

  auto past = db->read_output("sb-a", "ex-1", 5, 1 << 20);
  ASSERT_TRUE(is_ok(past));
  EXPECT_TRUE(past->empty());

  // Replacing a seq.
  ASSERT_TRUE(is_ok(db->append_output("sb-a", "ex-1", {chunk(4, "EEEE")})));
  auto last = db->read_output("sb-a", "ex-1", 4, 1 << 20);
  ASSERT_TRUE(is_ok(last));
  ASSERT_EQ(last->size(), 1u);
  EXPECT_EQ(last->front(), chunk(4, "EEEE"));
}

TEST_F(store_test, output_is_read_in_seq_order_across_byte_boundaries) {
  auto db = open_store();
  ASSERT_TRUE(db);
  const std::vector<uint64_t> ordered = {1, 255, 256, 65536, 1ull << 40};
  ASSERT_TRUE(is_ok(db->append_output("sb-a", "ex-1",
                                      {chunk(1ull << 40, "e"), chunk(256, "c"), chunk(1, "a"),
                                       chunk(65536, "d"), chunk(255, "b")})));
  auto all = db->read_output("sb-a", "ex-1", 0, 1 << 20);
  ASSERT_TRUE(is_ok(all));
  EXPECT_EQ(seqs(*all), ordered);
  auto tail = db->read_output("sb-a", "ex-1", 257, 1 << 20);
  ASSERT_TRUE(is_ok(tail));
  EXPECT_EQ(seqs(*tail), (std::vector<uint64_t>{65536, 1ull << 40}));
}

TEST_F(store_test, oversized_writes_are_refused_whole) {
  store_options o;
  o.max_record_bytes = 4096;
  auto db = open_store(o);
  ASSERT_TRUE(db);
  EXPECT_EQ(
      db->append_output("sb-a", "ex-1", {chunk(0, "ok"), chunk(1, std::string(5000, 'x'))}).code,
      ErrorCode::too_large);
  auto none = db->read_output("sb-a", "ex-1", 0, 1 << 20);
  ASSERT_TRUE(is_ok(none));
  EXPECT_TRUE(none->empty());

  sandbox_record big = full_sandbox("sb-big");
  big.message = std::string(5000, 'm');
  EXPECT_EQ(db->put_sandbox(big).code, ErrorCode::too_large);
  EXPECT_EQ(db->get_sandbox("sb-big").code(), ErrorCode::not_found);
  EXPECT_EQ(db->put_meta("k", std::string(5000, 'v')).code, ErrorCode::too_large);
}

TEST_F(store_test, delete_output_keeps_the_records_and_touches_no_other_sandbox) {
  auto db = open_store();
  ASSERT_TRUE(db);
  for (const char* sb : {"sb-a", "sb-ab"}) {
    ASSERT_TRUE(is_ok(db->put_sandbox_with_processes(full_sandbox(sb), {full_process(sb, "ex-1", 1)})));
    ASSERT_TRUE(is_ok(db->append_output(sb, "ex-1", {chunk(0, "x"), chunk(1, "y")})));
  }
  ASSERT_TRUE(is_ok(db->delete_output("sb-a")));
  EXPECT_TRUE(is_ok(db->get_sandbox("sb-a")));
  EXPECT_TRUE(is_ok(db->get_process("sb-a", "ex-1")));
  auto gone = db->read_output("sb-a", "ex-1", 0, 1 << 20);
  ASSERT_TRUE(is_ok(gone));
  EXPECT_TRUE(gone->empty());
  auto kept = db->read_output("sb-ab", "ex-1", 0, 1 << 20);
  ASSERT_TRUE(is_ok(kept));
  EXPECT_EQ(kept->size(), 2u);
  EXPECT_TRUE(is_ok(db->delete_output("sb-a")));  // idempotent
}

TEST_F(store_test, delete_sandbox_removes_everything_of_that_sandbox_only) {
  auto db = open_store();
  ASSERT_TRUE(db);
  for (const char* sb : {"sb-a", "sb-ab", "sb-0"}) {
    ASSERT_TRUE(is_ok(db->put_sandbox_with_processes(
        full_sandbox(sb), {full_process(sb, "ex-1", 1), full_process(sb, "ex-2", 2)})));
    for (const char* ex : {"ex-1", "ex-2"}) {
      ASSERT_TRUE(is_ok(db->append_output(sb, ex, {chunk(0, "x"), chunk(1, "y")})));
    }
  }
  ASSERT_TRUE(is_ok(db->put_meta("session", "3")));

  ASSERT_TRUE(is_ok(db->delete_sandbox("sb-a")));
  EXPECT_EQ(db->get_sandbox("sb-a").code(), ErrorCode::not_found);
  EXPECT_EQ(db->get_process("sb-a", "ex-1").code(), ErrorCode::not_found);
  auto procs = db->list_processes("sb-a");
  ASSERT_TRUE(is_ok(procs));
  EXPECT_TRUE(procs->records.empty());
  for (const char* ex : {"ex-1", "ex-2"}) {
    auto out = db->read_output("sb-a", ex, 0, 1 << 20);
    ASSERT_TRUE(is_ok(out));
    EXPECT_TRUE(out->empty());
  }

  for (const char* sb : {"sb-ab", "sb-0"}) {
    auto rec = db->get_sandbox(sb);
    ASSERT_TRUE(is_ok(rec));
    EXPECT_EQ(*rec, full_sandbox(sb));
    auto others = db->list_processes(sb);
    ASSERT_TRUE(is_ok(others));
    EXPECT_EQ(others->records.size(), 2u);
    auto out = db->read_output(sb, "ex-2", 0, 1 << 20);
    ASSERT_TRUE(is_ok(out));
    EXPECT_EQ(seqs(*out), (std::vector<uint64_t>{0, 1}));
  }
  auto all = db->list_sandboxes();
  ASSERT_TRUE(is_ok(all));
  EXPECT_EQ(all->records.size(), 2u);
  auto session = db->get_meta("session");
  ASSERT_TRUE(is_ok(session));
  EXPECT_EQ(*session, "3");

  EXPECT_TRUE(is_ok(db->delete_sandbox("sb-a")));      // idempotent
  EXPECT_TRUE(is_ok(db->delete_sandbox("sb-never")));  // nothing stored
  // A sandbox id may be used again after its deletion.
  ASSERT_TRUE(is_ok(db->put_process(full_process("sb-a", "ex-9", 9))));
  procs = db->list_processes("sb-a");
  ASSERT_TRUE(is_ok(procs));
  EXPECT_EQ(procs->records.size(), 1u);
}

TEST_F(store_test, meta_get_and_put) {
  auto db = open_store();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->get_meta("session").code(), ErrorCode::not_found);
  ASSERT_TRUE(is_ok(db->put_meta("session", "1")));
  ASSERT_TRUE(is_ok(db->put_meta("binary", std::string("\0\xff", 2))));
  ASSERT_TRUE(is_ok(db->put_meta("session", "2")));
  auto v = db->get_meta("session");
  ASSERT_TRUE(is_ok(v));
  EXPECT_EQ(*v, "2");
  v = db->get_meta("binary");
  ASSERT_TRUE(is_ok(v));
  EXPECT_EQ(*v, std::string("\0\xff", 2));
}

TEST_F(store_test, reopen_preserves_everything) {
  {
    auto db = open_store();
    ASSERT_TRUE(db);
    ASSERT_TRUE(is_ok(
        db->put_sandbox_with_processes(full_sandbox("sb-1"), {full_process("sb-1", "ex-1", 1)})));
    ASSERT_TRUE(is_ok(db->put_process(full_process("sb-1", "ex-2", 2))));
    ASSERT_TRUE(is_ok(db->put_sandbox(full_sandbox("sb-2"))));
    ASSERT_TRUE(is_ok(db->append_output("sb-1", "ex-1", {chunk(0, "unsynced"), chunk(1, "too")})));
    ASSERT_TRUE(is_ok(db->put_meta("session", "7")));
    ASSERT_TRUE(is_ok(db->close()));
    EXPECT_TRUE(is_ok(db->close()));  // idempotent
  }
  {
    // Closed by the destructor only this time.
    auto db = open_store();
    ASSERT_TRUE(db);
    auto sb1 = db->get_sandbox("sb-1");
    ASSERT_TRUE(is_ok(sb1));
    EXPECT_EQ(*sb1, full_sandbox("sb-1"));
    auto procs = db->list_processes("sb-1");
    ASSERT_TRUE(is_ok(procs));
    ASSERT_EQ(procs->records.size(), 2u);
    EXPECT_EQ(procs->records[0], full_process("sb-1", "ex-1", 1));
    EXPECT_EQ(procs->records[1], full_process("sb-1", "ex-2", 2));
    auto out = db->read_output("sb-1", "ex-1", 0, 1 << 20);
    ASSERT_TRUE(is_ok(out));
    EXPECT_EQ(*out, (std::vector<output_chunk>{chunk(0, "unsynced"), chunk(1, "too")}));
    ASSERT_TRUE(is_ok(db->put_sandbox(full_sandbox("sb-3"))));
  }
  auto db = open_store();
  ASSERT_TRUE(db);
  auto all = db->list_sandboxes();
  ASSERT_TRUE(is_ok(all));
  EXPECT_EQ(all->records.size(), 3u);
  auto session = db->get_meta("session");
  ASSERT_TRUE(is_ok(session));
  EXPECT_EQ(*session, "7");
}

TEST_F(store_test, calls_after_close_are_unavailable) {
  auto db = open_store();
  ASSERT_TRUE(db);
  ASSERT_TRUE(is_ok(db->close()));
  EXPECT_EQ(db->put_sandbox(full_sandbox()).code, ErrorCode::unavailable);
  EXPECT_EQ(db->get_sandbox("sb-full").code(), ErrorCode::unavailable);
  EXPECT_EQ(db->list_sandboxes().code(), ErrorCode::unavailable);
  EXPECT_EQ(db->put_process(full_process()).code, ErrorCode::unavailable);
  EXPECT_EQ(db->list_processes("sb-full").code(), ErrorCode::unavailable);
  EXPECT_EQ(db->append_output("sb-a", "ex-1", {chunk(0, "x")}).code, ErrorCode::unavailable);
  EXPECT_EQ(db->read_output("sb-a", "ex-1", 0, 10).code(), ErrorCode::unavailable);
  EXPECT_EQ(db->delete_sandbox("sb-a").code, ErrorCode::unavailable);
  EXPECT_EQ(db->get_meta("k").code(), ErrorCode::unavailable);
  EXPECT_EQ(db->put_meta("k", "v").code, ErrorCode::unavailable);
}

// Writes raw values with RocksDB itself, as a damaged disk or a buggy older build could leave.
void write_raw(const std::string& dir,
               const std::vector<std::tuple<const char*, std::string, std::string>>& puts,
               const char* extra_family = nullptr) {
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {{rocksdb::kDefaultColumnFamilyName, {}},
                                                           {key_layout::sandboxes_cf, {}},
                                                           {key_layout::processes_cf, {}},
                                                           {key_layout::output_cf, {}},
                                                           {key_layout::usage_cf, {}},
                                                           {key_layout::meta_cf, {}}};
  rocksdb::DBOptions options;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir, families, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  for (const auto& [family, key, value] : puts) {
    for (std::size_t i = 0; i < families.size(); ++i) {
      if (families[i].name == family) {
        ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[i], key, value).ok());
      }
    }
  }
  if (extra_family != nullptr) {
    rocksdb::ColumnFamilyHandle* extra = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily({}, extra_family, &extra).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), extra, "k", "v").ok());
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(extra).ok());
  }
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
}

TEST_F(store_test, corrupt_values_fail_to_decode_without_crashing) {
  {
    auto db = open_store();
    ASSERT_TRUE(db);
    ASSERT_TRUE(is_ok(db->put_sandbox_with_processes(full_sandbox("sb-good"),
                                                     {full_process("sb-good", "ex-good", 1)})));
    ASSERT_TRUE(
        is_ok(db->append_output("sb-good", "ex-good", {chunk(4, "four"), chunk(6, "six")})));
    ASSERT_TRUE(is_ok(db->close()));
  }
  std::string truncated = encode(full_sandbox("sb-cut"));
  truncated.resize(truncated.size() / 2);
  write_raw(dir_.path(),
            {{key_layout::sandboxes_cf, "sb-bad", "garbage \x01\x02\x03 bytes"},
             {key_layout::sandboxes_cf, "sb-cut", truncated},
             // A valid record under another sandbox's key.
             {key_layout::sandboxes_cf, "sb-swapped", encode(full_sandbox("sb-good"))},
             {key_layout::processes_cf, key_layout::process_key("sb-good", "ex-bad"),
              std::string(40, '\xff')},
             {key_layout::output_cf, key_layout::output_key("sb-good", "ex-good", 5),
              encode(full_process())},
             {key_layout::output_cf, key_layout::output_key("sb-good", "ex-seq", 1),
              encode(chunk(2, "says seq 2"))},
             {key_layout::output_cf, key_layout::output_prefix("sb-good", "ex-short") + "123",
              encode(chunk(0, "short key"))}},
            "volumes");  // a column family from a newer build: opened and left alone

  auto db = open_store();
  ASSERT_TRUE(db);
  EXPECT_EQ(db->get_sandbox("sb-bad").code(), ErrorCode::malformed);
  EXPECT_EQ(db->get_sandbox("sb-cut").code(), ErrorCode::malformed);
  EXPECT_EQ(db->get_sandbox("sb-swapped").code(), ErrorCode::malformed);
  auto good = db->get_sandbox("sb-good");
  ASSERT_TRUE(is_ok(good));
  EXPECT_EQ(*good, full_sandbox("sb-good"));

  auto all = db->list_sandboxes();
  ASSERT_TRUE(is_ok(all));
  ASSERT_EQ(all->records.size(), 1u);
  EXPECT_EQ(all->records[0].id, "sb-good");
  EXPECT_EQ(all->undecodable, (std::vector<std::string>{"sb-bad", "sb-cut", "sb-swapped"}));

  EXPECT_EQ(db->get_process("sb-good", "ex-bad").code(), ErrorCode::malformed);
  auto procs = db->list_processes("sb-good");
  ASSERT_TRUE(is_ok(procs));
  ASSERT_EQ(procs->records.size(), 1u);
  EXPECT_EQ(procs->undecodable, (std::vector<std::string>{"ex-bad"}));

  // A bad chunk stops a read that reaches it; reads before or after it still work.
  EXPECT_EQ(db->read_output("sb-good", "ex-good", 0, 1 << 20).code(), ErrorCode::malformed);
  auto before = db->read_output("sb-good", "ex-good", 0, 1);
  ASSERT_TRUE(is_ok(before));
  EXPECT_EQ(seqs(*before), (std::vector<uint64_t>{4}));
  auto after = db->read_output("sb-good", "ex-good", 6, 1 << 20);
  ASSERT_TRUE(is_ok(after));
  EXPECT_EQ(seqs(*after), (std::vector<uint64_t>{6}));
  EXPECT_EQ(db->read_output("sb-good", "ex-seq", 0, 1 << 20).code(), ErrorCode::malformed);
  EXPECT_EQ(db->read_output("sb-good", "ex-short", 0, 1 << 20).code(), ErrorCode::malformed);

  // Bad records can be removed like any others.
  ASSERT_TRUE(is_ok(db->delete_sandbox("sb-bad")));
  ASSERT_TRUE(is_ok(db->delete_sandbox("sb-good")));
  all = db->list_sandboxes();
  ASSERT_TRUE(is_ok(all));
  EXPECT_EQ(all->undecodable, (std::vector<std::string>{"sb-cut", "sb-swapped"}));
}

TEST_F(store_test, concurrent_writers_and_close) {
  store_options o;
  o.sync_state_writes = false;  // the threads, not the disk, are under test here
  auto db = open_store(o);
  ASSERT_TRUE(db);
  constexpr int threads = 4;
  constexpr int writes = 50;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&db, t] {
      for (int i = 0; i < writes; ++i) {
        const std::string id = "sb-" + std::to_string(t) + "-" + std::to_string(i);
        EXPECT_TRUE(is_ok(db->put_sandbox(full_sandbox(id))));
        EXPECT_TRUE(is_ok(db->append_output(id, "ex-1", {chunk(0, id)})));
        EXPECT_TRUE(is_ok(db->list_processes(id)));
      }
    });
  }
  for (auto& w : workers) w.join();
  auto all = db->list_sandboxes();
  ASSERT_TRUE(is_ok(all));
  EXPECT_EQ(all->records.size(), static_cast<std::size_t>(threads * writes));

  // close() while writers run: each call either completes or reports unavailable.
  std::mutex mutex;
  std::condition_variable cv;
  int started = 0;
  workers.clear();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const auto deadline = steady::now() + 10s;
      for (int i = 0; steady::now() < deadline; ++i) {
        const auto st = db->put_sandbox(full_sandbox("sb-late-" + std::to_string(t)));
        if (i == 0) {
          std::lock_guard lock(mutex);
          ++started;
          cv.notify_all();
        }
        if (st.code == ErrorCode::unavailable) return;
        EXPECT_TRUE(is_ok(st));
      }
      ADD_FAILURE() << "writer " << t << " never saw the store closed";
    });
  }
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return started == threads; }));
  }
  EXPECT_TRUE(is_ok(db->close()));
  for (auto& w : workers) w.join();
}

// ---------------------------------------------------------------------------------------------
// Crash test (docs/promises.md P10): a child writes synced transitions and reports each
// acknowledged one through a pipe (tests/store_crash_writer.cpp); it is killed with SIGKILL at a
// random point; on reopen every acknowledged transition must be there, and nothing but the one
// transition in flight at the kill may be there beyond it.

struct crash_child {
  pid_t pid = -1;
  int ack_fd = -1;
};

crash_child spawn_writer(const std::string& dir, int round, uint64_t seed) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  // Everything the child needs is built before fork: between fork and exec it only calls
  // async-signal-safe functions (this process has threads).
  const std::string ack_fd_arg = "3";
  const std::string round_arg = std::to_string(round);
  const std::string transitions_arg = "1000000";
  const std::string seed_arg = std::to_string(seed);
  std::vector<char*> argv = {const_cast<char*>(CORRAL_STORE_CRASH_WRITER),
                             const_cast<char*>(dir.c_str()),
                             const_cast<char*>(ack_fd_arg.c_str()),
                             const_cast<char*>(round_arg.c_str()),
                             const_cast<char*>(transitions_arg.c_str()),
                             const_cast<char*>(seed_arg.c_str()),
                             nullptr};
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::dup2(fds[1], 3) < 0 || ::fcntl(3, F_SETFD, 0) < 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return {};
  }
  return {pid, fds[0]};
}

// Reads from fd into buffer until it holds `frames` complete ack frames, EOF, or the deadline.
// Returns false on EOF or deadline.
bool read_frames(int fd, std::string& buffer, std::size_t frames, steady::time_point deadline) {
  const auto complete = [&buffer] {
    std::size_t count = 0;
    std::size_t at = 0;
    while (buffer.size() - at >= sizeof(uint32_t)) {
      uint32_t size = 0;
      std::memcpy(&size, buffer.data() + at, sizeof(size));
      if (buffer.size() - at - sizeof(size) < size) break;
      at += sizeof(size) + size;
      ++count;
    }
    return count;
  };
  char chunk_buffer[4096];
  while (complete() < frames) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const ssize_t n = ::read(fd, chunk_buffer, sizeof(chunk_buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer.append(chunk_buffer, static_cast<std::size_t>(n));
  }
  return true;
}

// Reads fd to EOF into buffer. false when the deadline passes first.
bool drain(int fd, std::string& buffer, steady::time_point deadline) {
  char chunk_buffer[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const ssize_t n = ::read(fd, chunk_buffer, sizeof(chunk_buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    buffer.append(chunk_buffer, static_cast<std::size_t>(n));
  }
}

// The acknowledged records in a buffer of ack frames, in order. A torn trailing frame (there
// should be none: frames are written whole) is not acknowledged.
std::vector<sandbox_record> parse_acks(const std::string& buffer) {
  std::vector<sandbox_record> acks;
  std::size_t at = 0;
  while (buffer.size() - at >= sizeof(uint32_t)) {
    uint32_t size = 0;
    std::memcpy(&size, buffer.data() + at, sizeof(size));
    if (buffer.size() - at - sizeof(size) < size) break;
    auto rec = decode_sandbox(std::string_view(buffer).substr(at + sizeof(size), size));
    EXPECT_TRUE(is_ok(rec));
    if (rec) acks.push_back(std::move(*rec));
    at += sizeof(size) + size;
  }
  return acks;
}

TEST(store_crash_test, acknowledged_transitions_survive_kill_9) {
  uint64_t seed = std::random_device{}();
  if (const char* env = std::getenv("CORRAL_TEST_SEED")) seed = std::strtoull(env, nullptr, 10);
  std::mt19937_64 rng(seed);
  SCOPED_TRACE("CORRAL_TEST_SEED=" + std::to_string(seed));

  temp_dir dir;
  constexpr int max_rounds = 10;
  constexpr int min_rounds = 3;
  const auto budget_end = steady::now() + 2500ms;  // the whole test stays well under 5 s
  // What each sandbox of earlier rounds was recovered as: must stay exactly that.
  std::map<std::string, sandbox_record> recovered;

  int round = 0;
  for (; round < max_rounds && (round < min_rounds || steady::now() < budget_end); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::size_t kill_after = rng() % 25;  // 0: killed while opening or recovering
    crash_child child = spawn_writer(dir.path(), round, rng());
    ASSERT_GT(child.pid, 0) << "spawn failed: " << std::strerror(errno);

    std::string buffer;
    const bool reached = read_frames(child.ack_fd, buffer, kill_after, steady::now() + 3s);
    ::kill(child.pid, SIGKILL);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child.pid, &wstatus, 0), child.pid);
    // Acks written before the kill are still in the pipe: drain it to EOF.
    const bool drained = drain(child.ack_fd, buffer, steady::now() + 3s);
    ::close(child.ack_fd);
    ASSERT_TRUE(reached) << "writer gave fewer than " << kill_after
                         << " acks before it ended or the deadline; wait status " << wstatus;
    ASSERT_TRUE(drained) << "ack pipe still open after the writer died";

    const std::vector<sandbox_record> acks = parse_acks(buffer);
    ASSERT_GE(acks.size(), kill_after);
    std::map<std::string, sandbox_record> acked;  // the last acknowledged version of each
    for (const auto& a : acks) acked[a.id] = a;

    auto opened = store::open(dir.path(), store_options{});
    ASSERT_TRUE(is_ok(opened));
    store& db = **opened;
    auto all = db.list_sandboxes();
    ASSERT_TRUE(is_ok(all));
    EXPECT_TRUE(all->undecodable.empty());

    const std::string round_prefix = "sb-r" + std::to_string(round) + "-";
    int in_flight = 0;  // transitions durable but not acknowledged: at most the one at the kill
    std::map<std::string, sandbox_record> stored;
    for (const auto& rec : all->records) stored[rec.id] = rec;
    for (const auto& [id, ack] : acked) {
      ASSERT_EQ(stored.count(id), 1u) << "acknowledged sandbox lost: " << id;
    }
    for (const auto& [id, rec] : stored) {
      if (id.rfind(round_prefix, 0) != 0) {
        ASSERT_EQ(recovered.count(id), 1u) << id;
        EXPECT_EQ(rec, recovered[id]) << "an earlier round's record changed";
        continue;
      }
      const auto ack = acked.find(id);
      if (ack != acked.end() && rec == ack->second) {
        // exactly the acknowledged version
      } else {
        ++in_flight;
        const uint64_t acked_version = ack == acked.end() ? 0 : ack->second.next_exec_handle;
        ASSERT_GE(rec.next_exec_handle, acked_version)
            << id << ": acknowledged version " << acked_version << " lost";
        EXPECT_EQ(rec.next_exec_handle, acked_version + 1)
            << id << ": stored record differs from the acknowledged one";
      }
      // The process record went in the same batch as every odd version.
      const uint64_t v = rec.next_exec_handle;
      auto proc = db.get_process(id, "ex-crash");
      ASSERT_TRUE(is_ok(proc)) << id;
      EXPECT_EQ(proc->next_seq, v % 2 == 1 ? v : v - 1) << id << " batch was torn";
      // Output appended (unsynced) before a synced write is durable with it.
      auto out = db.read_output(id, "ex-crash", 0, std::numeric_limits<std::size_t>::max());
      ASSERT_TRUE(is_ok(out)) << id;
      ASSERT_GE(out->size(), v) << id;
      for (std::size_t i = 0; i < out->size(); ++i) EXPECT_EQ((*out)[i].seq, i) << id;
      EXPECT_EQ((*out)[v - 1].data, to_bytes(rec.message)) << id;
      recovered[id] = rec;
    }
    EXPECT_LE(in_flight, 1);
    ASSERT_TRUE(is_ok(db.close()));
  }
  EXPECT_GE(round, min_rounds);
}

}  // namespace
}  // namespace corral::storage
