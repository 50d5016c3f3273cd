// corral-init's file operations (FsCall -> FsResult), black box: the real static binary as a
// child of the test. On the host init acts on host paths, so every test works in a fresh temp
// dir (and the one path outside it, /sys, is only ever refused).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "schemas/codec.hpp"
#include "schemas/frame.hpp"
#include "tests/fuzz/init_commands.hpp"
#include "tests/init_harness.hpp"

namespace corral::init_test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

test_clock::time_point deadline() { return test_clock::now() + 30s; }

// The FsCall command encoder the fuzz targets use (tests/fuzz/init_commands.hpp).
using fuzz::fs_call_args;

struct entry {
  std::string name;
  wire::FsFileType type = wire::FsFileType::unknown;
  uint64_t size = 0;
  uint32_t mode = 0;
  int64_t mtime_ms = 0;
};

struct result {
  wire::ErrorCode error = wire::ErrorCode::internal;
  int error_number = 0;
  std::string message;
  std::string data;
  std::vector<entry> entries;
  std::optional<entry> stat;
  bool eof = false;
  uint64_t next_offset = 0;
  uint64_t count = 0;
};

entry entry_of(const wire::FsEntry& e) {
  return entry{std::string(wire::str(e.name())), e.type(), e.size(), e.mode(), e.mtime_ms()};
}

// Speaks to one corral-init: FsCalls out, FsResults in (by call id).
class fs_client {
 public:
  explicit fs_client(const std::vector<std::string>& args = {}) : init_(args) {}
  ~fs_client() {
    EXPECT_EQ(reader_.skipped_bytes(), 0u);
    EXPECT_EQ(init_.log().find("runtime error"), std::string::npos);
    if (::testing::Test::HasFailure()) std::fprintf(stderr, "--- init's log:\n%s", init_.log().c_str());
  }

  void send_raw(const bytes& raw) { ASSERT_TRUE(init_.write(raw, deadline())); }
  void send_payload(const bytes& payload) {
    ASSERT_TRUE(init_.write(wire::make_frame(payload), deadline()));
  }

  bytes encode(uint64_t id, fs_call_args a) {
    a.call_id = id;
    return fuzz::command_fs_call(a);
  }

  // Sends one call and waits for its FsResult.
  result call(const fs_call_args& a) {
    const uint64_t id = next_id_++;
    send_payload(encode(id, a));
    EXPECT_TRUE(wait_for(id)) << "no FsResult for call " << id;
    result r = results_[id];
    results_.erase(id);
    return r;
  }

  bool wait_for(uint64_t id) {
    const auto until = deadline();
    while (results_.count(id) == 0) {
      const bytes got = init_.read_stdout(1 << 20, until);
      if (got.empty()) return false;
      reader_.feed(got.data(), got.size());
      while (auto payload = reader_.next()) apply(*payload);
    }
    return true;
  }

  std::size_t results_for(uint64_t id) const { return results_.count(id); }
  uint64_t next_id() const { return next_id_; }
  void skip_ids(uint64_t n) { next_id_ += n; }
  std::map<uint64_t, int>& seen() { return seen_; }

 private:
  void apply(const bytes& payload) {
    const auto* ev =
        wire::verify<wire::InitEvent>(payload.data(), payload.size(), wire::max_message_bytes);
    ASSERT_NE(ev, nullptr) << "an event that does not verify within 1 MiB";
    const auto* r = ev->event_as_FsResult();
    if (r == nullptr) return;
    ++seen_[r->call_id()];
    result out;
    out.error = r->error();
    out.error_number = r->error_number();
    out.message = std::string(wire::str(r->message()));
    if (r->data() != nullptr) out.data.assign(r->data()->begin(), r->data()->end());
    if (r->entries() != nullptr)
      for (const auto* e : *r->entries()) out.entries.push_back(entry_of(*e));
    if (r->stat() != nullptr) out.stat = entry_of(*r->stat());
    out.eof = r->eof();
    out.next_offset = r->next_offset();
    out.count = r->count();
    results_[r->call_id()] = std::move(out);
  }

  init_process init_;
  wire::frame_reader reader_;
  std::map<uint64_t, result> results_;
  std::map<uint64_t, int> seen_;
  uint64_t next_id_ = 1;
};

fs_call_args op(wire::FsOp o, const std::string& path) {
  fs_call_args a;
  a.op = o;
  a.path = path;
  return a;
}

fs_call_args write_op(const std::string& path, const std::string& data, uint64_t offset = 0) {
  fs_call_args a = op(wire::FsOp::write, path);
  a.data = data;
  a.offset = offset;
  return a;
}

std::string file_text(const std::string& path) {
  const bytes b = read_file(path);
  return std::string(b.begin(), b.end());
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  return s;
}

class FilesInit : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& rel) const { return dir_ + "/" + rel; }
  std::string dir_;
};

// -- tests --------------------------------------------------------------------------------------

TEST_F(FilesInit, WriteThenReadBackInBoundedChunks) {
  fs_client c({"--fs-max-read-bytes=65536"});
  const std::string content = pattern(200 * 1024 + 17);
  // Written in three pieces at offsets (the first truncates), read in chunks of the cap.
  auto w1 = write_op(p("f"), content.substr(0, 100000));
  w1.truncate = true;
  auto r1 = c.call(w1);
  ASSERT_EQ(r1.error, wire::ErrorCode::ok) << r1.message;
  EXPECT_EQ(r1.count, 100000u);
  EXPECT_EQ(r1.next_offset, 100000u);
  ASSERT_TRUE(r1.stat.has_value());
  EXPECT_EQ(r1.stat->type, wire::FsFileType::regular);
  EXPECT_EQ(r1.stat->mode, 0644u & ~static_cast<uint32_t>(022));
  auto r2 = c.call(write_op(p("f"), content.substr(100000), 100000));
  ASSERT_EQ(r2.error, wire::ErrorCode::ok) << r2.message;
  EXPECT_EQ(r2.stat->size, content.size());
  EXPECT_EQ(file_text(p("f")), content);

  std::string back;
  uint64_t offset = 0;
  int calls = 0;
  for (;;) {
    auto rd = op(wire::FsOp::read, p("f"));
    rd.offset = offset;
    auto r = c.call(rd);
    ASSERT_EQ(r.error, wire::ErrorCode::ok) << r.message;
    EXPECT_LE(r.data.size(), 65536u);  // clamped to init's cap: length 0 asks for the cap
    back += r.data;
    offset = r.next_offset;
    ++calls;
    if (r.eof) break;
    ASSERT_LT(calls, 100);
  }
  EXPECT_EQ(back, content);
  EXPECT_EQ(calls, 4);  // 3 full chunks and one partial that reaches the end

  // A length smaller than the cap, and a read past the end.
  auto small = op(wire::FsOp::read, p("f"));
  small.offset = 10;
  small.length = 5;
  auto s = c.call(small);
  EXPECT_EQ(s.data, content.substr(10, 5));
  EXPECT_FALSE(s.eof);
  auto past = op(wire::FsOp::read, p("f"));
  past.offset = content.size() + 100;
  auto e = c.call(past);
  EXPECT_EQ(e.error, wire::ErrorCode::ok);
  EXPECT_TRUE(e.data.empty());
  EXPECT_TRUE(e.eof);
}

TEST_F(FilesInit, OverwriteTruncatesAndAppendAppends) {
  fs_client c;
  ASSERT_TRUE(write_file(p("f"), "a long original text", 0600));
  auto w = write_op(p("f"), "new");
  w.truncate = true;
  ASSERT_EQ(c.call(w).error, wire::ErrorCode::ok);
  EXPECT_EQ(file_text(p("f")), "new");
  auto a = write_op(p("f"), "+more", 999);  // offset ignored when appending
  a.append = true;
  auto r = c.call(a);
  ASSERT_EQ(r.error, wire::ErrorCode::ok) << r.message;
  EXPECT_EQ(file_text(p("f")), "new+more");
  EXPECT_EQ(r.next_offset, 8u);
  // Appending creates a missing file; create=false refuses to.
  auto a2 = write_op(p("g"), "x");
  a2.append = true;
  ASSERT_EQ(c.call(a2).error, wire::ErrorCode::ok);
  EXPECT_EQ(file_text(p("g")), "x");
  auto nc = write_op(p("h"), "x");
  nc.create = false;
  auto r2 = c.call(nc);
  EXPECT_EQ(r2.error, wire::ErrorCode::not_found);
  EXPECT_NE(r2.message.find(p("h")), std::string::npos) << r2.message;
  EXPECT_FALSE(fs::exists(p("h")));
  // An empty overwrite makes an empty file; mode is honoured for new files.
  auto empty = write_op(p("e"), "");
  empty.truncate = true;
  empty.mode = 0600;
  auto r3 = c.call(empty);
  ASSERT_EQ(r3.error, wire::ErrorCode::ok);
  EXPECT_EQ(file_size(p("e")), 0);
  EXPECT_EQ(r3.stat->mode, 0600u);
}

TEST_F(FilesInit, ListIsPagedWithAContinuationOffset) {
  fs_client c({"--fs-max-list-entries=7"});
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(write_file(p("f" + std::to_string(i)), "x", 0644));
  ASSERT_EQ(::mkdir(p("sub").c_str(), 0755), 0);
  ASSERT_EQ(::symlink("f0", p("link").c_str()), 0);
  std::map<std::string, entry> seen;
  uint64_t offset = 0;
  int pages = 0;
  for (;;) {
    auto l = op(wire::FsOp::list, dir_);
    l.offset = offset;
    auto r = c.call(l);
    ASSERT_EQ(r.error, wire::ErrorCode::ok) << r.message;
    EXPECT_LE(r.entries.size(), 7u);
    for (auto& e : r.entries) EXPECT_TRUE(seen.emplace(e.name, e).second) << "twice: " << e.name;
    EXPECT_EQ(r.next_offset, offset + r.entries.size());
    offset = r.next_offset;
    ++pages;
    if (r.eof) break;
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(seen.size(), 22u);
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(seen["sub"].type, wire::FsFileType::directory);
  EXPECT_EQ(seen["link"].type, wire::FsFileType::symlink);  // not followed
  EXPECT_EQ(seen["f3"].type, wire::FsFileType::regular);
  EXPECT_EQ(seen["f3"].size, 1u);
  EXPECT_EQ(seen.count("."), 0u);
  // A smaller length than the cap.
  auto l = op(wire::FsOp::list, dir_);
  l.length = 2;
  EXPECT_EQ(c.call(l).entries.size(), 2u);
}

TEST_F(FilesInit, StatReportsTypeSizeModeAndTime) {
  fs_client c;
  ASSERT_TRUE(write_file(p("f"), "12345", 0640));
  ASSERT_EQ(::symlink("/nowhere", p("dangling").c_str()), 0);
  auto r = c.call(op(wire::FsOp::stat, p("f")));
  ASSERT_EQ(r.error, wire::ErrorCode::ok) << r.message;
  ASSERT_TRUE(r.stat);
  EXPECT_EQ(r.stat->name, "f");
  EXPECT_EQ(r.stat->type, wire::FsFileType::regular);
  EXPECT_EQ(r.stat->size, 5u);
  EXPECT_EQ(r.stat->mode, 0640u);
  struct stat st {};
  ASSERT_EQ(::stat(p("f").c_str(), &st), 0);
  EXPECT_EQ(r.stat->mtime_ms / 1000, st.st_mtim.tv_sec);
  auto d = c.call(op(wire::FsOp::stat, dir_ + "/"));
  EXPECT_EQ(d.stat->type, wire::FsFileType::directory);
  auto l = c.call(op(wire::FsOp::stat, p("dangling")));
  ASSERT_EQ(l.error, wire::ErrorCode::ok) << l.message;
  EXPECT_EQ(l.stat->type, wire::FsFileType::symlink);
}

TEST_F(FilesInit, MkdirWithAndWithoutParents) {
  fs_client c;
  auto plain = c.call(op(wire::FsOp::mkdir, p("a/b/c")));
  EXPECT_EQ(plain.error, wire::ErrorCode::not_found) << plain.message;
  auto deep = op(wire::FsOp::mkdir, p("a/b/c/"));
  deep.parents = true;
  ASSERT_EQ(c.call(deep).error, wire::ErrorCode::ok);
  EXPECT_TRUE(fs::is_directory(p("a/b/c")));
  EXPECT_EQ(c.call(deep).error, wire::ErrorCode::ok);  // -p: an existing directory is fine
  auto again = c.call(op(wire::FsOp::mkdir, p("a/b")));
  EXPECT_EQ(again.error, wire::ErrorCode::already_exists) << again.message;
  auto excl = deep;
  excl.exclusive = true;
  EXPECT_EQ(c.call(excl).error, wire::ErrorCode::already_exists);
  auto mode = op(wire::FsOp::mkdir, p("private"));
  mode.mode = 0700;
  ASSERT_EQ(c.call(mode).error, wire::ErrorCode::ok);
  struct stat st {};
  ASSERT_EQ(::stat(p("private").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  // A file in the way.
  ASSERT_TRUE(write_file(p("file"), "x", 0644));
  auto through = op(wire::FsOp::mkdir, p("file/sub/x"));
  through.parents = true;
  auto r = c.call(through);
  EXPECT_EQ(r.error, wire::ErrorCode::not_a_directory) << r.message;
  auto onto = op(wire::FsOp::mkdir, p("file"));
  onto.parents = true;
  EXPECT_EQ(c.call(onto).error, wire::ErrorCode::already_exists);
}

TEST_F(FilesInit, RemoveFilesDirsAndTreesInCappedSteps) {
  fs_client c({"--fs-max-remove-entries=10"});
  ASSERT_TRUE(write_file(p("f"), "x", 0644));
  ASSERT_EQ(c.call(op(wire::FsOp::remove, p("f"))).error, wire::ErrorCode::ok);
  EXPECT_FALSE(fs::exists(p("f")));
  ASSERT_EQ(::mkdir(p("empty").c_str(), 0755), 0);
  ASSERT_EQ(c.call(op(wire::FsOp::remove, p("empty"))).error, wire::ErrorCode::ok);
  EXPECT_FALSE(fs::exists(p("empty")));

  // A tree of 3 levels, 37 entries; a symlink out of it whose target must survive.
  fs::create_directories(p("tree/a/b"));
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(write_file(p("tree/" + std::string(i % 2 ? "a/" : "a/b/") + std::to_string(i)), "x", 0644));
  fs::create_directories(p("keep"));
  ASSERT_TRUE(write_file(p("keep/precious"), "keep", 0644));
  ASSERT_EQ(::symlink(p("keep").c_str(), p("tree/a/out").c_str()), 0);
  auto nonrec = c.call(op(wire::FsOp::remove, p("tree")));
  EXPECT_EQ(nonrec.error, wire::ErrorCode::not_empty) << nonrec.message;
  EXPECT_NE(nonrec.message.find(p("tree")), std::string::npos);
  auto rec = op(wire::FsOp::remove, p("tree"));
  rec.recursive = true;
  uint64_t removed = 0;
  int calls = 0;
  for (;;) {
    auto r = c.call(rec);
    ASSERT_EQ(r.error, wire::ErrorCode::ok) << r.message;
    EXPECT_LE(r.count, 10u);
    removed += r.count;
    ++calls;
    if (r.eof) break;
    ASSERT_LT(calls, 20);
  }
  EXPECT_EQ(removed, 34u);  // 30 files, the link, a, b, tree
  EXPECT_EQ(calls, 4);
  EXPECT_FALSE(fs::exists(p("tree")));
  EXPECT_EQ(file_text(p("keep/precious")), "keep");
  // A symlink to a directory is removed itself, never its target's content.
  ASSERT_EQ(::symlink(p("keep").c_str(), p("dirlink").c_str()), 0);
  auto rl = op(wire::FsOp::remove, p("dirlink"));
  rl.recursive = true;
  ASSERT_EQ(c.call(rl).error, wire::ErrorCode::ok);
  EXPECT_EQ(file_text(p("keep/precious")), "keep");
}

TEST_F(FilesInit, EveryTypedErrorNamesThePath) {
  fs_client c;
  ASSERT_TRUE(write_file(p("file"), "x", 0644));
  ASSERT_EQ(::mkdir(p("dir").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(p("dir/inner"), "x", 0644));
  ASSERT_EQ(::mkfifo(p("fifo").c_str(), 0644), 0);
  struct expectation {
    fs_call_args call;
    wire::ErrorCode code;
  };
  auto excl = write_op(p("file"), "y");
  excl.exclusive = true;
  const std::vector<expectation> cases = {
      {op(wire::FsOp::read, p("missing")), wire::ErrorCode::not_found},
      {op(wire::FsOp::stat, p("missing")), wire::ErrorCode::not_found},
      {op(wire::FsOp::list, p("missing")), wire::ErrorCode::not_found},
      {op(wire::FsOp::remove, p("missing")), wire::ErrorCode::not_found},
      {write_op(p("missing/f"), "x"), wire::ErrorCode::not_found},
      {op(wire::FsOp::read, p("dir")), wire::ErrorCode::is_a_directory},
      {write_op(p("dir"), "x"), wire::ErrorCode::is_a_directory},
      {op(wire::FsOp::list, p("file")), wire::ErrorCode::not_a_directory},
      {op(wire::FsOp::read, p("file/x")), wire::ErrorCode::not_a_directory},
      {op(wire::FsOp::remove, p("dir")), wire::ErrorCode::not_empty},
      {op(wire::FsOp::mkdir, p("dir")), wire::ErrorCode::already_exists},
      {excl, wire::ErrorCode::already_exists},
      {write_op("/sys/corral-files-test-" + std::to_string(::getpid()), "x"),
       wire::ErrorCode::permission_denied},
      {op(wire::FsOp::read, p("fifo")), wire::ErrorCode::invalid_argument},  // never blocks
      {write_op(p("fifo"), "x"), wire::ErrorCode::invalid_argument},
      {op(wire::FsOp::read, "relative/path"), wire::ErrorCode::invalid_argument},
      {op(wire::FsOp::stat, ""), wire::ErrorCode::invalid_argument},
      {op(wire::FsOp::read, p("file") + std::string(1, '\0') + "x"), wire::ErrorCode::invalid_argument},
      {op(wire::FsOp::remove, "/"), wire::ErrorCode::invalid_argument},
      {op(wire::FsOp::none, p("file")), wire::ErrorCode::invalid_argument},
      {op(static_cast<wire::FsOp>(200), p("file")), wire::ErrorCode::invalid_argument},
  };
  for (const auto& x : cases) {
    auto r = c.call(x.call);
    EXPECT_EQ(r.error, x.code) << wire::EnumNameFsOp(x.call.op) << " " << x.call.path << ": "
                               << wire::to_string(r.error) << ": " << r.message;
    EXPECT_FALSE(r.message.empty());
    if (!x.call.path.empty() && x.call.path.front() == '/' && x.call.path.size() < 200 &&
        x.call.path.find('\0') == std::string::npos && x.code != wire::ErrorCode::invalid_argument) {
      EXPECT_NE(r.message.find(x.call.path), std::string::npos) << r.message;
    }
  }
  EXPECT_EQ(file_text(p("file")), "x");  // the exclusive write changed nothing
  EXPECT_FALSE(fs::exists("/sys/corral-files-test-" + std::to_string(::getpid())));
}

TEST_F(FilesInit, ManyCallsAtOnceAreEachAnsweredExactlyOnce) {
  fs_client c;
  ASSERT_TRUE(write_file(p("f"), "hello", 0644));
  const uint64_t first = c.next_id();
  bytes all;
  for (uint64_t i = 0; i < 50; ++i) {
    const auto payload = c.encode(first + i, op(wire::FsOp::read, p(i % 2 ? "f" : "missing")));
    wire::append_frame(all, payload.data(), payload.size());
  }
  c.skip_ids(50);
  c.send_raw(all);
  ASSERT_TRUE(c.wait_for(first + 49));
  for (uint64_t i = 0; i < 50; ++i) EXPECT_EQ(c.seen()[first + i], 1) << "call " << first + i;
  auto r = c.call(op(wire::FsOp::read, p("f")));
  EXPECT_EQ(r.data, "hello");
}

TEST(FilesInitLimits, OutOfRangeFileLimitsAreRefusedAtStartUp) {
  for (const std::string bad : {"--fs-max-read-bytes=100", "--fs-max-read-bytes=2000000",
                                "--fs-max-list-entries=0", "--fs-max-list-entries=5000",
                                "--fs-max-remove-entries=0"}) {
    init_process init({bad});
    const int status = init.wait_exit(deadline());
    ASSERT_TRUE(WIFEXITED(status)) << bad;
    EXPECT_EQ(WEXITSTATUS(status), 2) << bad;
    EXPECT_NE(init.log().find("fs-max-"), std::string::npos) << init.log();
  }
}

}  // namespace
}  // namespace corral::init_test
