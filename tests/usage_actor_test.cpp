// The usage meter actor (actors/usage.hpp) with an injected clock, a runtime whose cgroup usage
// the test sets, a recording outbox and a real store in a temp dir: billing on max(request,
// actual), tenant isolation of the reply, persistence across a restart, and the end of billing.
#include "actors/usage.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "executor/request_decode.hpp"
#include "schemas/subjects.hpp"
#include "tests/fakes/fake_ports.hpp"

namespace corral {
namespace {

namespace fs = std::filesystem;
using testing::fake_clock;
using testing::fake_outbox;
using testing::fake_router;

// A runtime that only reports usage, as the test sets it.
class metered_runtime final : public runtime {
 public:
  started start(const sandbox_spec&, std::shared_ptr<init_listener>) override {
    return {nullptr, "not supported"};
  }
  started adopt(const std::string&, std::shared_ptr<init_listener>) override {
    return {nullptr, "not supported"};
  }
  void destroy(const std::string&) override {}
  std::vector<std::string> list_host_sandboxes() override { return {}; }
  sandbox_usage usage(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    return usage_[id];
  }
  void set(const std::string& id, uint64_t cpu_ns, uint64_t memory_bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    usage_[id] = sandbox_usage{cpu_ns, memory_bytes, false};
  }

 private:
  std::mutex mu_;
  std::map<std::string, sandbox_usage> usage_;
};

constexpr double core_price = 0.00003942;
constexpr double gib_price = 0.00000672;

class UsageMeterTest : public ::testing::Test {
 protected:
  // A corral.v1.t1.usage request as the executor's bridge delivers it (or refuses it).
  void ask_usage(const usage_actor& meter, const std::string& reply, bytes payload) {
    auto d = bridge::decode_usage(wire::subjects::usage("t1"), std::move(payload),
                                  reply_handle(reply));
    if (d) (*self_)->send(meter, std::move(*d.verb));
    else out_.publish(reply, d.refused.reply());
  }

  void SetUp() override {
    char tmpl[] = "/tmp/corral-usage-actor-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto opened = storage::store::open(dir_ + "/db", storage::store_options{});
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(*opened);
    node_context ctx;
    ctx.config.node_id = "node-a";
    ctx.config.usage_sample_interval_ms = 60'000;  // the test samples explicitly
    ASSERT_EQ(ctx.config.validate(), "");
    ctx.store = store_.get();
    ctx.out = &out_;
    ctx.clk = &clk_;
    ctx.rt = &rt_;
    ctx.router = &router_;
    ctx_ = std::make_shared<const node_context>(ctx);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    self_ = std::make_unique<caf::scoped_actor>(*sys_);
  }

  void TearDown() override {
    self_.reset();  // its linked meters end with it
    sys_->await_all_actors_done();
    sys_.reset();
    (void)store_->close();
    fs::remove_all(dir_);
  }

  usage_actor spawn_meter() { return spawn_usage_meter(self_->ptr(), ctx_); }

  uint32_t sample(const usage_actor& meter) {
    uint32_t n = 0;
    (*self_)->request(meter, std::chrono::seconds(10), sample_atom::value)
        .receive([&](uint32_t got) { n = got; }, [](caf::error&) { FAIL() << "sample failed"; });
    return n;
  }

  storage::usage_record billed(const usage_actor& meter, const std::string& id) {
    storage::usage_record r;
    (*self_)->request(meter, std::chrono::seconds(10), usage_atom::value, id)
        .receive([&](storage::usage_record& got) { r = std::move(got); },
                 [](caf::error&) { FAIL() << "usage failed"; });
    return r;
  }

  void summary(const usage_actor& meter, const std::string& id, const std::string& tenant,
               wire::SandboxState state, int64_t started, int64_t ended = 0) {
    sandbox_summary s;
    s.rec.id = id;
    s.rec.tenant = tenant;
    s.rec.state = state;
    s.rec.started_at_ms = started;
    s.rec.ended_at_ms = ended;
    s.holds_resources = true;
    (*self_)->send(meter, summary_atom::value, std::move(s));
  }

  std::string dir_;
  std::unique_ptr<storage::store> store_;
  fake_outbox out_;
  fake_clock clk_;
  metered_runtime rt_;
  fake_router router_;
  context_ptr ctx_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<caf::scoped_actor> self_;
};

TEST_F(UsageMeterTest, BillsMaxOfRequestAndActualAndAnswersPerTenant) {
  auto meter = spawn_meter();
  const int64_t t0 = clk_.now_ms();
  summary(meter, "sb-busy", "t1", wire::SandboxState::running, t0);
  summary(meter, "sb-idle", "t1", wire::SandboxState::running, t0);
  summary(meter, "sb-other", "t2", wire::SandboxState::running, t0);
  // 10 s: sb-busy used 5 core-seconds and holds 512 MiB; the others nothing.
  clk_.advance(10'000);
  rt_.set("sb-busy", 5'000'000'000ULL, 512ULL << 20);
  EXPECT_EQ(sample(meter), 3u);
  const auto busy = billed(meter, "sb-busy");
  EXPECT_DOUBLE_EQ(busy.cpu_core_seconds, 5.0);  // actual > 0.125 core x 10 s
  EXPECT_DOUBLE_EQ(busy.gib_seconds, 5.0);       // 0.5 GiB x 10 s > 128 MiB request
  EXPECT_NEAR(busy.cost, 5.0 * core_price + 5.0 * gib_price, 1e-12);
  const auto idle = billed(meter, "sb-idle");
  EXPECT_DOUBLE_EQ(idle.cpu_core_seconds, 1.25);  // the 0.125 core minimum
  EXPECT_DOUBLE_EQ(idle.gib_seconds, 1.25);       // the 128 MiB request
  // Durable once sampled.
  auto stored = store_->get_usage("sb-busy");
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(*stored == busy);

  // corral.v1.t1.usage: t1's sandboxes only, and their total.
  ask_usage(meter, "reply-1", {});
  auto msg = out_.wait_for("reply-1", [](const auto&) { return true; });
  ASSERT_TRUE(msg.has_value());
  const auto* reply = wire::verify<wire::UsageReply>(msg->payload.data(), msg->payload.size());
  ASSERT_NE(reply, nullptr);
  ASSERT_NE(reply->sandboxes(), nullptr);
  ASSERT_EQ(reply->sandboxes()->size(), 2u);
  for (const auto* s : *reply->sandboxes()) EXPECT_NE(wire::str(s->sandbox_id()), "sb-other");
  EXPECT_DOUBLE_EQ(reply->total()->cpu_core_seconds(), 6.25);
  EXPECT_DOUBLE_EQ(reply->total()->gib_seconds(), 6.25);
  // A malformed request gets an error, never a crash.
  ask_usage(meter, "reply-2", {1, 2, 3});
  auto bad = out_.wait_for("reply-2", [](const auto&) { return true; });
  ASSERT_TRUE(bad.has_value());
  EXPECT_NE(wire::verify<wire::ErrorReply>(bad->payload.data(), bad->payload.size()), nullptr);
}

TEST_F(UsageMeterTest, ResumesFromTheStoreAfterARestartAndStopsAtTheEnd) {
  const int64_t t0 = clk_.now_ms();
  {
    auto meter = spawn_meter();
    summary(meter, "sb-a", "t1", wire::SandboxState::running, t0);
    clk_.advance(4'000);
    rt_.set("sb-a", 2'000'000'000ULL, 0);
    EXPECT_EQ(sample(meter), 1u);
    (*self_)->send_exit(meter, caf::exit_reason::kill);  // no goodbye: like kill -9
  }
  // The executor was down 6 s while the sandbox ran on; a new meter picks up from the store.
  clk_.advance(6'000);
  rt_.set("sb-a", 2'600'000'000ULL, 0);
  auto meter = spawn_meter();
  EXPECT_DOUBLE_EQ(billed(meter, "sb-a").cpu_core_seconds, 2.0);
  summary(meter, "sb-a", "t1", wire::SandboxState::running, t0);  // the node's recovery
  EXPECT_EQ(sample(meter), 1u);
  auto a = billed(meter, "sb-a");
  EXPECT_DOUBLE_EQ(a.cpu_core_seconds, 2.0 + 0.75);   // max(0.125 x 6 s, 0.6 s used)
  EXPECT_DOUBLE_EQ(a.gib_seconds, 0.125 * 10);        // the request, from start to now
  // It ends 1 s later: a last sample up to the end, then no more billing.
  rt_.set("sb-a", 3'600'000'000ULL, 0);
  summary(meter, "sb-a", "t1", wire::SandboxState::exited, t0, clk_.now_ms() + 1'000);
  clk_.advance(5'000);
  EXPECT_EQ(sample(meter), 0u);
  a = billed(meter, "sb-a");
  EXPECT_DOUBLE_EQ(a.cpu_core_seconds, 2.75 + 1.0);
  EXPECT_DOUBLE_EQ(a.gib_seconds, 0.125 * 11);
}

}  // namespace
}  // namespace corral
