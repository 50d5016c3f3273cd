// `corral fs` end to end through the real path: corral CLI -> nats-server -> corral-executor ->
// runsc sandbox -> corral-init, which does the file work inside the sandbox. Covers streaming
// (3 MiB byte-exact), append, list, stat, mkdir -p, rm -r, every typed error, visibility to and
// from exec, and docs/promises.md P13: symlinks planted in the sandbox that point at host files never reach them.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bus/connection.hpp"
#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/nats_server.hpp"

namespace corral {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::background_process;
using test::run_result;

using test::bin;
using test::deployment;

using test::trim;

std::string read_host_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

deployment::options files_options() {
  deployment::options o;
  o.node = "files-node";
  o.tenant = "files";
  o.executor_args = {"--max-sandboxes", "4"};
  return o;
}

class FilesE2E : public test::deployment_test<files_options> {
 protected:
  void SetUp() override {
    deployment_test::SetUp();
    if (HasFatalFailure()) return;
    if (sb_.empty()) sb_ = d_->create({"--timeout", "600"});
    ASSERT_TRUE(wire::valid_id(sb_, "sb-")) << sb_;
  }

  run_result fs_cmd(std::vector<std::string> args, const std::string& input = {}) {
    args.insert(args.begin(), "fs");
    return d_->corral(args, input);
  }
  run_result exec(const std::vector<std::string>& argv) {
    std::vector<std::string> args = {"exec", sb_, "--"};
    args.insert(args.end(), argv.begin(), argv.end());
    return d_->corral(args);
  }
  // Expects exit 1 with "corral: CODE: ..." naming what.
  void expect_error(const run_result& r, const std::string& code, const std::string& names) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("corral: " + code + ": ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(names), std::string::npos) << r.err;
  }

  static std::string sb_;  // one sandbox shared by the tests (each uses its own paths)
};
std::string FilesE2E::sb_;

TEST_F(FilesE2E, ThreeMiBWrittenAndReadBackByteExactAndSeenByExec) {
  std::string data(3 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>((i * 131 + (i >> 12) * 7) & 0xff);
  auto w = fs_cmd({"write", sb_, "/tmp/big.bin"}, data);
  ASSERT_EQ(w.exit_code, 0) << w.err;
  auto r = fs_cmd({"cat", sb_, "/tmp/big.bin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out.size(), data.size());
  EXPECT_TRUE(r.out == data) << "the bytes read back differ";
  // exec sees what fs wrote, byte for byte.
  auto c = exec({"cat", "/tmp/big.bin"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_TRUE(c.out == data);
  // A size cap on cat.
  auto head = fs_cmd({"cat", "--max-bytes", "1000", sb_, "/tmp/big.bin"});
  ASSERT_EQ(head.exit_code, 0) << head.err;
  EXPECT_EQ(head.out, data.substr(0, 1000));
  // Overwriting with less truncates.
  ASSERT_EQ(fs_cmd({"write", sb_, "/tmp/big.bin"}, "short").exit_code, 0);
  EXPECT_EQ(exec({"cat", "/tmp/big.bin"}).out, "short");
}

TEST_F(FilesE2E, ExecWritesAreVisibleToFsAndAppendAppends) {
  ASSERT_EQ(exec({"sh", "-c", "printf 'from exec' > /tmp/from-exec"}).exit_code, 0);
  auto r = fs_cmd({"cat", sb_, "/tmp/from-exec"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "from exec");
  ASSERT_EQ(fs_cmd({"write", sb_, "/tmp/log"}, "one\n").exit_code, 0);
  ASSERT_EQ(fs_cmd({"write", "--append", sb_, "/tmp/log"}, "two\n").exit_code, 0);
  ASSERT_EQ(fs_cmd({"write", "--append", sb_, "/tmp/log"}, "three\n").exit_code, 0);
  EXPECT_EQ(fs_cmd({"cat", sb_, "/tmp/log"}).out, "one\ntwo\nthree\n");
  EXPECT_EQ(exec({"cat", "/tmp/log"}).out, "one\ntwo\nthree\n");
  // An empty stdin makes an empty file.
  ASSERT_EQ(fs_cmd({"write", sb_, "/tmp/empty"}, "").exit_code, 0);
  EXPECT_EQ(trim(exec({"stat", "-c", "%s", "/tmp/empty"}).out), "0");
}

TEST_F(FilesE2E, MkdirListStatAndRecursiveRemove) {
  ASSERT_EQ(fs_cmd({"mkdir", "-p", sb_, "/tmp/tree/a/b/c"}).exit_code, 0);
  ASSERT_EQ(fs_cmd({"mkdir", "-p", sb_, "/tmp/tree/a/b/c"}).exit_code, 0);  // idempotent
  ASSERT_EQ(fs_cmd({"mkdir", sb_, "/tmp/tree/solo"}).exit_code, 0);
  ASSERT_EQ(fs_cmd({"write", sb_, "/tmp/tree/file.txt"}, "12345").exit_code, 0);
  ASSERT_EQ(exec({"ln", "-s", "file.txt", "/tmp/tree/link"}).exit_code, 0);
  EXPECT_EQ(exec({"test", "-d", "/tmp/tree/a/b/c"}).exit_code, 0);

  auto ls = fs_cmd({"ls", sb_, "/tmp/tree"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  std::vector<std::string> lines;
  std::string line;
  for (std::istringstream in(ls.out); std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u) << ls.out;  // sorted by name
  EXPECT_EQ(lines[0].rfind("d 0755", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(" a"), std::string::npos);
  EXPECT_EQ(lines[1].rfind("- 0644", 0), 0u) << lines[1];
  EXPECT_NE(lines[1].find(" 5 "), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("file.txt"), std::string::npos);
  EXPECT_EQ(lines[2].rfind("l ", 0), 0u) << lines[2];
  EXPECT_NE(lines[3].find("solo"), std::string::npos);

  // A directory larger than one list page (1000 entries) is listed whole.
  ASSERT_EQ(exec({"sh", "-c", "mkdir /tmp/many && cd /tmp/many && seq 1 1500 | xargs touch"})
                .exit_code,
            0);
  auto many = fs_cmd({"ls", sb_, "/tmp/many"});
  ASSERT_EQ(many.exit_code, 0) << many.err;
  EXPECT_EQ(std::count(many.out.begin(), many.out.end(), '\n'), 1500);

  auto st = fs_cmd({"stat", sb_, "/tmp/tree/file.txt"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  EXPECT_NE(st.out.find("type:   regular"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("size:   5"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("mode:   0644"), std::string::npos) << st.out;
  EXPECT_NE(fs_cmd({"stat", sb_, "/tmp/tree/a"}).out.find("type:   directory"), std::string::npos);

  expect_error(fs_cmd({"rm", sb_, "/tmp/tree"}), "not_empty", "/tmp/tree");
  ASSERT_EQ(fs_cmd({"rm", "-r", sb_, "/tmp/tree"}).exit_code, 0);
  expect_error(fs_cmd({"stat", sb_, "/tmp/tree"}), "not_found", "/tmp/tree");
  EXPECT_NE(exec({"test", "-e", "/tmp/tree"}).exit_code, 0);
  // More entries than one remove call deletes (10000): the client goes on until done.
  ASSERT_EQ(exec({"sh", "-c", "cd /tmp/many && seq 1501 10200 | xargs touch"}).exit_code, 0);
  auto rm_many = fs_cmd({"rm", "-r", sb_, "/tmp/many"});
  EXPECT_EQ(rm_many.exit_code, 0) << rm_many.err;
  EXPECT_NE(exec({"test", "-e", "/tmp/many"}).exit_code, 0);
  ASSERT_EQ(fs_cmd({"write", sb_, "/tmp/single"}, "x").exit_code, 0);
  ASSERT_EQ(fs_cmd({"rm", sb_, "/tmp/single"}).exit_code, 0);
  EXPECT_NE(exec({"test", "-e", "/tmp/single"}).exit_code, 0);
}

TEST_F(FilesE2E, EveryTypedError) {
  ASSERT_EQ(fs_cmd({"mkdir", "-p", sb_, "/tmp/errs/full"}).exit_code, 0);
  ASSERT_EQ(fs_cmd({"write", sb_, "/tmp/errs/full/f"}, "x").exit_code, 0);
  ASSERT_EQ(fs_cmd({"write", sb_, "/tmp/errs/file"}, "x").exit_code, 0);
  expect_error(fs_cmd({"cat", sb_, "/tmp/errs/missing"}), "not_found", "/tmp/errs/missing");
  expect_error(fs_cmd({"ls", sb_, "/tmp/errs/missing"}), "not_found", "/tmp/errs/missing");
  expect_error(fs_cmd({"rm", sb_, "/tmp/errs/missing"}), "not_found", "/tmp/errs/missing");
  expect_error(fs_cmd({"write", sb_, "/tmp/errs/missing/x"}, "x"), "not_found",
               "/tmp/errs/missing/x");
  expect_error(fs_cmd({"cat", sb_, "/tmp/errs/full"}), "is_a_directory", "/tmp/errs/full");
  expect_error(fs_cmd({"write", sb_, "/tmp/errs/full"}, "x"), "is_a_directory", "/tmp/errs/full");
  expect_error(fs_cmd({"ls", sb_, "/tmp/errs/file"}), "not_a_directory", "/tmp/errs/file");
  expect_error(fs_cmd({"mkdir", "-p", sb_, "/tmp/errs/file/sub"}), "not_a_directory",
               "/tmp/errs/file");
  expect_error(fs_cmd({"rm", sb_, "/tmp/errs/full"}), "not_empty", "/tmp/errs/full");
  expect_error(fs_cmd({"mkdir", sb_, "/tmp/errs/full"}), "already_exists", "/tmp/errs/full");
  // /usr is the host's, bind-mounted read-only into the sandbox.
  expect_error(fs_cmd({"write", sb_, "/usr/corral-files-test"}, "x"), "permission_denied",
               "/usr/corral-files-test");
  EXPECT_FALSE(fs::exists("/usr/corral-files-test"));
  expect_error(fs_cmd({"cat", sb_, "relative/path"}), "invalid_argument", "relative/path");
  expect_error(fs_cmd({"cat", "sb-0000000000000000000000", "/etc/hostname"}), "not_found",
               "no such sandbox");

  // Over the per-request caps, straight on NATS (the CLI always stays within them).
  std::string error;
  bus::options o;
  o.urls = {d_->nats().url()};
  auto conn = bus::connection::connect(o, &error);
  ASSERT_NE(conn, nullptr) << error;
  auto code_of = [&](const std::string& op, uint64_t length, std::size_t data_bytes,
                     const std::string& path = "/tmp/errs/file") {
    flatbuffers::FlatBufferBuilder fbb(data_bytes + 256);
    auto p = fbb.CreateString(path);
    auto d = fbb.CreateVector(std::vector<uint8_t>(data_bytes, 'x'));
    wire::FsRequestBuilder b(fbb);
    b.add_path(p);
    b.add_length(length);
    b.add_data(d);
    fbb.Finish(b.Finish(), wire::FsRequestIdentifier());
    auto payload = wire::release(fbb);
    auto r = conn->request(wire::subjects::sandbox_op(d_->tenant(), sb_, "fs." + op),
                           payload.data(), payload.size(), 10000);
    if (!r) return std::string("bus:") + wire::to_string(r.error().code);
    const auto* e = wire::verify<wire::ErrorReply>(r.value().data.data(), r.value().data.size());
    return e ? std::string(wire::to_string(e->code())) : std::string("ok");
  };
  EXPECT_EQ(code_of("read", 4 * 1024 * 1024, 0), "too_large");
  EXPECT_EQ(code_of("write", 0, 600 * 1024), "too_large");
  EXPECT_EQ(code_of("read", 0, 0), "ok");
  EXPECT_EQ(code_of("chmod", 0, 0), "invalid_argument");
  EXPECT_EQ(code_of("read", 0, 0, std::string("/tmp/a\0b", 8)), "invalid_argument");
  {
    const std::vector<uint8_t> garbage = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    auto r = conn->request(wire::subjects::sandbox_op(d_->tenant(), sb_, "fs.read"), garbage.data(),
                           garbage.size(), 10000);
    ASSERT_TRUE(r);
    const auto* e = wire::verify<wire::ErrorReply>(r.value().data.data(), r.value().data.size());
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->code(), wire::ErrorCode::malformed);
  }

  // A sandbox that has ended: failed_precondition.
  const auto ended = d_->create();
  ASSERT_EQ(d_->corral({"sandbox", "rm", ended}).exit_code, 0);
  expect_error(fs_cmd({"cat", ended, "/etc/hostname"}), "failed_precondition", "not running");
}

// docs/promises.md P13: paths resolve inside the sandbox only. Symlinks planted in the sandbox that name a host
// file (directly, and through /proc/1/root) reach at most the sandbox's own copy of that path;
// the host file is never read or written. (/proc/1 is the user namespace's reaper, closed to
// the files API as to every process of the sandbox: docs/protocol.md "corral-init's boundary".)
TEST_F(FilesE2E, SymlinksToHostFilesNeverReachTheHost) {
  const std::string host_dir = d_->dir() + "/host-only";
  fs::create_directories(host_dir);
  const std::string marker = host_dir + "/marker";
  { std::ofstream(marker) << "host-secret"; }
  ASSERT_EQ(read_host_file(marker), "host-secret");

  ASSERT_EQ(exec({"ln", "-s", marker, "/tmp/to-host"}).exit_code, 0);
  ASSERT_EQ(exec({"ln", "-s", "/proc/1/root" + marker, "/tmp/to-host-via-proc"}).exit_code, 0);
  ASSERT_EQ(exec({"ln", "-s", host_dir, "/tmp/to-host-dir"}).exit_code, 0);
  for (const auto* link : {"/tmp/to-host", "/tmp/to-host-via-proc"}) {
    const std::string code = std::string(link) == "/tmp/to-host" ? "not_found" : "permission_denied";
    auto r = fs_cmd({"cat", sb_, link});
    expect_error(r, code, link);
    EXPECT_EQ(r.out.find("host-secret"), std::string::npos);
    expect_error(fs_cmd({"write", sb_, link}, "evil"), code, link);
  }
  expect_error(fs_cmd({"ls", sb_, "/tmp/to-host-dir"}), "not_found", "/tmp/to-host-dir");
  // A host file that every host has but the sandbox's generated /etc does not.
  ASSERT_TRUE(fs::exists("/etc/shadow"));
  expect_error(fs_cmd({"cat", sb_, "/etc/shadow"}), "not_found", "/etc/shadow");
  EXPECT_EQ(read_host_file(marker), "host-secret");

  // Once the same path exists inside the sandbox, the links lead there, and only there.
  ASSERT_EQ(exec({"mkdir", "-p", host_dir}).exit_code, 0);
  ASSERT_EQ(fs_cmd({"write", sb_, "/tmp/to-host"}, "evil").exit_code, 0);
  EXPECT_EQ(fs_cmd({"cat", sb_, marker}).out, "evil");
  // What a process of the sandbox gets through /proc/1/root, the files API gets too.
  auto via_proc = exec({"cat", "/tmp/to-host-via-proc"});
  EXPECT_NE(via_proc.exit_code, 0);
  EXPECT_NE(via_proc.err.find("Permission denied"), std::string::npos) << via_proc.err;
  expect_error(fs_cmd({"cat", sb_, "/tmp/to-host-via-proc"}), "permission_denied",
               "/tmp/to-host-via-proc");
  ASSERT_EQ(fs_cmd({"write", "--append", sb_, "/tmp/to-host"}, "!").exit_code, 0);
  auto ls = fs_cmd({"ls", sb_, "/tmp/to-host-dir"});
  EXPECT_NE(ls.out.find("marker"), std::string::npos) << ls.out;
  // rm -r of a directory holding a link to the sandbox's copy removes the link, not the target.
  ASSERT_EQ(fs_cmd({"mkdir", sb_, "/tmp/holder"}).exit_code, 0);
  ASSERT_EQ(exec({"ln", "-s", host_dir, "/tmp/holder/link"}).exit_code, 0);
  ASSERT_EQ(fs_cmd({"rm", "-r", sb_, "/tmp/holder"}).exit_code, 0);
  EXPECT_EQ(fs_cmd({"cat", sb_, marker}).out, "evil!");
  ASSERT_EQ(fs_cmd({"rm", "-r", sb_, "/tmp/to-host-dir"}).exit_code, 0);  // the link only
  EXPECT_EQ(fs_cmd({"cat", sb_, marker}).out, "evil!");

  // The host file was never touched.
  EXPECT_EQ(read_host_file(marker), "host-secret");
  EXPECT_EQ(std::distance(fs::directory_iterator(host_dir), fs::directory_iterator{}), 1);
}

}  // namespace
}  // namespace corral
