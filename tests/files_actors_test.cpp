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
#include "tests/fakes/fake_ports.hpp"

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

class FilesActors : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/corral-files-actors-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto opened = storage::store::open(dir_ + "/db", storage::store_options{});
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(*opened);
    node_context ctx;
    ctx.config.node_id = "node-a";
    ctx.config.fs_max_read_bytes = 64 * 1024;
    ctx.config.fs_max_write_bytes = 32 * 1024;
    ctx.config.fs_max_pending_calls = 3;
    ASSERT_EQ(ctx.config.validate(), "");
    ctx.store = store_.get();
    ctx.out = &out_;
    ctx.clk = &clk_;
    ctx.rt = &rt_;
    ctx.router = &router_;
    ctx.session = 1;
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    node_ = spawn_node(*sys_, std::make_shared<const node_context>(ctx));
    caf::scoped_actor self{*sys_};
    self->request(node_, std::chrono::seconds(10), recover_atom::value)
        .receive([](uint32_t) {}, [](caf::error&) { FAIL() << "recover failed"; });
  }

  void TearDown() override {
    caf::anon_send_exit(node_, caf::exit_reason::user_shutdown);
    node_ = nullptr;
    sys_->await_all_actors_done();
    sys_.reset();
    (void)store_->close();
    store_.reset();
    fs::remove_all(dir_);
  }

  // Sends a request; returns its reply subject.
  std::string send(const std::string& subject, bytes payload) {
    const auto reply = "reply." + std::to_string(++replies_);
    const auto op = std::string(wire::subjects::last_token(subject));
    bus_request req{subject, reply, std::move(payload)};
    if (op == "create") {
      caf::anon_send(node_, create_atom::value, std::move(req));
    } else {
      auto rest = subject.substr(std::string("corral.v1." + tenant + ".sbx.").size());
      auto a = router_.route(rest.substr(0, rest.find('.')));
      EXPECT_TRUE(a) << "no route for " << subject;
      if (a) caf::anon_send(a, op_atom::value, std::move(req));
    }
    return reply;
  }

  std::optional<published> reply_on(const std::string& reply,
                                    std::chrono::milliseconds within = 10s) {
    return out_.wait_for(reply, [](const published&) { return true; }, within);
  }

  published call(const std::string& subject, bytes payload) {
    auto got = reply_on(send(subject, std::move(payload)));
    EXPECT_TRUE(got.has_value()) << "no reply on " << subject;
    return got.value_or(published{});
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

  std::string dir_;
  fake_outbox out_;
  fake_router router_;
  fake_clock clk_;
  fake_runtime rt_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<storage::store> store_;
  node_actor node_;
  int replies_ = 0;
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
