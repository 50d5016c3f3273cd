// The actors' protocols (node, sandbox, process) against fakes of the runtime, outbox, router and
// clock, and a real store in a temp dir. Every wait is on an event with a deadline.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <atomic>
#include <set>
#include <filesystem>

#include <caf/all.hpp>

#include "actors/node.hpp"
#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
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

const std::string tenant = "t1";  // node_fixture's tenant

bytes make_create(const std::string& name = {}, int64_t timeout_ms = 0,
                  std::vector<std::pair<std::string, std::string>> tags = {},
                  std::vector<std::string> entrypoint = {}, int64_t idle_timeout_ms = 0,
                  std::vector<std::string> probe = {}) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateString(name);
  std::vector<flatbuffers::Offset<flatbuffers::String>> ep;
  for (const auto& a : entrypoint) ep.push_back(fbb.CreateString(a));
  auto epv = fbb.CreateVector(ep);
  auto probev = fbb.CreateVectorOfStrings(probe);
  std::vector<flatbuffers::Offset<wire::KeyValue>> kvs;
  for (auto& [k, v] : tags) kvs.push_back(wire::CreateKeyValue(fbb, fbb.CreateString(k), fbb.CreateString(v)));
  auto t = fbb.CreateVectorOfSortedTables(&kvs);
  wire::CreateSandboxBuilder b(fbb);
  b.add_name(n);
  b.add_timeout_ms(timeout_ms);
  b.add_tags(t);
  b.add_entrypoint(epv);
  b.add_idle_timeout_ms(idle_timeout_ms);
  b.add_probe_command(probev);
  fbb.Finish(b.Finish(), wire::CreateSandboxIdentifier());
  return wire::release(fbb);
}

bytes make_exec(const std::vector<std::string>& argv, const std::string& exec_id = {},
                int64_t timeout_ms = 0, bool with_stdin = false) {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString(exec_id);
  std::vector<flatbuffers::Offset<flatbuffers::String>> a;
  for (const auto& s : argv) a.push_back(fbb.CreateString(s));
  auto av = fbb.CreateVector(a);
  fbb.Finish(wire::CreateExecRequest(fbb, id, av, 0, 0, timeout_ms, with_stdin),
             wire::ExecRequestIdentifier());
  return wire::release(fbb);
}

class ActorsTest : public testing::node_fixture {
 protected:
  void configure(node_config& c) override {
    c.max_sandboxes = 3;
    c.exec_kill_grace_ms = 500;
    c.max_output_bytes = max_output_bytes_;
    c.tags = {{"gpu", "H100"}};
  }

  std::string create_ok(const std::string& name = {}, int64_t timeout_ms = 0) {
    auto r = call(wire::subjects::create(tenant, "default"), make_create(name, timeout_ms));
    const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
    EXPECT_NE(rep, nullptr) << error_text(r);
    if (rep == nullptr) return {};
    EXPECT_EQ(rep->sandbox()->state(), wire::SandboxState::running);
    return std::string(wire::str(rep->sandbox()->id()));
  }

  // Waits for the ExecExit of an exec and returns (outcome, exit code).
  std::pair<wire::Outcome, int> wait_exit(const std::string& sb, const std::string& ex) {
    auto got = out_.wait_for(wire::subjects::output(tenant, sb, ex), [](const published& p) {
      return wire::verify<wire::ExecExit>(p.payload.data(), p.payload.size()) != nullptr;
    });
    EXPECT_TRUE(got.has_value());
    if (!got) return {wire::Outcome::internal, -1};
    const auto* x = wire::verify<wire::ExecExit>(got->payload.data(), got->payload.size());
    return {x->status()->outcome(), x->status()->exit_code()};
  }

  uint64_t max_output_bytes_ = 64ULL * 1024 * 1024;
};

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

TEST_F(ActorsTest, CapacityLeavesTheQueueGroupAndComesBack) {
  ASSERT_TRUE(router_.wait_accepting(true));
  std::vector<std::string> ids = {create_ok(), create_ok(), create_ok()};
  EXPECT_TRUE(router_.wait_accepting(false));
  auto r = call(wire::subjects::create(tenant, "default"), make_create());
  EXPECT_EQ(error_code(r), wire::ErrorCode::resource_exhausted);
  call(wire::subjects::sandbox_op(tenant, ids[0], "terminate"), {});
  EXPECT_TRUE(router_.wait_accepting(true));
}

TEST_F(ActorsTest, ListFiltersByTenantNameTagsAndState) {
  call(wire::subjects::create(tenant, "default"), make_create("a", 0, {{"run", "1"}}));
  call(wire::subjects::create(tenant, "default"), make_create("b", 0, {{"run", "2"}}));
  call(wire::subjects::create("other", "default"), make_create("c"));
  auto list = [&](bytes filter) {
    auto r = call(wire::subjects::list(tenant), std::move(filter));
    const auto* l = wire::verify<wire::SandboxList>(r.payload.data(), r.payload.size());
    std::vector<std::string> names;
    if (l && l->sandboxes())
      for (const auto* s : *l->sandboxes()) names.emplace_back(wire::str(s->name()));
    std::sort(names.begin(), names.end());  // the fake clock gives them one creation time
    return names;
  };
  EXPECT_EQ(list({}), (std::vector<std::string>{"a", "b"}));
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::KeyValue>> kvs = {
      wire::CreateKeyValue(fbb, fbb.CreateString("run"), fbb.CreateString("2"))};
  auto tags = fbb.CreateVectorOfSortedTables(&kvs);
  fbb.Finish(wire::CreateListSandboxes(fbb, 0, tags, false), wire::ListSandboxesIdentifier());
  EXPECT_EQ(list(wire::release(fbb)), (std::vector<std::string>{"b"}));
}

TEST_F(ActorsTest, NamesAreUniqueAmongLiveSandboxesOfATenant) {
  create_ok("same");
  auto r = call(wire::subjects::create(tenant, "default"), make_create("same"));
  EXPECT_EQ(error_code(r), wire::ErrorCode::already_exists);
  // Another tenant may use it.
  auto other = call(wire::subjects::create("t2", "default"), make_create("same"));
  EXPECT_NE(wire::verify<wire::SandboxReply>(other.payload.data(), other.payload.size()), nullptr);
}

TEST_F(ActorsTest, BadInputGetsClearErrorsAndNothingHalfCreated) {
  const auto create = wire::subjects::create(tenant, "default");
  EXPECT_EQ(error_code(call(create, {1, 2, 3})), wire::ErrorCode::malformed);
  EXPECT_EQ(error_code(call(create, make_exec({"echo"}))), wire::ErrorCode::malformed);
  EXPECT_EQ(error_code(call(create, make_create("bad name!"))), wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(create, make_create({}, -5))), wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(create, make_create({}, 48LL * 3600 * 1000))),
            wire::ErrorCode::invalid_argument);
  auto all = store_->list_sandboxes();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->records.empty());

  const auto id = create_ok();
  const auto exec = wire::subjects::sandbox_op(tenant, id, "exec");
  EXPECT_EQ(error_code(call(exec, {0xff, 0, 0, 0, 'C', 'R', 'E', 'X'})), wire::ErrorCode::malformed);
  EXPECT_EQ(error_code(call(exec, make_exec({}))), wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(exec, make_exec({""}))), wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(exec, make_exec({"echo", std::string(70 * 1024, 'x')}))),
            wire::ErrorCode::too_large);
  EXPECT_EQ(error_code(call(exec, make_exec({"echo"}, "bad id!"))), wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(wire::subjects::sandbox_op(tenant, id, "nonsense"), {})),
            wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(wire::subjects::sandbox_op(tenant, id, "stdin"), {9, 9})),
            wire::ErrorCode::malformed);
  // Still healthy afterwards.
  call(exec, make_exec({"echo", "ok"}, "ex-ok"));
  EXPECT_EQ(wait_exit(id, "ex-ok"), std::make_pair(wire::Outcome::exited, 0));
}

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

bytes make_wait(int64_t timeout_ms, bool until_ready = false) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(wire::CreateSandboxQuery(fbb, timeout_ms, until_ready), wire::SandboxQueryIdentifier());
  return wire::release(fbb);
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

TEST_F(ActorsTest, ReadinessProbeGatesWaitUntilReady) {
  // A probe that passes: wait --ready returns with ready set.
  auto ok = call(wire::subjects::create(tenant, "default"),
                 make_create({}, 0, {}, {}, 0, {"echo", "ready"}));
  const auto* rep = wire::verify<wire::SandboxReply>(ok.payload.data(), ok.payload.size());
  ASSERT_NE(rep, nullptr) << error_text(ok);
  const std::string id(wire::str(rep->sandbox()->id()));
  auto w = call(wire::subjects::sandbox_op(tenant, id, "wait"), make_wait(10'000, true));
  const auto* ready = wire::verify<wire::SandboxReply>(w.payload.data(), w.payload.size());
  ASSERT_NE(ready, nullptr) << error_text(w);
  EXPECT_TRUE(ready->sandbox()->ready());
  EXPECT_EQ(ready->sandbox()->state(), wire::SandboxState::running);
  // A probe that keeps failing: never ready, so wait --ready runs into its deadline.
  auto bad = call(wire::subjects::create(tenant, "default"),
                  make_create({}, 0, {}, {}, 0, {"fail", "1"}));
  const auto* brep = wire::verify<wire::SandboxReply>(bad.payload.data(), bad.payload.size());
  ASSERT_NE(brep, nullptr) << error_text(bad);
  EXPECT_FALSE(brep->sandbox()->ready());
  const std::string bid(wire::str(brep->sandbox()->id()));
  auto bw = call(wire::subjects::sandbox_op(tenant, bid, "wait"), make_wait(300, true));
  EXPECT_EQ(error_code(bw), wire::ErrorCode::deadline_exceeded);
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

TEST_F(ActorsTest, OrphanCleanupNeverTakesASandboxCreatedAfterRecovery) {
  close_node();
  rt_.add_host_sandbox("sb-orphanYYYYYYYYYYYYYYYYYY");
  rt_.hold_listing();  // the host is listed only after a new sandbox exists
  open_node();
  const auto id = create_ok();
  rt_.release_listing();
  // The orphan's end proves the listing was judged; the new sandbox must have survived it.
  EXPECT_TRUE(rt_.wait_destroyed("sb-orphanYYYYYYYYYYYYYYYYYY"));
  EXPECT_EQ(rt_.destroyed().count(id), 0u);
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"echo", "alive"}, "ex-alive"));
  EXPECT_EQ(wait_exit(id, "ex-alive"), std::make_pair(wire::Outcome::exited, 0));
}

TEST_F(ActorsTest, HeartbeatsAdvertiseCapacityAndTags) {
  create_ok();
  caf::anon_send(node_, tick_atom::value);
  auto hb = out_.wait_for(wire::subjects::heartbeat("node-a"), [](const published& p) {
    const auto* h = wire::verify<wire::Heartbeat>(p.payload.data(), p.payload.size());
    return h != nullptr && h->running() == 1;
  });
  ASSERT_TRUE(hb);
  const auto* h = wire::verify<wire::Heartbeat>(hb->payload.data(), hb->payload.size());
  EXPECT_EQ(h->capacity(), 3u);
  EXPECT_EQ(wire::pairs_of(h->tags()), (wire::string_pairs{{"gpu", "H100"}}));
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


// -- the warm pool ---------------------------------------------------------------------------

bytes make_sized_create(uint32_t cpu_millis, uint32_t memory_mib, const std::string& name = {}) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateString(name);
  wire::CreateSandboxBuilder b(fbb);
  b.add_name(n);
  b.add_cpu_millis(cpu_millis);
  b.add_memory_mib(memory_mib);
  fbb.Finish(b.Finish(), wire::CreateSandboxIdentifier());
  return wire::release(fbb);
}

class WarmPoolTest : public testing::node_fixture {
 protected:
  void configure(node_config& c) override {
    c.max_sandboxes = max_sandboxes_;
    c.warm_pool = 2;
    c.exec_kill_grace_ms = 500;
  }

  // Waits for a heartbeat, among those published after the first `skip`, whose pool holds
  // `ready` booted sandboxes (the node publishes one each time its pool settles).
  bool wait_pool(uint32_t ready, std::size_t skip = 0) {
    return out_
        .wait_for(
            wire::subjects::heartbeat("node-a"),
            [&](const published& p) {
              const auto* h = wire::verify<wire::Heartbeat>(p.payload.data(), p.payload.size());
              return h != nullptr && h->warm() == ready;
            },
            std::chrono::seconds(10), skip)
        .has_value();
  }
  std::size_t heartbeats() { return out_.count(wire::subjects::heartbeat("node-a")); }

  node_stats stats() {
    node_stats out;
    caf::scoped_actor self{*sys_};
    self->request(node_, std::chrono::seconds(10), stats_atom::value)
        .receive([&](const node_stats& s) { out = s; }, [](caf::error&) { ADD_FAILURE() << "no stats"; });
    return out;
  }

  std::set<std::string> started_ids() {
    std::set<std::string> ids;
    for (const auto& spec : rt_.starts()) ids.insert(spec.id);
    return ids;
  }

  // A create that must succeed; returns its reply.
  const wire::SandboxInfo* created(const published& r) {
    const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
    EXPECT_NE(rep, nullptr) << error_text(r);
    return rep == nullptr ? nullptr : rep->sandbox();
  }
  std::string create_ok(bytes request = make_create()) {
    auto r = call(wire::subjects::create(tenant, "default"), std::move(request));
    const auto* info = created(r);
    if (info == nullptr) return {};
    EXPECT_EQ(info->state(), wire::SandboxState::running);
    return std::string(wire::str(info->id()));
  }

  std::pair<wire::Outcome, int> run(const std::string& sb, const std::vector<std::string>& argv,
                                    const std::string& ex) {
    auto r = call(wire::subjects::sandbox_op(tenant, sb, "exec"), make_exec(argv, ex));
    EXPECT_NE(wire::verify<wire::ExecReply>(r.payload.data(), r.payload.size()), nullptr) << error_text(r);
    auto got = out_.wait_for(wire::subjects::output(tenant, sb, ex), [](const published& p) {
      return wire::verify<wire::ExecExit>(p.payload.data(), p.payload.size()) != nullptr;
    });
    if (!got) return {wire::Outcome::internal, -1};
    const auto* x = wire::verify<wire::ExecExit>(got->payload.data(), got->payload.size());
    return {x->status()->outcome(), x->status()->exit_code()};
  }

  uint32_t max_sandboxes_ = 3;
};

TEST_F(WarmPoolTest, BootsTheDefaultShapeAtStartUnstoredUnlistedUnrouted) {
  ASSERT_TRUE(wait_pool(2));
  const auto specs = rt_.starts();
  ASSERT_EQ(specs.size(), 2u);
  for (const auto& spec : specs) {
    EXPECT_TRUE(spec.image.empty() || spec.image == "host") << spec.image;
    EXPECT_EQ(spec.cpu_millis, 1000u);  // the node's defaults
    EXPECT_EQ(spec.memory_mib, 1024u);
    EXPECT_FALSE(router_.route(spec.id)) << "an unclaimed warm sandbox must be reachable by nobody";
  }
  auto stored = store_->list_sandboxes();
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->records.empty()) << "unclaimed warm sandboxes have no record";
  auto list = call(wire::subjects::list(tenant), {});
  const auto* l = wire::verify<wire::SandboxList>(list.payload.data(), list.payload.size());
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->sandboxes()->size(), 0u);
  const auto s = stats();
  EXPECT_EQ(s.warm, 2u);
  EXPECT_EQ(s.warm_ready, 2u);
  EXPECT_EQ(s.holding, 2u);  // they count in capacity
  EXPECT_EQ(s.running, 0u);  // but are not running
  EXPECT_TRUE(s.accepting);
}

// A node whose capacity is a single sandbox, with a pool of 2.
class WarmPoolOfOneTest : public WarmPoolTest {
 protected:
  WarmPoolOfOneTest() { max_sandboxes_ = 1; }
};

// ... whose runtime holds every start: its warm sandbox stays booting until release_starts().
class BootingWarmPoolTest : public WarmPoolOfOneTest {
 protected:
  void SetUp() override {
    rt_.hold_starts();
    WarmPoolOfOneTest::SetUp();
  }
  void TearDown() override {
    rt_.release_starts();
    WarmPoolOfOneTest::TearDown();
  }
};

// A pool whose first boot fails.
class FailingWarmBootTest : public WarmPoolTest {
 protected:
  void SetUp() override {
    rt_.fail_next_start("runsc exploded");
    WarmPoolTest::SetUp();
  }
};

TEST_F(WarmPoolOfOneTest, ThePoolNeverGrowsPastCapacity) {
  ASSERT_TRUE(wait_pool(1));
  EXPECT_EQ(rt_.starts().size(), 1u);
  const auto s = stats();
  EXPECT_EQ(s.warm, 1u);
  EXPECT_EQ(s.holding, 1u);
  // Full, but the create can be served from the pool: still in the queue group.
  EXPECT_TRUE(s.accepting);
}

TEST_F(WarmPoolTest, PoolableCreateIsServedWarmStoredFirstAndThePoolRefills) {
  ASSERT_TRUE(wait_pool(2));
  const auto warm = started_ids();
  const auto before = heartbeats();
  const auto id = create_ok(make_create("warm-one", 100, {{"k", "v"}}));
  EXPECT_EQ(warm.count(id), 1u) << "served cold: " << id;
  // The record was stored (running, with the tenant's options) before the create was answered.
  auto rec = store_->get_sandbox(id);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->state, wire::SandboxState::running);
  EXPECT_EQ(rec->tenant, tenant);
  EXPECT_EQ(rec->name, "warm-one");
  EXPECT_EQ(rec->timeout_ms, 100);
  EXPECT_EQ(rec->tags, (storage::string_pairs{{"k", "v"}}));
  EXPECT_EQ(rec->created_at_ms, clk_.now_ms());  // its lifetime counts from the hand-out
  EXPECT_TRUE(router_.route(id));
  EXPECT_EQ(run(id, {"echo", "hi"}, "ex-1"), std::make_pair(wire::Outcome::exited, 0));
  EXPECT_TRUE(rt_.limits_calls().empty()) << "default limits need no update";
  // The pool refills in the background.
  ASSERT_TRUE(rt_.wait_starts(3));
  ASSERT_TRUE(wait_pool(2, before));
  auto list = call(wire::subjects::list(tenant), {});
  const auto* l = wire::verify<wire::SandboxList>(list.payload.data(), list.payload.size());
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->sandboxes()->size(), 1u);
  EXPECT_EQ(wire::str(l->sandboxes()->Get(0)->id()), id);
  // The lifetime timer started at the hand-out.
  clk_.advance(200);
  auto w = call(wire::subjects::sandbox_op(tenant, id, "wait"), [] {
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(wire::CreateSandboxQuery(fbb, 100'000), wire::SandboxQueryIdentifier());
    return wire::release(fbb);
  }());
  const auto* ended = wire::verify<wire::SandboxReply>(w.payload.data(), w.payload.size());
  ASSERT_NE(ended, nullptr) << error_text(w);
  EXPECT_EQ(ended->sandbox()->state(), wire::SandboxState::timed_out);
}

// A node whose warm sandboxes pre-start a command (as the executor's job runner has them start
// its guest runner): fake init's "cat".
class WarmPrestartTest : public WarmPoolTest {
 protected:
  void configure(node_config& c) override {
    WarmPoolTest::configure(c);
    c.warm_prestart = {"cat"};
  }

  void write_stdin(const std::string& id, const std::string& ex, const std::string& text) {
    flatbuffers::FlatBufferBuilder fbb;
    auto eid = fbb.CreateString(ex);
    auto data = fbb.CreateVector(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    fbb.Finish(wire::CreateStdinWrite(fbb, eid, data, true), wire::StdinWriteIdentifier());
    auto r = call(wire::subjects::sandbox_op(tenant, id, "stdin"), wire::release(fbb));
    EXPECT_NE(wire::verify<wire::Ack>(r.payload.data(), r.payload.size()), nullptr) << error_text(r);
  }
};

TEST_F(WarmPrestartTest, WarmSandboxesBootInTheBackgroundAndHoldTheCommand) {
  ASSERT_TRUE(wait_pool(2));
  for (const auto& spec : rt_.starts()) {
    EXPECT_TRUE(spec.background) << spec.id;
    const auto log = rt_.init_log(spec.id);
    ASSERT_EQ(log.size(), 1u) << spec.id;
    EXPECT_EQ(log[0].rfind("hold ", 0), 0u) << log[0];
    EXPECT_NE(log[0].find(" cat"), std::string::npos) << log[0];
  }
  // A create that cannot be served from the pool boots cold, in the foreground, holding nothing.
  const auto cold = create_ok(make_create("cold", 0, {}, {"hang"}));
  int seen = 0;
  for (const auto& spec : rt_.starts()) {
    if (spec.id != cold) continue;
    ++seen;
    EXPECT_FALSE(spec.background);
  }
  EXPECT_EQ(seen, 1);
  EXPECT_TRUE(rt_.init_log(cold).empty());
}

TEST_F(WarmPrestartTest, AJobRunnerCreateAdoptsTheHeldCommandWithItsFirstExec) {
  ASSERT_TRUE(wait_pool(2));
  const auto warm = started_ids();
  const auto id = create_ok(make_create("lease", 0, {{"corral.job-runner", "fresh"}}));
  ASSERT_EQ(warm.count(id), 1u);
  ASSERT_EQ(rt_.init_log(id).size(), 1u);  // still held, nothing else
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"cat"}, "ex-runner", 0, true));
  const auto log = rt_.init_log(id);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].rfind("adopt ", 0), 0u) << log[1];
  EXPECT_EQ(rt_.spawn_count(id), 2u);  // the held one and its adoption: nothing else started
  write_stdin(id, "ex-runner", "job");  // with EOF: the adopted "cat" echoes it and exits
  auto exited = out_.wait_for(wire::subjects::output(tenant, id, "ex-runner"), [](const published& p) {
    return wire::verify<wire::ExecExit>(p.payload.data(), p.payload.size()) != nullptr;
  });
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(run(id, {"echo", "after"}, "ex-2"), std::make_pair(wire::Outcome::exited, 0));
  auto frames = out_.on(wire::subjects::output(tenant, id, "ex-runner"));
  ASSERT_FALSE(frames.empty());
  const auto* c = wire::verify<wire::OutputChunk>(frames.at(0).payload.data(), frames.at(0).payload.size());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(std::string(c->data()->begin(), c->data()->end()), "job");
  EXPECT_EQ(rt_.init_log(id).size(), 2u) << "a later exec never adopts";
}

TEST_F(WarmPrestartTest, AnyOtherCreateHasTheHeldCommandKilledBeforeItRuns) {
  ASSERT_TRUE(wait_pool(2));
  const auto id = create_ok(make_create("plain"));
  const auto log = rt_.init_log(id);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].rfind("discard ", 0), 0u) << log[1];
  // Its first exec, even the very same command, starts a process of its own.
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"cat"}, "ex-own", 0, true));
  write_stdin(id, "ex-own", "");
  auto exited = out_.wait_for(wire::subjects::output(tenant, id, "ex-own"), [](const published& p) {
    return wire::verify<wire::ExecExit>(p.payload.data(), p.payload.size()) != nullptr;
  });
  EXPECT_TRUE(exited.has_value());
  EXPECT_EQ(rt_.init_log(id).size(), 2u);
}

// A node whose pool lends its sandboxes to fresh leases (as the executor's job runner has it).
class WarmLoanTest : public WarmPoolTest {
 protected:
  WarmLoanTest() { max_sandboxes_ = 6; }
  void configure(node_config& c) override {
    WarmPoolTest::configure(c);
    c.warm_loan_tag = {"corral.job-runner", "fresh"};
  }
  std::string lease(const std::string& name) {
    return create_ok(make_create(name, 0, {{"corral.job-runner", "fresh"}}));
  }
};

TEST_F(WarmLoanTest, ALeasesWarmSandboxIsReplacedWhenTheLeaseEnds) {
  ASSERT_TRUE(wait_pool(2));
  const auto warm = started_ids();
  const auto a = lease("lease-a");
  EXPECT_EQ(warm.count(a), 1u) << "served cold: " << a;
  // On loan: the pool does not boot a replacement (an ordinary claim refills at once).
  EXPECT_EQ(stats().warm, 1u);
  const auto b = lease("lease-b");
  EXPECT_EQ(warm.count(b), 1u) << "served cold: " << b;
  auto s = stats();
  EXPECT_EQ(s.warm, 0u);
  EXPECT_EQ(s.holding, 2u);
  // A third lease finds the pool empty and boots cold: that is no loan.
  const auto c = lease("lease-c");
  EXPECT_EQ(warm.count(c), 0u);
  EXPECT_EQ(stats().warm, 0u);
  // The lease ends: its replacement boots; the other stays on loan.
  const auto before = heartbeats();
  call(wire::subjects::sandbox_op(tenant, a, "terminate"), {});
  ASSERT_TRUE(wait_pool(1, before));
  s = stats();
  EXPECT_EQ(s.warm, 1u);
  EXPECT_EQ(rt_.starts().size(), 4u);  // 2 warm, 1 cold, 1 replacement
}

TEST_F(WarmLoanTest, ACreateWithoutTheTagHasEveryLoanReplacedAtOnce) {
  ASSERT_TRUE(wait_pool(2));
  lease("lease-a");
  lease("lease-b");
  ASSERT_EQ(stats().warm, 0u);
  // A strict job's sandbox (or any other create) uses the pool: it boots cold (the pool is
  // empty) and both loans are replaced now.
  const auto before = heartbeats();
  const auto strict = create_ok(make_create("strict", 0, {{"corral.job-runner", "strict"}}));
  ASSERT_FALSE(strict.empty());
  EXPECT_EQ(stats().warm, 2u);
  ASSERT_TRUE(wait_pool(2, before));
  // Later leases borrow again.
  lease("lease-c");
  EXPECT_EQ(stats().warm, 1u);
}

TEST_F(WarmPoolTest, EntrypointOrProbeCreatesBootCold) {
  ASSERT_TRUE(wait_pool(2));
  const auto warm = started_ids();
  auto with_entry = call(wire::subjects::create(tenant, "default"),
                         make_create({}, 0, {}, {"hang"}));
  const auto* a = created(with_entry);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(warm.count(std::string(wire::str(a->id()))), 0u);
  auto with_probe = call(wire::subjects::create(tenant, "default"),
                         make_create({}, 0, {}, {}, 0, {"echo", "ok"}));
  const auto* b = created(with_probe);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(warm.count(std::string(wire::str(b->id()))), 0u);
  // The first took the free room; the second (the node full) waited for the room of a warm
  // sandbox retired for it. The pool refills only as room allows: never past capacity.
  const auto s = stats();
  EXPECT_EQ(s.holding, 3u);
  EXPECT_EQ(s.warm, 1u);
  EXPECT_EQ(rt_.destroyed().size(), 1u);
}

TEST_F(WarmPoolTest, CapacityCountsWarmSandboxesAndAFullNodeServesFromItsPool) {
  ASSERT_TRUE(wait_pool(2));
  const auto before = heartbeats();
  const auto a = create_ok();  // warm; the pool refills to 2 (1 + 2 = 3)
  ASSERT_TRUE(rt_.wait_starts(3));
  ASSERT_TRUE(wait_pool(2, before));
  const auto b = create_ok();  // warm; no room to refill: 2 + 1 warm
  const auto c = create_ok();  // the last warm one
  EXPECT_EQ(started_ids().count(c), 1u);
  EXPECT_EQ(rt_.starts().size(), 3u) << "the pool grew past capacity";
  EXPECT_TRUE(router_.wait_accepting(false));
  auto full = call(wire::subjects::create(tenant, "default"), make_create());
  EXPECT_EQ(error_code(full), wire::ErrorCode::resource_exhausted);
  // The per-node create subject answers alike (and is answered at capacity).
  auto direct = call(wire::subjects::node_create(tenant, "node-a"), make_create());
  EXPECT_EQ(error_code(direct), wire::ErrorCode::resource_exhausted);
  // Room again: the pool refills and the node rejoins the queue group.
  call(wire::subjects::sandbox_op(tenant, a, "terminate"), {});
  ASSERT_TRUE(rt_.wait_destroyed(a));
  EXPECT_TRUE(router_.wait_accepting(true));
  ASSERT_TRUE(rt_.wait_starts(4));
  const auto d = create_ok();
  EXPECT_EQ(rt_.starts().back().id, d);
  (void)b;
}

TEST_F(WarmPoolTest, AFullNodeRetiresAWarmSandboxForAColdCreate) {
  ASSERT_TRUE(wait_pool(2));
  create_ok();
  ASSERT_TRUE(rt_.wait_starts(3));
  create_ok();  // now 2 claimed + 1 warm: full
  const auto warm_left = stats();
  ASSERT_EQ(warm_left.warm, 1u);
  ASSERT_EQ(warm_left.holding, 3u);
  std::string retired;
  for (const auto& id : started_ids())
    if (!router_.route(id)) retired = id;
  ASSERT_FALSE(retired.empty());
  // Not poolable: it waits for the room the warm sandbox leaves once destroyed.
  auto r = call(wire::subjects::create(tenant, "default"), make_create({}, 0, {}, {"hang"}));
  const auto* info = created(r);
  ASSERT_NE(info, nullptr);
  EXPECT_TRUE(rt_.destroyed().count(retired) == 1u);
  EXPECT_NE(std::string(wire::str(info->id())), retired);
  const auto s = stats();
  EXPECT_EQ(s.holding, 3u);
  EXPECT_EQ(s.warm, 0u);
}

TEST_F(BootingWarmPoolTest, APoolableCreateOnAFullNodeWaitsForTheBootingWarmSandbox) {
  ASSERT_TRUE(rt_.wait_starts(1));
  const auto booting = rt_.starts().front().id;
  // Full (the booting warm sandbox) but it can serve a create: accepting.
  EXPECT_TRUE(router_.wait_accepting(true));
  const auto reply = send(wire::subjects::create(tenant, "default"), make_create());
  // (The node handles its mailbox in order: stats answers after it has placed the create.)
  EXPECT_EQ(stats().waiting, 1u);
  EXPECT_TRUE(out_.on(reply).empty()) << "answered before the sandbox booted";
  rt_.release_starts();
  auto got = reply_on(reply);
  ASSERT_TRUE(got.has_value());
  const auto* info = created(*got);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(std::string(wire::str(info->id())), booting);
  EXPECT_EQ(rt_.starts().size(), 1u);
}

TEST_F(WarmPoolTest, LimitsOtherThanTheDefaultsAreAppliedAtHandOut) {
  ASSERT_TRUE(wait_pool(2));
  const auto warm = started_ids();
  const auto before = heartbeats();
  const auto id = create_ok(make_sized_create(500, 256));
  EXPECT_EQ(warm.count(id), 1u);
  const auto calls = rt_.limits_calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].id, id);
  EXPECT_EQ(calls[0].cpu_millis, 500u);
  EXPECT_EQ(calls[0].memory_mib, 256u);
  auto rec = store_->get_sandbox(id);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->cpu_millis, 500u);
  EXPECT_EQ(rec->memory_mib, 256u);
  // When they cannot be applied the create fails, leaves a failed record and no sandbox.
  ASSERT_TRUE(wait_pool(2, before));
  rt_.fail_next_update_limits("memory.limit_in_bytes: Device or resource busy");
  auto r = call(wire::subjects::create(tenant, "default"), make_sized_create(1000, 64));
  EXPECT_EQ(error_code(r), wire::ErrorCode::internal);
  EXPECT_NE(error_text(r).find("limits"), std::string::npos) << error_text(r);
  std::string failed;
  auto all = store_->list_sandboxes();
  ASSERT_TRUE(all.ok());
  for (const auto& x : all->records)
    if (x.state == wire::SandboxState::failed) failed = x.id;
  ASSERT_FALSE(failed.empty());
  EXPECT_TRUE(rt_.wait_destroyed(failed));
}

TEST_F(WarmPoolTest, AWarmSandboxThatDiesIsReplaced) {
  ASSERT_TRUE(wait_pool(2));
  const auto victim = rt_.starts().front().id;
  const auto before = heartbeats();
  rt_.kill(victim);
  ASSERT_TRUE(rt_.wait_destroyed(victim));
  ASSERT_TRUE(rt_.wait_starts(3));
  ASSERT_TRUE(wait_pool(2, before));
  EXPECT_FALSE(store_->get_sandbox(victim).ok()) << "a dead warm sandbox leaves no record";
  const auto id = create_ok();
  EXPECT_NE(id, victim);
}

TEST_F(FailingWarmBootTest, FailedBootsAreRetriedLater) {
  // One of the two boots failed; it is replaced (after the retry delay) and the pool fills.
  ASSERT_TRUE(rt_.wait_starts(3));
  ASSERT_TRUE(wait_pool(2));
  EXPECT_EQ(rt_.live().size(), 2u);
}

TEST_F(WarmPoolTest, DrainDestroysTheWarmSandboxesAndRefusesCreates) {
  ASSERT_TRUE(wait_pool(2));
  const auto before = heartbeats();
  const auto id = create_ok();
  ASSERT_TRUE(rt_.wait_starts(3));
  ASSERT_TRUE(wait_pool(2, before));
  caf::anon_send(node_, drain_atom::value);
  for (const auto& w : started_ids())
    if (w != id) {
      EXPECT_TRUE(rt_.wait_destroyed(w)) << w;
    }
  EXPECT_EQ(rt_.destroyed().count(id), 0u) << "drain keeps tenants' sandboxes";
  auto r = call(wire::subjects::create(tenant, "default"), make_create());
  EXPECT_EQ(error_code(r), wire::ErrorCode::unavailable);
  const auto s = stats();
  EXPECT_EQ(s.warm, 0u);
  EXPECT_FALSE(s.accepting);
  EXPECT_EQ(rt_.starts().size(), 3u);
}

TEST_F(WarmPoolTest, RestartLeavesNoUnclaimedWarmSandboxAndAdoptsClaimedOnes) {
  ASSERT_TRUE(wait_pool(2));
  const auto refilled = heartbeats();
  const auto claimed = create_ok();
  ASSERT_TRUE(rt_.wait_starts(3));
  ASSERT_TRUE(wait_pool(2, refilled));
  const auto before = started_ids();
  // An exec in flight: after the restart it ends executor_lost once the sandbox is re-adopted.
  ASSERT_EQ(call(wire::subjects::sandbox_op(tenant, claimed, "exec"), make_exec({"hang"}, "ex-h"))
                .subject.empty(),
            false);
  // An unclaimed warm sandbox of a process killed with -9 (no actor destroyed it): on the host,
  // no record.
  rt_.add_host_sandbox("sb-warmleftXXXXXXXXXXXXXXXX");
  close_node();
  rt_.add_host_sandbox(claimed);  // still running on the host
  const auto restarted = heartbeats();
  open_node();
  EXPECT_TRUE(rt_.wait_destroyed("sb-warmleftXXXXXXXXXXXXXXXX"));
  for (const auto& id : before)
    if (id != claimed) {
      EXPECT_TRUE(rt_.wait_destroyed(id)) << id;
    }
  EXPECT_EQ(rt_.destroyed().count(claimed), 0u);
  ASSERT_TRUE(out_.wait_for(wire::subjects::output(tenant, claimed, "ex-h"), [](const published& p) {
    const auto* x = wire::verify<wire::ExecExit>(p.payload.data(), p.payload.size());
    return x != nullptr && x->status()->outcome() == wire::Outcome::executor_lost;
  }));
  EXPECT_EQ(run(claimed, {"echo", "adopted"}, "ex-a"), std::make_pair(wire::Outcome::exited, 0));
  ASSERT_TRUE(rt_.wait_starts(5));  // a new pool
  ASSERT_TRUE(wait_pool(2, restarted));
  auto all = store_->list_sandboxes();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->records.size(), 1u);
  EXPECT_EQ(all->records[0].id, claimed);
}

TEST_F(WarmPoolTest, NodeCreateSubjectIsServedLikeThePool) {
  ASSERT_TRUE(wait_pool(2));
  const auto warm = started_ids();
  auto r = call(wire::subjects::node_create(tenant, "node-a"), make_create("direct"));
  const auto* info = created(r);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(warm.count(std::string(wire::str(info->id()))), 1u);
  EXPECT_EQ(wire::str(info->tenant()), tenant);
  // Same validation.
  EXPECT_EQ(error_code(call(wire::subjects::node_create(tenant, "node-a"), make_create("bad name!"))),
            wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(wire::subjects::node_create(tenant, "node-a"), make_create("direct"))),
            wire::ErrorCode::already_exists);
}

TEST_F(WarmPoolTest, TwoClaimsAreTwoDistinctSandboxes) {
  ASSERT_TRUE(wait_pool(2));
  const auto a = create_ok();
  const auto b = create_ok();
  EXPECT_NE(a, b);
  // Both from the pool: 2 boots ahead, 1 refill (then the node is full), no cold boot.
  EXPECT_EQ(rt_.starts().size(), 3u);
  EXPECT_EQ(run(a, {"echo", "a"}, "ex-a"), std::make_pair(wire::Outcome::exited, 0));
  EXPECT_EQ(run(b, {"echo", "b"}, "ex-b"), std::make_pair(wire::Outcome::exited, 0));
}

}  // namespace
}  // namespace corral
