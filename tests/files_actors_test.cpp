// The sandbox actor's file operations (actors/files.hpp) against the fake runtime, whose init
// never answers an FsCall: so every answer seen here is the actor's own (validation, caps,
// state, fail_all). Init's answers are covered by files_init_test and files_e2e_test.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>

#include <caf/all.hpp>

#include "actors/node.hpp"
#include "schemas/codec.hpp"
#include "schemas/subjects.hpp"
#include "tests/fakes/node_fixture.hpp"

namespace corral {
namespace {

using testing::fake_clock;
using testing::fake_outbox;
using testing::fake_router;
using testing::fake_runtime;
using testing::published;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string tenant = "t1";

bytes make_fs(const std::string& path, uint64_t length = 0, std::size_t data_bytes = 0) {
  flatbuffers::FlatBufferBuilder fbb;
  auto p = fbb.CreateString(path);
  auto d = fbb.CreateVector(std::vector<uint8_t>(data_bytes, 'x'));
  wire::FsRequestBuilder b(fbb);
  b.add_path(p);
  b.add_length(length);
  b.add_data(d);
  fbb.Finish(b.Finish(), wire::FsRequestIdentifier());
  return wire::release(fbb);
}

class FilesActors : public testing::node_fixture {
 protected:
  void configure(node_config& c) override {
    c.fs_max_read_bytes = 64 * 1024;
    c.fs_max_write_bytes = 32 * 1024;
    c.fs_max_pending_calls = 3;
  }

  std::string create_ok() {
    flatbuffers::FlatBufferBuilder fbb;
    wire::CreateSandboxBuilder b(fbb);
    fbb.Finish(b.Finish(), wire::CreateSandboxIdentifier());
    auto r = call(wire::subjects::create(tenant, "default"), wire::release(fbb));
    const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
    EXPECT_NE(rep, nullptr);
    return rep ? std::string(wire::str(rep->sandbox()->id())) : std::string();
  }

  std::string fs_subject(const std::string& sb, const std::string& op) {
    return wire::subjects::sandbox_op(tenant, sb, "fs." + op);
  }

  static std::pair<wire::ErrorCode, std::string> error_of(const published& p) {
    const auto* e = wire::verify<wire::ErrorReply>(p.payload.data(), p.payload.size());
    if (e == nullptr) return {wire::ErrorCode::ok, "(not an error)"};
    return {e->code(), std::string(wire::str(e->message()))};
  }

};

TEST_F(FilesActors, BadRequestsAreRefusedWithTypedErrors) {
  const auto sb = create_ok();
  ASSERT_FALSE(sb.empty());
  struct expectation {
    std::string op;
    bytes payload;
    wire::ErrorCode code;
    std::string says;
  };
  const std::vector<expectation> cases = {
      {"chmod", make_fs("/x"), wire::ErrorCode::invalid_argument, "fs.chmod"},
      {"read", bytes{1, 2, 3}, wire::ErrorCode::malformed, "FsRequest"},
      {"read", {}, wire::ErrorCode::malformed, "FsRequest"},
      {"read", make_fs("relative"), wire::ErrorCode::invalid_argument, "relative"},
      {"stat", make_fs(""), wire::ErrorCode::invalid_argument, "absolute"},
      {"stat", make_fs(std::string("/a\0b", 4)), wire::ErrorCode::invalid_argument, "NUL"},
      {"stat", make_fs("/" + std::string(5000, 'a')), wire::ErrorCode::invalid_argument, "longer"},
      {"read", make_fs("/big", 64 * 1024 + 1), wire::ErrorCode::too_large, "/big"},
      {"write", make_fs("/big", 0, 32 * 1024 + 1), wire::ErrorCode::too_large, "/big"},
  };
  for (const auto& x : cases) {
    auto [code, message] = error_of(call(fs_subject(sb, x.op), x.payload));
    EXPECT_EQ(code, x.code) << x.op << ": " << message;
    EXPECT_NE(message.find(x.says), std::string::npos) << message;
  }
}

TEST_F(FilesActors, PendingCallsAreCappedAndAnsweredWhenTheSandboxDies) {
  const auto sb = create_ok();
  ASSERT_FALSE(sb.empty());
  // The fake init never answers: three calls wait, the fourth is refused.
  std::vector<std::string> waiting;
  for (int i = 0; i < 3; ++i) waiting.push_back(send(fs_subject(sb, "read"), make_fs("/f")));
  auto fourth = call(fs_subject(sb, "stat"), make_fs("/g"));
  EXPECT_EQ(error_of(fourth).first, wire::ErrorCode::resource_exhausted)
      << error_of(fourth).second;
  for (const auto& r : waiting) EXPECT_FALSE(reply_on(r, 50ms).has_value());
  rt_.kill(sb);
  for (const auto& r : waiting) {
    auto got = reply_on(r);
    ASSERT_TRUE(got.has_value());
    auto [code, message] = error_of(*got);
    EXPECT_EQ(code, wire::ErrorCode::unavailable) << message;
    EXPECT_NE(message.find("/f"), std::string::npos) << message;
    EXPECT_EQ(out_.on(r).size(), 1u);  // exactly once
  }
  // Ended: failed_precondition.
  auto after = call(fs_subject(sb, "list"), make_fs("/"));
  EXPECT_EQ(error_of(after).first, wire::ErrorCode::failed_precondition) << error_of(after).second;
}

TEST_F(FilesActors, TerminateAnswersWaitingCalls) {
  const auto sb = create_ok();
  ASSERT_FALSE(sb.empty());
  const auto r = send(fs_subject(sb, "write"), make_fs("/f", 0, 10));
  call(wire::subjects::sandbox_op(tenant, sb, "terminate"), {});
  auto got = reply_on(r);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(error_of(*got).first, wire::ErrorCode::unavailable);
  auto after = call(fs_subject(sb, "read"), make_fs("/f"));
  EXPECT_EQ(error_of(after).first, wire::ErrorCode::failed_precondition);
}

}  // namespace
}  // namespace corral
