// Limits enforced from outside the sandbox (docs/promises.md P5, P12), against the real runtime:
// real runsc, corral-init, overlayfs, tmpfs and cgroups (needs root). A memory bomb ends the
// sandbox with "out of memory" from the memory cgroup; a disk filler gets ENOSPC from the
// writable layer's quota; a fork bomb gets EAGAIN inside and leaves no host process behind; and
// while each runs, a neighbour sandbox's exec succeeds. Waits are on events with deadlines.
//
// runsc: $CORRAL_RUNSC when set, else <bin>/corral-runsc when built, else /usr/bin/runsc.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "executor/runtime/gvisor_runtime.hpp"
#include "executor/runtime/mounts.hpp"
#include "executor/runtime/orphan_reaper.hpp"
#include "executor/runtime/tree_fs.hpp"
#include "schemas/codec.hpp"
#include "schemas/ids.hpp"

namespace {

using namespace std::chrono_literals;
namespace wire = corral::wire;
using steady = std::chrono::steady_clock;

constexpr auto event_deadline = 30s;

std::string runsc_binary() {
  const char* env = getenv("CORRAL_RUNSC");
  if (env != nullptr && *env != '\0') return env;
  const std::string built = std::string(CORRAL_BIN_DIR) + "/corral-runsc";
  return access(built.c_str(), X_OK) == 0 ? built : "/usr/bin/runsc";
}

std::string init_binary() { return std::string(CORRAL_BIN_DIR) + "/corral-init"; }

wire::bytes make_hello(uint64_t session) {
  flatbuffers::FlatBufferBuilder fbb;
  auto hello = wire::CreateHello(fbb, session);
  wire::FinishInitCommandBuffer(fbb,
                                wire::CreateInitCommand(fbb, wire::Command::Hello, hello.Union()));
  return wire::release(fbb);
}

wire::bytes make_spawn(uint64_t id, const std::vector<std::string>& argv) {
  flatbuffers::FlatBufferBuilder fbb;
  auto args = fbb.CreateVectorOfStrings(argv);
  std::vector<flatbuffers::Offset<wire::KeyValue>> env = {wire::CreateKeyValue(
      fbb, fbb.CreateString("PATH"),
      fbb.CreateString("/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"))};
  auto spawn =
      wire::CreateSpawn(fbb, id, args, fbb.CreateVector(env), fbb.CreateString("/"), false);
  wire::FinishInitCommandBuffer(fbb,
                                wire::CreateInitCommand(fbb, wire::Command::Spawn, spawn.Union()));
  return wire::release(fbb);
}

struct exec_result {
  bool exited = false;
  int exit_code = -1;
  int signal = 0;
  std::string out;
  std::string err;
};

// Records what init sends and when the link closes.
class recorder final : public corral::init_listener {
 public:
  void on_frame(std::vector<uint8_t> payload) override {
    std::lock_guard<std::mutex> lock(mu_);
    const auto* ev = wire::verify<wire::InitEvent>(payload.data(), payload.size());
    if (ev != nullptr) {
      if (ev->event_type() == wire::Event::HelloAck) {
        acked_ = true;
      } else if (ev->event_type() == wire::Event::Output) {
        const auto* o = ev->event_as_Output();
        auto& r = results_[o->id()];
        auto* target = o->stream() == wire::Stream::stderr ? &r.err : &r.out;
        if (o->data() != nullptr) target->append(o->data()->begin(), o->data()->end());
      } else if (ev->event_type() == wire::Event::Exited) {
        const auto* x = ev->event_as_Exited();
        auto& r = results_[x->id()];
        r.exited = true;
        r.exit_code = x->exit_code();
        r.signal = x->signal();
      } else if (ev->event_type() == wire::Event::SpawnFailed) {
        results_[ev->event_as_SpawnFailed()->id()].exited = true;
      }
    }
    cv_.notify_all();
  }
  void on_closed(corral::close_reason why, std::string reason) override {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    why_ = why;
    reason_ = std::move(reason);
    cv_.notify_all();
  }
  bool wait_ack() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, event_deadline, [&] { return acked_; });
  }
  // The exec's result, or nothing at the deadline or when the link closed first.
  std::optional<exec_result> wait_exec(uint64_t id, std::chrono::seconds deadline = event_deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, deadline, [&] { return results_[id].exited || closed_; });
    if (!results_[id].exited) return std::nullopt;
    return results_[id];
  }
  // Waits until the exec ended or the link closed; true when either happened.
  bool wait_exec_or_close(uint64_t id, std::chrono::seconds deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, deadline, [&] { return results_[id].exited || closed_; });
  }
  bool closed() {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }
  std::string reason() {
    std::lock_guard<std::mutex> lock(mu_);
    return reason_;
  }
  corral::close_reason why() {
    std::lock_guard<std::mutex> lock(mu_);
    return why_;
  }
  exec_result result(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return results_[id];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool acked_ = false;
  bool closed_ = false;
  std::string reason_;
  corral::close_reason why_ = corral::close_reason::died;
  std::map<uint64_t, exec_result> results_;
};

struct sandbox {
  std::string id;
  std::shared_ptr<recorder> events;
  std::shared_ptr<corral::init_link> link;
  uint64_t next_exec = 1;

  // Starts argv without waiting; returns its id.
  uint64_t spawn(const std::vector<std::string>& argv) {
    const uint64_t id = next_exec++;
    EXPECT_TRUE(link->send(make_spawn(id, argv)));
    return id;
  }
  exec_result sh(const std::string& script) {
    const auto id = spawn({"/bin/sh", "-c", script});
    auto r = events->wait_exec(id);
    EXPECT_TRUE(r.has_value()) << "no exit for " << script;
    return r.value_or(exec_result{});
  }
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Host processes (entries of /proc).
int host_process_count() {
  int n = 0;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) n += atoi(e->d_name) > 0 ? 1 : 0;
    closedir(d);
  }
  return n;
}

// Host processes whose command line mentions needle (a sandbox's runsc processes carry its id).
std::vector<int> processes_mentioning(const std::string& needle) {
  std::vector<int> out;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const int pid = atoi(e->d_name);
      if (pid <= 0 || pid == getpid()) continue;
      std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
      std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (cmdline.find(needle) != std::string::npos) out.push_back(pid);
    }
    closedir(d);
  }
  return out;
}

class LimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_EQ(corral::start_orphan_reaper(), ""); }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the gvisor runtime needs root";
    ASSERT_EQ(access(init_binary().c_str(), X_OK), 0) << init_binary() << " is not built";
    char tmpl[] = "/tmp/corral-limits-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    data_dir_ = tmpl;
    cfg_.data_dir = data_dir_;
    cfg_.runsc_path = runsc_binary();
    cfg_.init_path = init_binary();
  }

  void TearDown() override {
    if (rt_) {
      for (const auto& id : started_) rt_->destroy(id);
    }
    rt_.reset();
    if (!data_dir_.empty()) {
      EXPECT_TRUE(corral::gvisor_detail::mounts_under(data_dir_).empty());
      EXPECT_EQ(corral::gvisor_detail::remove_tree(data_dir_), "");
    }
  }

  void make_runtime() {
    auto r = corral::make_gvisor_runtime(cfg_);
    ASSERT_TRUE(r.runtime) << r.error;
    rt_ = r.runtime;
  }

  sandbox start(corral::sandbox_spec spec = {}) {
    sandbox s;
    s.id = wire::new_id("sb-");
    spec.id = s.id;
    s.events = std::make_shared<recorder>();
    auto r = rt_->start(spec, s.events);
    EXPECT_TRUE(r.link) << r.error;
    started_.push_back(s.id);
    s.link = r.link;
    if (s.link) {
      EXPECT_TRUE(s.link->send(make_hello(1)));
      EXPECT_TRUE(s.events->wait_ack());
    }
    return s;
  }

  std::string data_dir_;
  corral::gvisor_config cfg_;
  std::shared_ptr<corral::runtime> rt_;
  std::vector<std::string> started_;
};

const char* memory_bomb =
    "a = []\n"
    "while True:\n"
    "    a.append(bytearray(16 << 20))\n";

// The memory cgroup's limit is the host's: when the sandbox reaches it, the kernel's OOM killer
// kills the sandbox's sentry, so the whole sandbox dies (not one process inside). The runtime
// reports that death as "out of memory", and usage() shows the cgroup's OOM kill.
TEST_F(LimitsTest, MemoryBombEndsTheSandboxAsOutOfMemory) {
  make_runtime();
  corral::sandbox_spec spec;
  spec.memory_mib = 160;
  auto bomber = start(spec);
  auto neighbour = start();
  ASSERT_TRUE(bomber.link && neighbour.link);
  const auto t0 = steady::now();
  const auto bomb = bomber.spawn({"python3", "-c", memory_bomb});
  // The neighbour's exec succeeds while the bomb runs.
  EXPECT_EQ(neighbour.sh("echo neighbour ok").out, "neighbour ok\n");
  ASSERT_TRUE(bomber.events->wait_exec_or_close(bomb, 20s)) << "the memory bomb is still running";
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
  const auto memcg = "/sys/fs/cgroup/memory/corral/" + bomber.id;
  std::printf("memory bomb ended after %lld ms: closed=%d reason=\"%s\" exit=%d signal=%d\n"
              "  oom_control: %s  failcnt: %s",
              static_cast<long long>(took.count()), bomber.events->closed(),
              bomber.events->reason().c_str(), bomber.events->result(bomb).exit_code,
              bomber.events->result(bomb).signal, read_text(memcg + "/memory.oom_control").c_str(),
              read_text(memcg + "/memory.failcnt").c_str());
  EXPECT_TRUE(bomber.events->closed()) << "the sandbox survived its memory limit";
  EXPECT_EQ(bomber.events->why(), corral::close_reason::out_of_memory) << bomber.events->reason();
  EXPECT_TRUE(rt_->usage(bomber.id).oom_killed);
  EXPECT_LT(took, 10s);
  EXPECT_EQ(neighbour.sh("echo still ok").out, "still ok\n");
}

// Memory freed in pieces of a few MiB is handed out again, not kept beside new memory: the
// sandbox's runsc (deploy/runsc patch 0003) zeroes such pieces in place instead of returning
// them to the host, so they stay charged to the sandbox's memory cgroup until reused. 20 rounds
// of 120 MiB in 2 MiB pieces (each round freed before the next) fit a 256 MiB limit only if the
// pieces of one round are reused by the next; a fork per round churns copy-on-write copies too.
TEST_F(LimitsTest, MemoryFreedInPiecesIsReusedUnderTheLimit) {
  make_runtime();
  corral::sandbox_spec spec;
  spec.memory_mib = 256;
  auto s = start(spec);
  ASSERT_TRUE(s.link);
  const char* churn =
      "import os\n"
      "fill = b'\\x01' * (2 << 20)\n"
      "for r in range(20):\n"
      "    pieces = [bytearray(fill) for _ in range(60)]\n"
      "    pid = os.fork()\n"
      "    if pid == 0:\n"
      "        for p in pieces[::6]: p[::4096] = b'\\x02' * len(p[::4096])\n"
      "        os._exit(0)\n"
      "    os.waitpid(pid, 0)\n"
      "    del pieces\n"
      "print('rounds done')\n";
  const auto id = s.spawn({"python3", "-c", churn});
  auto r = s.events->wait_exec(id, 60s);
  ASSERT_TRUE(r.has_value()) << "no end of the churn; sandbox closed=" << s.events->closed()
                             << " reason=" << s.events->reason();
  EXPECT_EQ(r->out, "rounds done\n") << r->err;
  EXPECT_FALSE(s.events->closed()) << s.events->reason();
  EXPECT_FALSE(rt_->usage(s.id).oom_killed);
}

// The writable layer lives on a loop-mounted ext4 image of disk_limit_mib: a disk filler gets
// ENOSPC, the sandbox stays usable (and can free the space), and a neighbour's exec succeeds
// meanwhile. Writing more than the memory limit to disk is no OOM: the page cache is reclaimable. (/tmp is
// runsc's own tmpfs in sandbox memory, bounded by the memory limit: the filler writes elsewhere.)
TEST_F(LimitsTest, DiskFillerGetsEnospc) {
  cfg_.disk_limit_mib = 256;
  make_runtime();
  corral::sandbox_spec spec;
  spec.memory_mib = 128;
  auto filler = start(spec);
  auto neighbour = start();
  ASSERT_TRUE(filler.link && neighbour.link);
  const auto fill = filler.spawn(
      {"/bin/sh", "-c", "dd if=/dev/zero of=/root/fill bs=1M count=400 2>&1; echo rc=$?"});
  EXPECT_EQ(neighbour.sh("echo neighbour ok").out, "neighbour ok\n");
  auto r = filler.events->wait_exec(fill);
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->out.find("No space left on device"), std::string::npos) << r->out;
  EXPECT_NE(r->out.find("rc=1"), std::string::npos) << r->out;
  // rm frees the space.
  EXPECT_EQ(filler.sh("rm /root/fill && echo y > /var/tmp/more && cat /var/tmp/more").out, "y\n");
  EXPECT_FALSE(filler.events->closed());
  EXPECT_EQ(neighbour.sh("echo still ok").out, "still ok\n");
}

// A fork bomb gets EAGAIN from RLIMIT_NPROC inside; a neighbour's exec succeeds while it runs;
// after the sandbox is destroyed the host's process count is back to its baseline.
TEST_F(LimitsTest, ForkBombStaysInsideAndLeavesNothing) {
  make_runtime();
  auto neighbour = start();
  ASSERT_TRUE(neighbour.link);
  // The host processes of this runtime (runsc, gofer, sandbox, stubs: their command lines name
  // the data dir). Counting the whole host would count other tests' sandboxes too.
  const auto baseline = processes_mentioning(data_dir_).size();
  const int host_baseline = host_process_count();
  corral::sandbox_spec spec;
  spec.pids_limit = 64;
  auto bomber = start(spec);
  ASSERT_TRUE(bomber.link);
  const auto bomb = bomber.spawn({"python3", "-c",
                                  "import os, time\n"
                                  "n = 0\n"
                                  "while True:\n"
                                  "    try:\n"
                                  "        if os.fork() == 0:\n"
                                  "            time.sleep(60)\n"
                                  "            os._exit(0)\n"
                                  "        n += 1\n"
                                  "    except OSError as e:\n"
                                  "        print(n, e.errno, flush=True)\n"
                                  "        break\n"
                                  "time.sleep(60)\n"});
  EXPECT_EQ(neighbour.sh("echo neighbour ok").out, "neighbour ok\n");
  // The bomb's children hold their slots; the sandbox still answers once they are killed.
  EXPECT_FALSE(bomber.events->wait_exec(bomb, 3s).has_value());
  EXPECT_FALSE(bomber.events->closed());
  EXPECT_FALSE(processes_mentioning(bomber.id).empty());
  rt_->destroy(bomber.id);
  EXPECT_TRUE(bomber.events->wait_exec_or_close(bomb, 10s));
  const auto out = bomber.events->result(bomb).out;
  EXPECT_TRUE(out.empty() || out.find(" 11") != std::string::npos) << out;  // EAGAIN
  // destroy() returns once the sandbox's processes are gone: none of its host processes is left
  // and this runtime's count is back to the baseline.
  EXPECT_TRUE(processes_mentioning(bomber.id).empty());
  EXPECT_EQ(processes_mentioning(data_dir_).size(), baseline);
  std::printf("host processes: runtime's %zu before, %zu after; whole host %d before, %d after\n",
              baseline, processes_mentioning(data_dir_).size(), host_baseline,
              host_process_count());
  EXPECT_EQ(neighbour.sh("echo still ok").out, "still ok\n");
}

// Start latency with the disk quota's tmpfs and without (the layer on the data dir's disk).

}  // namespace
