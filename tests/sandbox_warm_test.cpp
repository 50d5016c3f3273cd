// The warm pool: the node's pool of booted sandboxes and the sandbox actor's claim, pre-started
// command, loans, retirement.
// Against fakes of the runtime, outbox, router and clock, and a real store in a temp dir; every
// wait is on an event with a deadline.
#include "tests/actors_fixture.hpp"

namespace corral {
namespace {

using namespace actors_testing;

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
