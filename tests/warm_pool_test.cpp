// The warm pool and the per-node create subject against the real path: a real nats-server, a
// real corral-executor with --warm-pool 2 (CAF actors, RocksDB), runsc sandboxes, the corral CLI.
// A create is handed a sandbox booted ahead of time (its id is one the host already ran before
// the create) and that sandbox works; warm sandboxes wait at the lowest cpu weight and a plain
// create sees none of the job runner they pre-start; two claimed sandboxes are isolated; limits
// asked at create are in the cgroups; an executor killed with -9 leaves no unclaimed warm sandbox on the host
// once restarted; corral.v1.{t}.node.{node}.create is answered and respects capacity.
//
// "The pool is full again" is observed on the node's heartbeats: each carries the number of
// booted warm sandboxes, and the node publishes one as soon as its pool has refilled.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "bus/connection.hpp"
#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/heartbeat_watch.hpp"

namespace corral {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::background_process;
using test::bin;
using test::deployment;
using test::heartbeat_watch;
using test::trim;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Ids of the runsc containers of a deployment (running or not).
std::set<std::string> host_sandboxes(deployment& d) {
  auto r = test::run({bin("corral-runsc"), "--root", d.runsc_root(), "list", "-quiet"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> ids;
  std::istringstream in(r.out);
  for (std::string id; in >> id;)
    if (wire::valid_id(id, "sb-")) ids.insert(id);
  return ids;
}

// The sandbox's cgroup directories that exist (one per cgroup v1 controller).
std::vector<std::string> cgroup_dirs(const std::string& id) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& ctrl : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    const auto dir = ctrl.path() / "corral" / id;
    if (fs::exists(dir, ec)) out.push_back(dir.string());
  }
  return out;
}

std::vector<std::string> mounts_under(const std::string& prefix) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string w;
    for (int i = 0; i < 5 && words >> w; ++i) {
    }
    if (w.rfind(prefix, 0) == 0) out.push_back(w);
  }
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

std::vector<uint8_t> make_create(const std::string& name = {}) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateString(name);
  wire::CreateSandboxBuilder b(fbb);
  b.add_name(n);
  fbb.Finish(b.Finish(), wire::CreateSandboxIdentifier());
  return wire::release(fbb);
}

deployment::options warm_options() {
  deployment::options o;
  o.node = "warm-node";
  o.tenant = "warm";
  o.executor_args = {"--warm-pool", "2", "--max-sandboxes", "6", "--heartbeat-ms", "500"};
  return o;
}

class WarmPool : public test::deployment_test<warm_options> {
 protected:
  void SetUp() override {
    test::deployment_test<warm_options>::SetUp();
    std::string why;
    ASSERT_TRUE(hb_.start(d_->nats().url(), "warm-node", &why)) << why;
  }
  // Waits until the pool holds 2 booted sandboxes again (as of now) and returns their ids: what
  // runs on the host minus the tenants' sandboxes.
  // A sandbox an earlier test removed may still be on its way out (teardown is off the request
  // path): each next heartbeat is a new look, until the deadline.
  std::set<std::string> full_pool() {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::set<std::string> ids;
    do {
      EXPECT_TRUE(hb_.wait_warm(2, now_ms())) << "the pool did not refill";
      ids = host_sandboxes(*d_);
      for (const auto& id : claimed_) ids.erase(id);
    } while (ids.size() > 2 && std::chrono::steady_clock::now() < deadline);
    return ids;
  }
  std::string create_warm(const std::vector<std::string>& extra = {}) {
    const auto warm = full_pool();
    EXPECT_EQ(warm.size(), 2u);
    const auto id = d_->create(extra);
    claimed_.insert(id);
    EXPECT_EQ(warm.count(id), 1u) << id << " was not one of the warm sandboxes";
    return id;
  }
  void remove(const std::string& id) {
    EXPECT_EQ(d_->corral({"sandbox", "rm", id}).exit_code, 0);
    claimed_.erase(id);
  }

  heartbeat_watch hb_;
  std::set<std::string> claimed_;
};

TEST_F(WarmPool, ACreateIsServedFromThePoolAndTheSandboxWorks) {
  const auto sb = create_warm({"--name", "from-pool"});
  auto both = d_->corral({"exec", sb, "--", "sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(both.exit_code, 3) << both.err;
  EXPECT_EQ(both.out, "out\n");
  EXPECT_EQ(both.err, "err\n");
  auto t = d_->corral({"exec", sb, "--", "true"});
  EXPECT_EQ(t.exit_code, 0) << t.err;
  auto w = d_->corral({"fs", "write", sb, "/tmp/data.txt"}, "kept across execs\n");
  EXPECT_EQ(w.exit_code, 0) << w.err;
  auto c = d_->corral({"exec", sb, "--", "cat", "/tmp/data.txt"});
  EXPECT_EQ(c.out, "kept across execs\n") << c.err;
  auto cat = d_->corral({"fs", "cat", sb, "/tmp/data.txt"});
  EXPECT_EQ(cat.out, "kept across execs\n") << cat.err;
  // Listed as the tenant's, by name; the unclaimed warm sandboxes are in no list.
  auto info = d_->corral({"sandbox", "info", "--name", "from-pool"});
  EXPECT_NE(info.out.find(sb), std::string::npos) << info.out << info.err;
  const auto warm = full_pool();
  auto ls = d_->corral({"sandbox", "ls", "--all"});
  for (const auto& id : warm) EXPECT_EQ(ls.out.find(id), std::string::npos) << ls.out;
  remove(sb);
}

// Warm sandboxes wait at the lowest cpu weight, with the job runner's guest runner pre-started
// (the executor takes jobs): a claim gives the normal weight and a cpu counter from zero, and an
// ordinary create finds no process but its own.
TEST_F(WarmPool, WarmSandboxesWaitInTheBackgroundAndAPlainCreateSeesNoPrestartedRunner) {
  // What booting and starting the runner cost (each warm sandbox's cpu counter so far).
  uint64_t boot_ns = UINT64_MAX;
  for (const auto& id : full_pool()) {
    EXPECT_EQ(read_text("/sys/fs/cgroup/cpu/corral/" + id + "/cpu.shares"), "2") << id;
    boot_ns = std::min<uint64_t>(
        boot_ns, std::stoull(read_text("/sys/fs/cgroup/cpuacct/corral/" + id + "/cpuacct.usage")));
  }
  const auto sb = create_warm();
  EXPECT_EQ(read_text("/sys/fs/cgroup/cpu/corral/" + sb + "/cpu.shares"), "1024");
  // Its cpu counter restarted at the hand-out: the tenant is not billed for the boot.
  const uint64_t since_claim_ns =
      std::stoull(read_text("/sys/fs/cgroup/cpuacct/corral/" + sb + "/cpuacct.usage"));
  EXPECT_LT(since_claim_ns, boot_ns / 2) << "boot " << boot_ns << " ns";
  auto procs = d_->corral(
      {"exec", sb, "--", "sh", "-c", "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"});
  ASSERT_EQ(procs.exit_code, 0) << procs.err;
  std::istringstream lines(procs.out);
  std::vector<std::string> seen;
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) seen.push_back(line);
  // init and this exec's sh (the glob is expanded before its first tr runs): nothing else.
  EXPECT_EQ(seen.size(), 2u) << procs.out;
  EXPECT_EQ(procs.out.find("python3"), std::string::npos) << procs.out;
  remove(sb);
}

TEST_F(WarmPool, LimitsAskedAtCreateAreAppliedToTheWarmSandboxCgroups) {
  const auto sb = create_warm({"--cpu", "500", "--memory", "256"});
  EXPECT_EQ(read_text("/sys/fs/cgroup/memory/corral/" + sb + "/memory.limit_in_bytes"),
            std::to_string(256ULL << 20));
  const auto period = std::stoll(read_text("/sys/fs/cgroup/cpu/corral/" + sb + "/cpu.cfs_period_us"));
  const auto quota = std::stoll(read_text("/sys/fs/cgroup/cpu/corral/" + sb + "/cpu.cfs_quota_us"));
  EXPECT_EQ(quota, period / 2);
  // The memory limit holds: a process that wants more ends the sandbox as out of memory.
  auto bomb = d_->corral({"exec", sb, "--", "python3", "-c",
                          "x = b'x' * (400 * 1024 * 1024); print('survived')"});
  EXPECT_NE(bomb.exit_code, 0);
  EXPECT_EQ(bomb.out.find("survived"), std::string::npos);
  auto info = d_->corral({"sandbox", "info", sb});
  EXPECT_NE(info.out.find("out of memory"), std::string::npos) << info.out << info.err;
  (void)d_->corral({"sandbox", "rm", sb});
  claimed_.erase(sb);
}

TEST_F(WarmPool, TwoClaimedSandboxesCannotSeeEachOther) {
  const auto a = create_warm();
  const auto b = create_warm();
  ASSERT_EQ(d_->corral({"exec", a, "--", "sh", "-c", "echo secret-a > /tmp/mine"}).exit_code, 0);
  background_process sleeper;
  ASSERT_TRUE(sleeper.start(d_->cli({"exec", a, "--", "sh", "-c", "echo up; exec sleep 1234"})));
  ASSERT_TRUE(sleeper.wait_for_output("up", 30s));
  auto files = d_->corral({"exec", b, "--", "cat", "/tmp/mine"});
  EXPECT_NE(files.exit_code, 0);
  EXPECT_EQ(files.out.find("secret-a"), std::string::npos);
  auto procs = d_->corral({"exec", b, "--", "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"});
  EXPECT_EQ(procs.exit_code, 0) << procs.err;
  EXPECT_EQ(procs.out.find("1234"), std::string::npos) << procs.out;
  auto own = d_->corral({"exec", a, "--", "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"});
  EXPECT_NE(own.out.find("sleep 1234"), std::string::npos) << own.out;
  remove(a);
  EXPECT_EQ(sleeper.wait(30s), 137);
  remove(b);
}

// A separate deployment: the executor is killed with -9 while its pool holds two unclaimed
// sandboxes and one claimed one runs.
TEST(WarmPoolCrash, Kill9ThenRestartLeavesNoUnclaimedWarmSandboxOnTheHost) {
  deployment d(warm_options());
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  heartbeat_watch hb;
  ASSERT_TRUE(hb.start(d.nats().url(), "warm-node", &why)) << why;
  ASSERT_TRUE(hb.wait_warm(2, 0));
  const auto keep = d.create({"--name", "keep"});
  ASSERT_TRUE(hb.wait_warm(2, now_ms()));
  auto unclaimed = host_sandboxes(d);
  ASSERT_EQ(unclaimed.erase(keep), 1u);
  ASSERT_EQ(unclaimed.size(), 2u);
  d.executor().kill9();
  ASSERT_TRUE(d.start_executor(&why)) << why;
  // The unclaimed ones are orphans: nothing of them stays on the host.
  const auto sandboxes = d.dir() + "/executor/runtime/sandboxes/";
  for (const auto& id : unclaimed) {
    EXPECT_TRUE(test::wait_path_gone(sandboxes + id, 60s)) << id;
    EXPECT_TRUE(cgroup_dirs(id).empty()) << id;
    EXPECT_TRUE(mounts_under(sandboxes + id).empty()) << id;
  }
  const auto left = host_sandboxes(d);
  for (const auto& id : unclaimed) EXPECT_EQ(left.count(id), 0u) << id << " still in runsc list";
  EXPECT_EQ(left.count(keep), 1u);
  // Nor any record: they were never anyone's.
  auto ls = d.corral({"sandbox", "ls", "--all"});
  for (const auto& id : unclaimed) EXPECT_EQ(ls.out.find(id), std::string::npos) << ls.out;
  // The claimed one was re-adopted and works; a new pool boots.
  auto again = d.corral({"exec", keep, "--", "echo", "adopted"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "adopted\n");
  EXPECT_TRUE(hb.wait_warm(2, 0));
  // SIGTERM drains: the new pool is destroyed too, within the bound.
  const auto pool = [&] {
    auto ids = host_sandboxes(d);
    ids.erase(keep);
    return ids;
  }();
  EXPECT_EQ(pool.size(), 2u);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(d.executor().stop(20s), 0) << d.executor().output();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
  for (const auto& id : pool) {
    EXPECT_TRUE(test::wait_path_gone(sandboxes + id, 30s)) << id;
    EXPECT_TRUE(cgroup_dirs(id).empty()) << id;
  }
  EXPECT_EQ(host_sandboxes(d).count(keep), 1u) << "drain keeps the tenants' sandboxes";
}

deployment::options small_options() {
  deployment::options o;
  o.node = "small-node";
  o.tenant = "small";
  // (The node's capacity is what is tested: one tenant may hold all of it.)
  o.executor_args = {"--warm-pool", "2", "--max-sandboxes", "3", "--heartbeat-ms", "500",
                     "--tenant-sandboxes", "3"};
  return o;
}

// corral.v1.{t}.node.{node}.create: served like a pool create (from the pool), answered at
// capacity with resource_exhausted, while the pool subject then has no responder at all.
TEST(WarmPoolNodeCreate, NodeSubjectIsServedFromThePoolAndRespectsCapacity) {
  deployment d(small_options());
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  heartbeat_watch hb;
  ASSERT_TRUE(hb.start(d.nats().url(), "small-node", &why)) << why;
  ASSERT_TRUE(hb.wait_warm(2, 0));
  const auto subject = wire::subjects::node_create("small", "small-node");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {  // 2 warm + 1 refill = capacity 3
    const auto warm = [&] {
      auto all = host_sandboxes(d);
      for (const auto& id : ids) all.erase(id);
      return all;
    }();
    auto payload = make_create("direct-" + std::to_string(i));
    auto r = hb.conn().request(subject, payload.data(), payload.size(), 60'000);
    ASSERT_TRUE(r) << r.error().message;
    const auto* rep = wire::verify<wire::SandboxReply>(r.value().data.data(), r.value().data.size());
    ASSERT_NE(rep, nullptr);
    ASSERT_EQ(rep->sandbox()->state(), wire::SandboxState::running);
    EXPECT_EQ(wire::str(rep->sandbox()->tenant()), "small");
    EXPECT_EQ(wire::str(rep->sandbox()->node()), "small-node");
    const std::string id(wire::str(rep->sandbox()->id()));
    EXPECT_EQ(warm.count(id), 1u) << "not served from the pool: " << id;
    ids.push_back(id);
    if (i == 0) {
      ASSERT_TRUE(hb.wait_warm(2, now_ms()));  // the refill, within capacity
    }
  }
  EXPECT_EQ(host_sandboxes(d).size(), 3u) << "the pool grew past capacity";
  auto payload = make_create();
  auto full = hb.conn().request(subject, payload.data(), payload.size(), 30'000);
  ASSERT_TRUE(full) << full.error().message;
  const auto* err = wire::verify<wire::ErrorReply>(full.value().data.data(), full.value().data.size());
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->code(), wire::ErrorCode::resource_exhausted);
  auto pool = hb.conn().request(wire::subjects::create("small", "default"), payload.data(),
                                payload.size(), 30'000);
  EXPECT_EQ(pool.error().code, bus::errc::no_responders) << "a full node stays out of the pool";
  // The sandboxes work.
  auto e = d.corral({"exec", ids[2], "--", "echo", "direct"});
  EXPECT_EQ(e.out, "direct\n") << e.err;
  // Room again: the pool refills and the node subject serves from it.
  EXPECT_EQ(d.corral({"sandbox", "rm", ids[0]}).exit_code, 0);
  ASSERT_TRUE(hb.wait_warm(1, now_ms()));
  auto again = hb.conn().request(subject, payload.data(), payload.size(), 60'000);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_NE(wire::verify<wire::SandboxReply>(again.value().data.data(), again.value().data.size()),
            nullptr);
}

}  // namespace
}  // namespace corral
