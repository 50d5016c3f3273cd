// The sandbox actor's execs and their process actors: output, re-attach, exit codes, stdin,
// timeouts, the output cap.
// Against fakes of the runtime, outbox, router and clock, and a real store in a temp dir; every
// wait is on an event with a deadline.
#include <atomic>

#include "tests/actors_fixture.hpp"

namespace corral {
namespace {

using namespace actors_testing;

TEST_F(ActorsTest, ExecStreamsNumberedChunksThenOneExit) {
  const auto id = create_ok();
  auto r = call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"flood", "5"}, "ex-flood"));
  ASSERT_NE(wire::verify<wire::ExecReply>(r.payload.data(), r.payload.size()), nullptr) << error_text(r);
  auto [outcome, code] = wait_exit(id, "ex-flood");
  EXPECT_EQ(outcome, wire::Outcome::exited);
  EXPECT_EQ(code, 0);
  auto frames = out_.on(wire::subjects::output(tenant, id, "ex-flood"));
  ASSERT_EQ(frames.size(), 6u);
  for (std::size_t i = 0; i < 5; ++i) {
    const auto* c = wire::verify<wire::OutputChunk>(frames[i].payload.data(), frames[i].payload.size());
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->seq(), i);
    EXPECT_EQ(c->offset(), i * 1000);
    EXPECT_EQ(c->stream(), wire::Stream::stdout);
  }
  const auto* x = wire::verify<wire::ExecExit>(frames[5].payload.data(), frames[5].payload.size());
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->seq(), 5u);
  EXPECT_EQ(x->status()->stdout_bytes(), 5000u);
}

TEST_F(ActorsTest, SameExecIdReattachesAndNeverStartsTwice) {
  const auto id = create_ok();
  auto first = call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"hang"}, "ex-once"));
  ASSERT_NE(wire::verify<wire::ExecReply>(first.payload.data(), first.payload.size()), nullptr);
  for (int i = 0; i < 20; ++i) {
    auto again = call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"hang"}, "ex-once"));
    const auto* rep = wire::verify<wire::ExecReply>(again.payload.data(), again.payload.size());
    ASSERT_NE(rep, nullptr);
    EXPECT_TRUE(rep->reattached());
  }
  EXPECT_EQ(rt_.spawn_count(id), 1u);
  // Finished execs re-attach too, with their status.
  flatbuffers::FlatBufferBuilder fbb;
  auto eid = fbb.CreateString("ex-once");
  fbb.Finish(wire::CreateSignalRequest(fbb, eid, 15), wire::SignalRequestIdentifier());
  call(wire::subjects::sandbox_op(tenant, id, "signal"), wire::release(fbb));
  auto [outcome, code] = wait_exit(id, "ex-once");
  EXPECT_EQ(outcome, wire::Outcome::signaled);
  EXPECT_EQ(code, 128 + 15);
  auto after = call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"hang"}, "ex-once"));
  const auto* rep = wire::verify<wire::ExecReply>(after.payload.data(), after.payload.size());
  ASSERT_NE(rep, nullptr);
  EXPECT_TRUE(rep->reattached());
  EXPECT_TRUE(rep->finished());
  EXPECT_EQ(rep->status()->exit_code(), 143);
  EXPECT_EQ(rt_.spawn_count(id), 1u);
}

// attach_only re-attaches to a known exec (live or finished) and answers NOT_FOUND for an
// unknown one: a status check or a resume can never start a process.
TEST_F(ActorsTest, AttachOnlyNeverStartsAProcess) {
  const auto id = create_ok();
  auto attach = [&](const std::string& eid) {
    flatbuffers::FlatBufferBuilder fbb;
    auto e = fbb.CreateString(eid);
    auto argv = fbb.CreateVectorOfStrings({"hang"});
    wire::ExecRequestBuilder b(fbb);
    b.add_exec_id(e);
    b.add_argv(argv);
    b.add_attach_only(true);
    fbb.Finish(b.Finish(), wire::ExecRequestIdentifier());
    return call(wire::subjects::sandbox_op(tenant, id, "exec"), wire::release(fbb));
  };
  auto unknown = attach("ex-never");
  EXPECT_EQ(wire::verify<wire::ExecReply>(unknown.payload.data(), unknown.payload.size()), nullptr);
  EXPECT_EQ(error_code(unknown), wire::ErrorCode::not_found) << error_text(unknown);
  EXPECT_EQ(rt_.spawn_count(id), 0u);
  auto no_id = attach("");
  EXPECT_EQ(error_code(no_id), wire::ErrorCode::invalid_argument) << error_text(no_id);

  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"hang"}, "ex-live"));
  auto live = attach("ex-live");
  const auto* rep = wire::verify<wire::ExecReply>(live.payload.data(), live.payload.size());
  ASSERT_NE(rep, nullptr) << error_text(live);
  EXPECT_TRUE(rep->reattached());
  EXPECT_FALSE(rep->finished());
  EXPECT_EQ(rt_.spawn_count(id), 1u);
}

TEST_F(ActorsTest, ExitCodesAndMissingExecutable) {
  const auto id = create_ok();
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"fail", "3"}, "ex-3"));
  EXPECT_EQ(wait_exit(id, "ex-3"), std::make_pair(wire::Outcome::exited, 3));
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"no-such-program"}, "ex-nf"));
  EXPECT_EQ(wait_exit(id, "ex-nf"), std::make_pair(wire::Outcome::rejected, 127));
}

TEST_F(ActorsTest, StdinIsForwardedAndEofEnds) {
  const auto id = create_ok();
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"cat"}, "ex-cat", 0, true));
  flatbuffers::FlatBufferBuilder fbb;
  auto eid = fbb.CreateString("ex-cat");
  const std::string text = "hello";
  auto data = fbb.CreateVector(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  fbb.Finish(wire::CreateStdinWrite(fbb, eid, data, true), wire::StdinWriteIdentifier());
  auto r = call(wire::subjects::sandbox_op(tenant, id, "stdin"), wire::release(fbb));
  EXPECT_NE(wire::verify<wire::Ack>(r.payload.data(), r.payload.size()), nullptr) << error_text(r);
  EXPECT_EQ(wait_exit(id, "ex-cat"), std::make_pair(wire::Outcome::exited, 0));
  auto frames = out_.on(wire::subjects::output(tenant, id, "ex-cat"));
  const auto* c = wire::verify<wire::OutputChunk>(frames.at(0).payload.data(), frames.at(0).payload.size());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(std::string(c->data()->begin(), c->data()->end()), "hello");
}

TEST_F(ActorsTest, ExecTimeoutEndsWithTimeoutStatus) {
  const auto id = create_ok();
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"hang"}, "ex-slow", 50));
  EXPECT_EQ(wait_exit(id, "ex-slow"), std::make_pair(wire::Outcome::timeout, 124));
}

TEST_F(ActorsTest, OutputStopsExactlyAtTheCapAndEndsAsOutputLimit) {
  close_node();
  max_output_bytes_ = 3500;
  open_node();
  const auto id = create_ok();
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"flood", "10"}, "ex-cap"));
  auto got = out_.wait_for(wire::subjects::output(tenant, id, "ex-cap"), [](const published& p) {
    return wire::verify<wire::ExecExit>(p.payload.data(), p.payload.size()) != nullptr;
  });
  ASSERT_TRUE(got);
  uint64_t bytes = 0;
  for (const auto& f : out_.on(wire::subjects::output(tenant, id, "ex-cap")))
    if (const auto* c = wire::verify<wire::OutputChunk>(f.payload.data(), f.payload.size()))
      bytes += c->data()->size();
  EXPECT_EQ(bytes, 3500u);
  const auto* x = wire::verify<wire::ExecExit>(got->payload.data(), got->payload.size());
  EXPECT_EQ(x->status()->outcome(), wire::Outcome::output_limit);
  EXPECT_EQ(x->status()->stdout_bytes(), 3500u);
  EXPECT_NE(wire::str(x->status()->message()).find("6500 bytes of output dropped"),
            std::string_view::npos)
      << wire::str(x->status()->message());
}

// The terminal status is stored (synced) before its ExecExit is published: a failed write is
// tried again, and the exit waits for it (docs/promises.md P2).
TEST_F(ActorsTest, ExecExitIsPublishedOnlyOnceItsStatusIsStored) {
  const auto id = create_ok();
  std::atomic<int> final_writes{0};
  faults_->fail_put_process_when([&](const storage::process_record& p) {
    return p.finished && final_writes.fetch_add(1) < 2;  // the first two fail
  });
  auto r = call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"flood", "1"}, "ex-st"));
  ASSERT_NE(wire::verify<wire::ExecReply>(r.payload.data(), r.payload.size()), nullptr) << error_text(r);
  auto got = out_.wait_for(wire::subjects::output(tenant, id, "ex-st"), [](const published& p) {
    return wire::verify<wire::ExecExit>(p.payload.data(), p.payload.size()) != nullptr;
  });
  ASSERT_TRUE(got);
  EXPECT_EQ(final_writes.load(), 3) << "published before its status was stored";
  auto stored = store_->get_process(id, "ex-st");
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->finished);
  // A re-attach now says finished, as the exit did.
  auto again = call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"flood", "1"}, "ex-st"));
  const auto* rep = wire::verify<wire::ExecReply>(again.payload.data(), again.payload.size());
  ASSERT_NE(rep, nullptr) << error_text(again);
  EXPECT_TRUE(rep->finished());
  EXPECT_EQ(rt_.spawn_count(id), 1u);
}

}  // namespace
}  // namespace corral
