// The sandbox actor's queries: replay (and its expiry), tags.
// Against fakes of the runtime, outbox, router and clock, and a real store in a temp dir; every
// wait is on an event with a deadline.
#include "tests/actors_fixture.hpp"

namespace corral {
namespace {

using namespace actors_testing;

TEST_F(ActorsTest, ReplayReturnsExactlyTheStoredFramesFromAnOffset) {
  const auto id = create_ok();
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"flood", "10"}, "ex-r"));
  wait_exit(id, "ex-r");
  flatbuffers::FlatBufferBuilder fbb;
  auto eid = fbb.CreateString("ex-r");
  fbb.Finish(wire::CreateReplayRequest(fbb, eid, 4), wire::ReplayRequestIdentifier());
  auto ack = call(wire::subjects::sandbox_op(tenant, id, "replay"), wire::release(fbb));
  // call() returned the first frame on the reply subject; collect them all.
  auto done = out_.wait_for(ack.subject, [](const published& p) {
    return wire::verify<wire::Ack>(p.payload.data(), p.payload.size()) != nullptr;
  });
  ASSERT_TRUE(done);
  auto frames = out_.on(ack.subject);
  ASSERT_EQ(frames.size(), 6u + 1 + 1);  // chunks 4..9, the exit, the ack
  for (std::size_t i = 0; i < 6; ++i) {
    const auto* c = wire::verify<wire::OutputChunk>(frames[i].payload.data(), frames[i].payload.size());
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->seq(), 4 + i);
    EXPECT_EQ(c->offset(), (4 + i) * 1000);
  }
  EXPECT_NE(wire::verify<wire::ExecExit>(frames[6].payload.data(), frames[6].payload.size()), nullptr);
}

TEST_F(ActorsTest, SetTagsReplacesTheWholeSetAndListSeesIt) {
  auto r = call(wire::subjects::create(tenant, "default"), make_create("t", 0, {{"a", "1"}, {"b", "2"}}));
  const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
  ASSERT_NE(rep, nullptr);
  const std::string id(wire::str(rep->sandbox()->id()));
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::KeyValue>> kvs = {
      wire::CreateKeyValue(fbb, fbb.CreateString("c"), fbb.CreateString("3"))};
  auto t = fbb.CreateVectorOfSortedTables(&kvs);
  fbb.Finish(wire::CreateSetTags(fbb, t), wire::SetTagsIdentifier());
  auto set = call(wire::subjects::sandbox_op(tenant, id, "tags"), wire::release(fbb));
  const auto* after = wire::verify<wire::SandboxReply>(set.payload.data(), set.payload.size());
  ASSERT_NE(after, nullptr) << error_text(set);
  ASSERT_EQ(after->sandbox()->tags()->size(), 1u);
  EXPECT_EQ(wire::str(after->sandbox()->tags()->Get(0)->key()), "c");
  auto get = call(wire::subjects::sandbox_op(tenant, id, "tags"), {});
  const auto* got = wire::verify<wire::SandboxReply>(get.payload.data(), get.payload.size());
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->sandbox()->tags()->size(), 1u);
  EXPECT_EQ(store_->get_sandbox(id)->tags, (storage::string_pairs{{"c", "3"}}));
  // Bad tags are refused and change nothing.
  flatbuffers::FlatBufferBuilder bad;
  std::vector<flatbuffers::Offset<wire::KeyValue>> badkv = {
      wire::CreateKeyValue(bad, bad.CreateString(""), bad.CreateString("x"))};
  auto bt = bad.CreateVectorOfSortedTables(&badkv);
  bad.Finish(wire::CreateSetTags(bad, bt), wire::SetTagsIdentifier());
  EXPECT_EQ(error_code(call(wire::subjects::sandbox_op(tenant, id, "tags"), wire::release(bad))),
            wire::ErrorCode::invalid_argument);
  EXPECT_EQ(store_->get_sandbox(id)->tags, (storage::string_pairs{{"c", "3"}}));
}

TEST_F(ActorsTest, ReplayAfterOutputRetentionAnswersExpired) {
  const auto id = create_ok();
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"flood", "3"}, "ex-old"));
  wait_exit(id, "ex-old");
  call(wire::subjects::sandbox_op(tenant, id, "terminate"), {});
  clk_.advance(25LL * 3600 * 1000);  // past output retention (24 h), within record retention
  caf::anon_send(node_, tick_atom::value);
  caf::scoped_actor self{*sys_};
  // The node handles its mailbox in order: once stats answers, the tick has run.
  self->request(node_, std::chrono::seconds(10), stats_atom::value)
      .receive([](const node_stats&) {}, [](caf::error&) { FAIL() << "no stats"; });
  flatbuffers::FlatBufferBuilder fbb;
  auto eid = fbb.CreateString("ex-old");
  fbb.Finish(wire::CreateReplayRequest(fbb, eid, 0), wire::ReplayRequestIdentifier());
  auto r = call(wire::subjects::sandbox_op(tenant, id, "replay"), wire::release(fbb));
  EXPECT_EQ(error_code(r), wire::ErrorCode::expired) << error_text(r);
  // The sandbox's record is still there.
  auto info = call(wire::subjects::sandbox_op(tenant, id, "info"), {});
  EXPECT_NE(wire::verify<wire::SandboxReply>(info.payload.data(), info.payload.size()), nullptr);
}

}  // namespace
}  // namespace corral
