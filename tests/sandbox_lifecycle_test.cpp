// The sandbox actor's lifecycle: create, stored transitions (and a store that fails them),
// terminate, lifetime and idle timeouts, death, start failure, the entrypoint, restart.
// Against fakes of the runtime, outbox, router and clock, and a real store in a temp dir; every
// wait is on an event with a deadline.
#include "tests/actors_fixture.hpp"

namespace corral {
namespace {

using namespace actors_testing;

TEST_F(ActorsTest, CreateThenInfoShowsRunningAndIsStored) {
  const auto id = create_ok("demo");
  ASSERT_TRUE(wire::valid_id(id, "sb-"));
  auto r = call(wire::subjects::sandbox_op(tenant, id, "info"), {});
  const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
  ASSERT_NE(rep, nullptr);
  EXPECT_EQ(wire::str(rep->sandbox()->name()), "demo");
  EXPECT_EQ(rep->sandbox()->timeout_ms(), 300'000);
  auto stored = store_->get_sandbox(id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, wire::SandboxState::running);
}

TEST_F(ActorsTest, TerminateEndsRunningExecsWith137AndDestroys) {
  const auto id = create_ok();
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"hang"}, "ex-live"));
  auto r = call(wire::subjects::sandbox_op(tenant, id, "terminate"), {});
  const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
  ASSERT_NE(rep, nullptr);
  EXPECT_EQ(rep->sandbox()->state(), wire::SandboxState::terminated);
  EXPECT_EQ(rep->sandbox()->return_code(), 137);
  EXPECT_EQ(wait_exit(id, "ex-live"), std::make_pair(wire::Outcome::signaled, 137));
  EXPECT_TRUE(rt_.wait_destroyed(id));
  // Exec on a terminated sandbox is refused with a clear error.
  auto late = call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"echo", "x"}));
  EXPECT_EQ(error_code(late), wire::ErrorCode::failed_precondition);
}

// A transition is stored (synced) before it is acknowledged: when the write fails, the request
// is answered with an error and the sandbox never reports the state it could not store.
TEST_F(ActorsTest, CreateWhoseRunningStateCannotBeStoredIsAnsweredWithAnError) {
  faults_->fail_put_sandbox_when(
      [](const storage::sandbox_record& r) { return r.state == wire::SandboxState::running; });
  auto r = call(wire::subjects::create(tenant, "default"), make_create("unstored"));
  EXPECT_EQ(wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size()), nullptr)
      << "answered as if running";
  EXPECT_EQ(error_code(r), wire::ErrorCode::internal) << error_text(r);
  auto listed = store_->list_sandboxes();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->records.size(), 1u);
  const auto id = listed->records[0].id;
  EXPECT_NE(listed->records[0].state, wire::SandboxState::running);
  auto info = call(wire::subjects::sandbox_op(tenant, id, "info"), {});
  const auto* rep = wire::verify<wire::SandboxReply>(info.payload.data(), info.payload.size());
  ASSERT_NE(rep, nullptr) << error_text(info);
  EXPECT_NE(rep->sandbox()->state(), wire::SandboxState::running);
  EXPECT_TRUE(rt_.wait_destroyed(id));
}

TEST_F(ActorsTest, TerminateWhoseStateCannotBeStoredIsAnsweredWithAnErrorAndChangesNothing) {
  const auto id = create_ok();
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"hang"}, "ex-live"));
  faults_->fail_put_sandbox_when(
      [](const storage::sandbox_record& r) { return r.state == wire::SandboxState::terminated; });
  auto r = call(wire::subjects::sandbox_op(tenant, id, "terminate"), {});
  EXPECT_EQ(wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size()), nullptr)
      << "answered as if terminated";
  EXPECT_EQ(error_code(r), wire::ErrorCode::internal) << error_text(r);
  auto info = call(wire::subjects::sandbox_op(tenant, id, "info"), {});
  const auto* rep = wire::verify<wire::SandboxReply>(info.payload.data(), info.payload.size());
  ASSERT_NE(rep, nullptr) << error_text(info);
  EXPECT_EQ(rep->sandbox()->state(), wire::SandboxState::running);
  auto stored = store_->get_sandbox(id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, wire::SandboxState::running);
  // Nothing was torn down: the exec still runs, and a terminate once the store works ends it all.
  auto again = call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"hang"}, "ex-live"));
  const auto* ex = wire::verify<wire::ExecReply>(again.payload.data(), again.payload.size());
  ASSERT_NE(ex, nullptr) << error_text(again);
  EXPECT_TRUE(ex->reattached());
  EXPECT_FALSE(ex->finished());
  faults_->fail_put_sandbox_when({});
  auto done = call(wire::subjects::sandbox_op(tenant, id, "terminate"), {});
  rep = wire::verify<wire::SandboxReply>(done.payload.data(), done.payload.size());
  ASSERT_NE(rep, nullptr) << error_text(done);
  EXPECT_EQ(rep->sandbox()->state(), wire::SandboxState::terminated);
  EXPECT_EQ(wait_exit(id, "ex-live"), std::make_pair(wire::Outcome::signaled, 137));
  EXPECT_TRUE(rt_.wait_destroyed(id));
}

TEST_F(ActorsTest, LifetimeTimeoutGives124) {
  const auto id = create_ok({}, 100);
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"hang"}, "ex-h"));
  // The timer fires after 100 ms of real time and then checks the (fake) clock: until the clock
  // says the lifetime is over it re-arms.
  clk_.advance(200);
  auto r = call(wire::subjects::sandbox_op(tenant, id, "wait"), [] {
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(wire::CreateSandboxQuery(fbb, 10'000), wire::SandboxQueryIdentifier());
    return wire::release(fbb);
  }());
  const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
  ASSERT_NE(rep, nullptr) << error_text(r);
  EXPECT_EQ(rep->sandbox()->state(), wire::SandboxState::timed_out);
  EXPECT_EQ(rep->sandbox()->return_code(), 124);
  EXPECT_EQ(wait_exit(id, "ex-h"), std::make_pair(wire::Outcome::timeout, 124));
}

TEST_F(ActorsTest, SandboxDeathFailsItAndItsExecs) {
  const auto id = create_ok();
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"hang"}, "ex-d"));
  rt_.kill(id);
  auto [outcome, code] = wait_exit(id, "ex-d");
  EXPECT_EQ(outcome, wire::Outcome::internal);
  EXPECT_EQ(code, 255);
  auto r = call(wire::subjects::sandbox_op(tenant, id, "info"), {});
  const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
  ASSERT_NE(rep, nullptr);
  EXPECT_EQ(rep->sandbox()->state(), wire::SandboxState::failed);
}

TEST_F(ActorsTest, StartFailureAnswersTheCreatorAndLeavesAFailedRecord) {
  rt_.fail_next_start("runsc exploded");
  auto r = call(wire::subjects::create(tenant, "default"), make_create());
  EXPECT_EQ(error_code(r), wire::ErrorCode::internal);
  EXPECT_NE(error_text(r).find("runsc exploded"), std::string::npos);
  auto all = store_->list_sandboxes();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->records.size(), 1u);
  EXPECT_EQ(all->records[0].state, wire::SandboxState::failed);
}

TEST_F(ActorsTest, EntrypointExitEndsTheSandboxWithItsCode) {
  auto r = call(wire::subjects::create(tenant, "default"), make_create({}, 0, {}, {"fail", "7"}));
  const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
  ASSERT_NE(rep, nullptr) << error_text(r);
  const std::string id(wire::str(rep->sandbox()->id()));
  // Its output is kept like any exec's, under the exec id "entrypoint".
  EXPECT_EQ(wait_exit(id, "entrypoint"), std::make_pair(wire::Outcome::exited, 7));
  auto w = call(wire::subjects::sandbox_op(tenant, id, "wait"), [] {
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(wire::CreateSandboxQuery(fbb, 10'000), wire::SandboxQueryIdentifier());
    return wire::release(fbb);
  }());
  const auto* done = wire::verify<wire::SandboxReply>(w.payload.data(), w.payload.size());
  ASSERT_NE(done, nullptr) << error_text(w);
  EXPECT_EQ(done->sandbox()->state(), wire::SandboxState::exited);
  EXPECT_EQ(done->sandbox()->return_code(), 7);
  EXPECT_TRUE(rt_.wait_destroyed(id));
}

TEST_F(ActorsTest, IdleTimeoutWaitsForRunningExecsThenEnds) {
  auto r = call(wire::subjects::create(tenant, "default"), make_create({}, 0, {}, {}, 50));
  const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
  ASSERT_NE(rep, nullptr) << error_text(r);
  const std::string id(wire::str(rep->sandbox()->id()));
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"hang"}, "ex-busy"));
  clk_.advance(1000);
  // Busy: a running exec is activity. Its end starts the idle period.
  auto busy = call(wire::subjects::sandbox_op(tenant, id, "wait"), make_wait(300));
  EXPECT_EQ(error_code(busy), wire::ErrorCode::deadline_exceeded) << error_text(busy);
  flatbuffers::FlatBufferBuilder fbb;
  auto eid = fbb.CreateString("ex-busy");
  fbb.Finish(wire::CreateSignalRequest(fbb, eid, 9), wire::SignalRequestIdentifier());
  call(wire::subjects::sandbox_op(tenant, id, "signal"), wire::release(fbb));
  wait_exit(id, "ex-busy");
  clk_.advance(1000);
  auto w = call(wire::subjects::sandbox_op(tenant, id, "wait"), make_wait(10'000));
  const auto* done = wire::verify<wire::SandboxReply>(w.payload.data(), w.payload.size());
  ASSERT_NE(done, nullptr) << error_text(w);
  EXPECT_EQ(done->sandbox()->state(), wire::SandboxState::timed_out);
  EXPECT_NE(wire::str(done->sandbox()->message()).find("idle"), std::string_view::npos);
}

TEST_F(ActorsTest, RestartAdoptsLiveSandboxesAndEndsLostExecs) {
  const auto id = create_ok();
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"chatty"}, "ex-lost"));
  ASSERT_TRUE(out_.wait_for(wire::subjects::output(tenant, id, "ex-lost"), [](const published& p) {
    return wire::verify<wire::OutputChunk>(p.payload.data(), p.payload.size()) != nullptr;
  }));
  // A second sandbox that will not be on the host any more after the "crash".
  const auto gone = create_ok();
  close_node();
  rt_.add_host_sandbox(id);  // still running on the host
  rt_.kill(gone);
  rt_.add_host_sandbox("sb-orphanXXXXXXXXXXXXXXXXXX");  // on the host, no record: an orphan
  open_node();
  // The adopted sandbox answers again and is running; its old exec ended executor_lost.
  // Its exit frame follows the chunk the lost exec had written, with its byte count.
  auto info = out_.wait_for(wire::subjects::output(tenant, id, "ex-lost"), [](const published& p) {
    const auto* x = wire::verify<wire::ExecExit>(p.payload.data(), p.payload.size());
    return x && x->status()->outcome() == wire::Outcome::executor_lost;
  });
  ASSERT_TRUE(info.has_value());
  const auto* lost = wire::verify<wire::ExecExit>(info->payload.data(), info->payload.size());
  EXPECT_EQ(lost->seq(), 1u);
  EXPECT_EQ(lost->status()->stdout_bytes(), 6u);
  auto r = call(wire::subjects::sandbox_op(tenant, id, "info"), {});
  const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
  ASSERT_NE(rep, nullptr);
  EXPECT_EQ(rep->sandbox()->state(), wire::SandboxState::running);
  auto g = call(wire::subjects::sandbox_op(tenant, gone, "wait"), [] {
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(wire::CreateSandboxQuery(fbb, 10'000), wire::SandboxQueryIdentifier());
    return wire::release(fbb);
  }());
  const auto* grep = wire::verify<wire::SandboxReply>(g.payload.data(), g.payload.size());
  ASSERT_NE(grep, nullptr) << error_text(g);
  EXPECT_EQ(grep->sandbox()->state(), wire::SandboxState::failed);
  EXPECT_TRUE(rt_.wait_destroyed("sb-orphanXXXXXXXXXXXXXXXXXX"));
  auto stored = store_->get_process(id, "ex-lost");
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->finished);
  EXPECT_EQ(stored->outcome, wire::Outcome::executor_lost);
  // The adopted sandbox still runs execs.
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"echo", "again"}, "ex-again"));
  EXPECT_EQ(wait_exit(id, "ex-again"), std::make_pair(wire::Outcome::exited, 0));
}

}  // namespace
}  // namespace corral
