// Integration tests of the gvisor runtime (executor/runtime/): real runsc, real corral-init,
// real overlayfs and cgroups. Run as root. Each test has its own data dir and destroys its
// sandboxes. Waits are on events with deadlines, never sleeps.
//
// runsc: $CORRAL_RUNSC when set, else the build's corral-runsc (deploy/build.sh installs the
// patched runsc of deploy/build-runsc.sh there: what corral runs), else /usr/bin/runsc. Set
// CORRAL_RUNTIME_BENCH=1 to run the start/destroy latency measurement.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "executor/runtime/gvisor_runtime.hpp"
#include "executor/runtime/json_text.hpp"
#include "executor/runtime/mounts.hpp"
#include "executor/runtime/orphan_reaper.hpp"
#include "executor/runtime/process.hpp"
#include "executor/runtime/sandbox_cgroups.hpp"
#include "executor/runtime/tree_fs.hpp"
#include "schemas/codec.hpp"
#include "schemas/frame.hpp"
#include "schemas/ids.hpp"

namespace {

using namespace std::chrono_literals;
using corral::gvisor_detail::command_result;
using corral::gvisor_detail::command_spec;
using corral::gvisor_detail::run_command;
namespace wire = corral::wire;

constexpr auto event_deadline = 20s;

std::string runsc_binary() {
  const char* env = getenv("CORRAL_RUNSC");
  if (env != nullptr && *env != '\0') return env;
  const std::string built = std::string(CORRAL_BIN_DIR) + "/corral-runsc";
  return access(built.c_str(), X_OK) == 0 ? built : "/usr/bin/runsc";
}

std::string init_binary() { return std::string(CORRAL_BIN_DIR) + "/corral-init"; }

// ---- building commands ---------------------------------------------------------------------

wire::bytes make_hello(uint64_t session) {
  flatbuffers::FlatBufferBuilder fbb;
  auto hello = wire::CreateHello(fbb, session);
  wire::FinishInitCommandBuffer(
      fbb, wire::CreateInitCommand(fbb, wire::Command::Hello, hello.Union()));
  return wire::release(fbb);
}

wire::bytes make_spawn(uint64_t id, const std::vector<std::string>& argv) {
  flatbuffers::FlatBufferBuilder fbb;
  auto args = fbb.CreateVectorOfStrings(argv);
  std::vector<flatbuffers::Offset<wire::KeyValue>> env = {wire::CreateKeyValue(
      fbb, fbb.CreateString("PATH"), fbb.CreateString("/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"))};
  auto spawn = wire::CreateSpawn(fbb, id, args, fbb.CreateVector(env), fbb.CreateString("/"), false);
  wire::FinishInitCommandBuffer(
      fbb, wire::CreateInitCommand(fbb, wire::Command::Spawn, spawn.Union()));
  return wire::release(fbb);
}

// ---- receiving events ----------------------------------------------------------------------

struct exec_result {
  bool started = false;
  bool exited = false;
  bool spawn_failed = false;
  int exit_code = -1;
  int signal = 0;
  std::string out;
  std::string err;
};

// Records what init sends; verifies every frame as an InitEvent.
class recorder final : public corral::init_listener {
 public:
  void on_frame(std::vector<uint8_t> payload) override {
    std::lock_guard<std::mutex> lock(mu_);
    const auto* ev = wire::verify<wire::InitEvent>(payload.data(), payload.size());
    if (ev == nullptr) {
      ++malformed_;
    } else {
      switch (ev->event_type()) {
        case wire::Event::HelloAck:
          acks_.push_back(ev->event_as_HelloAck()->session());
          break;
        case wire::Event::Started:
          results_[ev->event_as_Started()->id()].started = true;
          break;
        case wire::Event::Output: {
          const auto* o = ev->event_as_Output();
          auto& r = results_[o->id()];
          auto* target = o->stream() == wire::Stream::stderr ? &r.err : &r.out;
          if (o->data() != nullptr) target->append(o->data()->begin(), o->data()->end());
          break;
        }
        case wire::Event::Exited: {
          const auto* x = ev->event_as_Exited();
          auto& r = results_[x->id()];
          r.exited = true;
          r.exit_code = x->exit_code();
          r.signal = x->signal();
          break;
        }
        case wire::Event::SpawnFailed:
          results_[ev->event_as_SpawnFailed()->id()].spawn_failed = true;
          break;
        default:
          break;
      }
    }
    cv_.notify_all();
  }

  void on_closed(corral::close_reason, std::string reason) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++closed_;
    reason_ = std::move(reason);
    cv_.notify_all();
  }

  bool wait_ack(uint64_t session) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, event_deadline, [&] {
      return std::find(acks_.begin(), acks_.end(), session) != acks_.end();
    });
  }

  // Waits for Exited or SpawnFailed of id.
  std::optional<exec_result> wait_exec(uint64_t id) {
    std::unique_lock<std::mutex> lock(mu_);
    const bool done = cv_.wait_for(lock, event_deadline, [&] {
      auto it = results_.find(id);
      return it != results_.end() && (it->second.exited || it->second.spawn_failed);
    });
    if (!done) return std::nullopt;
    return results_[id];
  }

  bool wait_started(uint64_t id) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, event_deadline, [&] { return results_[id].started; });
  }

  bool wait_closed() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, event_deadline, [&] { return closed_ > 0; });
  }

  int closed_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }
  std::string reason() {
    std::lock_guard<std::mutex> lock(mu_);
    return reason_;
  }
  int malformed() {
    std::lock_guard<std::mutex> lock(mu_);
    return malformed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<uint64_t> acks_;
  std::map<uint64_t, exec_result> results_;
  int closed_ = 0;
  int malformed_ = 0;
  std::string reason_;
};

// One connected sandbox.
struct sandbox {
  std::string id;
  std::shared_ptr<recorder> events;
  std::shared_ptr<corral::init_link> link;
  uint64_t next_exec = 1;

  bool hello(uint64_t session) { return link->send(make_hello(session)) && events->wait_ack(session); }

  exec_result run(const std::vector<std::string>& argv) {
    const uint64_t id = next_exec++;
    EXPECT_TRUE(link->send(make_spawn(id, argv)));
    auto r = events->wait_exec(id);
    EXPECT_TRUE(r.has_value()) << "no exit for " << argv.back();
    return r.value_or(exec_result{});
  }
  exec_result sh(const std::string& script) { return run({"/bin/sh", "-c", script}); }
};

// ---- host inspection -----------------------------------------------------------------------

// Processes whose command line mentions needle (runsc run/sandbox/gofer of a sandbox carry its
// id or its directory).
std::vector<int> processes_mentioning(const std::string& needle) {
  std::vector<int> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const int pid = atoi(e->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(needle) != std::string::npos) out.push_back(pid);
  }
  closedir(d);
  return out;
}

std::vector<std::string> cgroup_dirs_of(const std::string& id) {
  return corral::gvisor_detail::sandbox_cgroups("corral", id).existing_dirs();
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- fixture -------------------------------------------------------------------------------

class GvisorRuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // As the executor's main does: be the subreaper of runsc's orphans and reap them promptly.
    ASSERT_EQ(corral::start_orphan_reaper(), "");
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the gvisor runtime needs root";
    ASSERT_EQ(access(runsc_binary().c_str(), X_OK), 0) << runsc_binary();
    ASSERT_EQ(access(init_binary().c_str(), X_OK), 0) << init_binary() << " is not built";
    if (const char* child_dir = getenv(child_role_env)) {
      data_dir_ = child_dir;  // the parent test owns (and removes) it
      child_role_ = true;
    } else {
      char tmpl[] = "/tmp/corral-runtime-test-XXXXXX";
      ASSERT_NE(mkdtemp(tmpl), nullptr);
      data_dir_ = tmpl;
    }
    cfg_.data_dir = data_dir_;
    cfg_.runsc_path = runsc_binary();
    cfg_.init_path = init_binary();
    make_runtime();
  }

  void TearDown() override {
    if (rt_) {
      for (const auto& id : started_) rt_->destroy(id);
    }
    rt_.reset();
    if (!data_dir_.empty() && !child_role_) {
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
    s.id = spec.id.empty() ? wire::new_id("sb-") : spec.id;
    spec.id = s.id;
    s.events = std::make_shared<recorder>();
    auto r = rt_->start(spec, s.events);
    EXPECT_TRUE(r.link) << r.error;
    EXPECT_EQ(r.error, "");
    started_.push_back(s.id);
    s.link = r.link;
    return s;
  }

  void expect_gone(const std::string& id) {
    EXPECT_FALSE(exists(data_dir_ + "/sandboxes/" + id));
    EXPECT_TRUE(processes_mentioning(id).empty()) << "runsc processes of " << id << " remain";
    EXPECT_TRUE(cgroup_dirs_of(id).empty()) << "cgroups of " << id << " remain";
    EXPECT_TRUE(corral::gvisor_detail::mounts_under(data_dir_ + "/sandboxes").empty());
    const auto ids = rt_->list_host_sandboxes();
    EXPECT_EQ(std::count(ids.begin(), ids.end(), id), 0);
  }

  // Set in a process that runs ExecutorKilledMidSessionChild on behalf of another test.
  static constexpr const char* child_role_env = "CORRAL_RUNTIME_TEST_CHILD_DATA_DIR";
  bool child_role_ = false;
  std::string data_dir_;
  corral::gvisor_config cfg_;
  std::shared_ptr<corral::runtime> rt_;
  std::vector<std::string> started_;
};

// ---- tests ---------------------------------------------------------------------------------

TEST_F(GvisorRuntimeTest, HelloIsAcknowledged) {
  auto s = start();
  ASSERT_TRUE(s.link);
  EXPECT_TRUE(s.hello(42));
  EXPECT_EQ(s.events->malformed(), 0);
  const auto ids = rt_->list_host_sandboxes();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), s.id), 1);
}

TEST_F(GvisorRuntimeTest, SpawnEchoGivesOutputAndExit) {
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  const auto r = s.sh("echo hi");
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_EQ(r.err, "");
  const auto fail = s.sh("echo oops >&2; exit 3");
  EXPECT_EQ(fail.exit_code, 3);
  EXPECT_EQ(fail.err, "oops\n");
}

TEST_F(GvisorRuntimeTest, PythonAndCertificatesWork) {
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  const auto r = s.run({"python3", "-c",
                        "import ssl, json, sqlite3, hashlib\n"
                        "ctx = ssl.create_default_context()\n"
                        "print(len(ctx.get_ca_certs()) > 0, json.dumps([1]))"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "True [1]\n");
  const auto who = s.sh("id -un; cat /etc/hostname; test -w /tmp && echo tmp-ok; touch /usr/x");
  EXPECT_NE(who.exit_code, 0);  // /usr is read-only
  EXPECT_EQ(who.out, "root\nsandbox\ntmp-ok\n");
}

TEST_F(GvisorRuntimeTest, SandboxesSeeNeitherFilesNorProcessesOfEachOther) {
  auto a = start();
  auto b = start();
  ASSERT_TRUE(a.link && b.link);
  ASSERT_TRUE(a.hello(1));
  ASSERT_TRUE(b.hello(1));
  EXPECT_EQ(a.sh("echo a > /tmp/only-a; echo a > /root/only-a; echo a > /var/tmp/only-a").exit_code, 0);
  // A long-running process in a, with a recognisable command line.
  EXPECT_TRUE(a.link->send(make_spawn(100, {"/bin/sh", "-c", "exec sleep 86399"})));
  EXPECT_EQ(a.sh("cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | grep -c 'sleep 8639[9]'").out, "1\n");
  const auto look = b.sh(
      "test -e /tmp/only-a && echo tmp; test -e /root/only-a && echo root;"
      "test -e /var/tmp/only-a && echo vartmp;"
      "cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | grep 'sleep 8639[9]'; exit 0");
  EXPECT_EQ(look.out, "");
  EXPECT_EQ(a.sh("cat /tmp/only-a").out, "a\n");
}

TEST_F(GvisorRuntimeTest, HostSecretsAreInvisible) {
  const std::string marker = "corral-secret-" + wire::new_id("");
  std::vector<std::string> planted;
  auto plant = [&](const std::string& path) {
    std::ofstream(path) << marker << "\n";
    planted.push_back(path);
  };
  const std::string home = "/home/corral-test-" + wire::new_id("");
  ASSERT_EQ(mkdir(home.c_str(), 0755), 0);
  plant("/root/" + marker);
  plant(home + "/secret");
  plant("/var/tmp/" + marker);
  plant("/tmp/" + marker);
  plant(data_dir_ + "/" + marker);
  setenv("CORRAL_TEST_SECRET", marker.c_str(), 1);

  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  std::string cats;
  for (const auto& p : planted) cats += "cat " + p + " 2>/dev/null; ";
  const auto r = s.sh(cats + "grep -rsl " + marker +
                      " /root /home /var /tmp /etc /run /.corral /proc/1/environ /proc/self/environ;"
                      "env; cat /proc/1/environ; exit 0");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.find(marker), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("CORRAL_TEST_SECRET"), std::string::npos) << r.out;
  const auto shadow = s.sh("test -e /etc/shadow || test -e /etc/gshadow || test -e /etc/ssl/private");
  EXPECT_NE(shadow.exit_code, 0);
  const auto host_dirs = s.sh("test -e " + home + " || test -e " + data_dir_ + " || test -e /work");
  EXPECT_NE(host_dirs.exit_code, 0);

  unsetenv("CORRAL_TEST_SECRET");
  for (const auto& p : planted) unlink(p.c_str());
  rmdir(home.c_str());
}

// A forked process sees its parent's memory as it was at the fork, and neither sees the
// other's later writes: heap and anonymous mappings of many sizes, the parent writing between
// forks, a fork of a fork from a second thread, a MAP_SHARED page the children report through.
// Exercises what deploy/runsc patches 0004 and 0005 change: a forked child maps everything it
// inherited in one batch at its start, and writes break copy-on-write without a read fault first.
TEST_F(GvisorRuntimeTest, ForkedProcessesSeeTheirParentsMemoryAndNotEachOthersWrites) {
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  const auto r = s.run({"python3", "-c", R"PY(
import mmap, os, threading
# Regions of different kinds and sizes, each filled with its own byte.
heap = [bytearray([i % 251]) * ((16 << 10) + i * 6000) for i in range(300)]
anon = []
for i in range(40):
    m = mmap.mmap(-1, (i + 1) * 12288, flags=mmap.MAP_PRIVATE)
    m.write(bytes([i + 1]) * len(m))
    anon.append(m)
shared = mmap.mmap(-1, 4096, flags=mmap.MAP_SHARED)  # the children report through it
def intact(expect):
    return (all(r[0] == v and r[-1] == v and r[len(r) // 2] == v for r, v in zip(heap, expect)) and
            all(m[0] == i + 1 and m[len(m) - 1] == i + 1 for i, m in enumerate(anon)))
expect = [i % 251 for i in range(300)]
for rnd in range(12):
    # The parent writes after each fork: the next child must see the new values.
    heap[rnd * 7][0] = heap[rnd * 7][-1] = heap[rnd * 7][len(heap[rnd * 7]) // 2] = 200 + rnd
    expect[rnd * 7] = 200 + rnd
    r_fd, w_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w_fd)
        os.read(r_fd, 1)  # the parent has written heap[1] and anon[1] since the fork
        ok = intact(expect)
        for r in heap[rnd % 3::3]:  # copy-on-write breaks in the child ...
            r[0] = r[-1] = r[len(r) // 2] = 255
        mine = all(r[0] == 255 and r[-1] == 255 for r in heap[rnd % 3::3])
        def grandchild():  # ... and a fork of a fork, from a second thread
            g = os.fork()
            if g == 0:
                os._exit(0 if all(r[0] == 255 for r in heap[rnd % 3::3]) and anon[3][5] == 4 else 1)
            _, st = os.waitpid(g, 0)
            shared[rnd] = 1 if st == 0 else 2
        t = threading.Thread(target=grandchild); t.start(); t.join()
        os._exit(0 if ok and mine else 1)
    os.close(r_fd)
    heap[1][0], anon[1][0] = 77, 77  # after the fork: for the parent only
    os.write(w_fd, b"x")
    os.close(w_fd)
    _, st = os.waitpid(pid, 0)
    heap[1][0], anon[1][0] = expect[1], 2
    if st != 0 or shared[rnd] != 1 or not intact(expect):
        print("round", rnd, "child status", st, "grandchild", shared[rnd], "parent intact", intact(expect))
        raise SystemExit(1)
print("forks ok")
)PY"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "forks ok\n") << r.err;
}

// Memory that one process wrote and gave back is never seen by another: freed pages that runsc
// keeps committed (deploy/runsc 0003) are handed out zeroed (0008 zeroes them when they are
// handed out, except for copy-on-write copies, which overwrite them whole). Rounds of: children
// copy-on-write-copying a heap full of a marker byte and exiting, anonymous mappings filled and
// unmapped; then fresh anonymous mappings of many sizes must read all zero, and so must the
// bytes past the end of a file's last page (the file cache fills only up to the end of file).
TEST_F(GvisorRuntimeTest, MemoryFreedByOneProcessIsHandedOutZeroed) {
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  const auto r = s.run({"python3", "-c", R"PY(
import ctypes, mmap, os
MARK = 0xA5
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
heap = [bytearray([MARK]) * (1 << 20) for _ in range(24)]
def dirty():
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            for b in heap:
                for off in range(0, len(b), 8192):
                    b[off] = MARK
            os._exit(0)
        os.waitpid(pid, 0)
    m = mmap.mmap(-1, 24 << 20)
    m.write(bytes([MARK]) * len(m))
    m.close()
def fresh_is_zero():
    for size in (4096, 65536, 2 << 20, 8 << 20, 40 << 20):
        m = mmap.mmap(-1, size)
        if m[:].count(0) != size:
            return "anonymous %d" % size
        m.close()
    return None
def file_tail_is_zero(path):
    with open(path, "wb") as f:
        f.write(b"X" * 5000)
    fd = os.open(path, os.O_RDONLY)
    addr = libc.mmap(None, 8192, mmap.PROT_READ, mmap.MAP_PRIVATE, fd, 0)
    os.close(fd)
    data = ctypes.string_at(addr, 8192)
    os.unlink(path)
    if data[:5000] != b"X" * 5000 or data[5000:].count(0) != 8192 - 5000:
        return "file tail of %s" % path
    return None
for rnd in range(8):
    dirty()
    bad = fresh_is_zero() or file_tail_is_zero("/root/tail-%d" % rnd) or file_tail_is_zero("/tmp/tail-%d" % rnd)
    if bad:
        print("round", rnd, "saw old data in", bad)
        raise SystemExit(1)
print("zeroed")
)PY"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "zeroed\n") << r.err;
}

// No page above the application's own mappings (where runsc's ptrace platform keeps its stub
// code and, with patch 0005, each stub's table of mmap calls) can be written from inside: a
// table the application could write would let it map any memory of the sandbox into itself.
// Each readable page of the top 31 pages is written by a forked probe, which must die of SIGSEGV.
TEST_F(GvisorRuntimeTest, NothingAboveTheApplicationsMappingsIsWritable) {
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  const auto r = s.run({"python3", "-c", R"PY(
import ctypes, os, signal
top = 0x7ffffffff000  # the highest user address on x86-64 (4-level paging)
end = 0x7fffffff0000 - 16 * 4096
for line in open("/proc/self/maps"):
    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
    if lo < top and hi > end:
        end = hi
def probe(addr, write):
    pid = os.fork()
    if pid == 0:
        if write:
            ctypes.memmove(addr, b"\x00", 1)
        else:
            ctypes.string_at(addr, 1)
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    return st
readable = writable = 0
for addr in range(end, top, 4096):
    if probe(addr, False) != 0:
        continue
    readable += 1
    st = probe(addr, True)
    if not (os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGSEGV):
        writable += 1
        print("writable page above the process's mappings: %#x (status %d)" % (addr, st))
print("pages above the mappings: %d, readable %d, writable %d" % ((top - end) // 4096, readable, writable))
)PY"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The stub's code page is there (readable): the probe looked at the right place.
  EXPECT_NE(r.out.find("writable 0\n"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find("readable 0,"), std::string::npos) << r.out;
}

// runsc patch 0009: each stub thread is bound to the CPU of the sentry thread that traces it (an
// application's system calls and faults are round trips between the two), so a stub thread
// the sentry has used allows exactly one CPU, while the sentry's own threads stay unbound.
TEST_F(GvisorRuntimeTest, StubThreadsRunOnTheCpuOfTheirTracer) {
  auto field = [](const std::string& status, const std::string& key) {
    const auto at = status.find("\n" + key + ":");
    if (at == std::string::npos) return std::string();
    const auto from = status.find_first_not_of(" \t", at + key.size() + 2);
    if (from == std::string::npos) return std::string();
    return status.substr(from, status.find('\n', from) - from);
  };
  auto one_cpu = [](const std::string& list) { return list.find_first_of(",-") == std::string::npos; };
  // The CPUs this test may use; the sandbox starts with the same.
  const auto ours = field(read_text("/proc/self/status"), "Cpus_allowed_list");
  ASSERT_FALSE(ours.empty());
  if (one_cpu(ours)) GTEST_SKIP() << "one CPU (" << ours << "): every thread runs on it";
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  // System calls, faults and forks: stub threads of several processes are used.
  const auto r = s.run({"python3", "-c",
                        "import os\n"
                        "for i in range(8):\n"
                        "    pid = os.fork()\n"
                        "    if pid == 0:\n"
                        "        bytearray(1 << 20); [os.getppid() for _ in range(200)]; os._exit(0)\n"
                        "    os.waitpid(pid, 0)\n"
                        "print('ok')\n"});
  ASSERT_EQ(r.out, "ok\n") << r.err;
  std::istringstream tasks(read_text("/sys/fs/cgroup/cpu/corral/" + s.id + "/tasks"));
  int sentry_threads = 0, stub_threads = 0, bound_stub_threads = 0;
  for (std::string tid; tasks >> tid;) {
    const auto status = read_text("/proc/" + tid + "/status");
    const auto tgid = field(status, "Tgid");
    const auto allowed = field(status, "Cpus_allowed_list");
    if (tgid.empty() || allowed.empty()) continue;  // gone meanwhile
    const auto cmdline = read_text("/proc/" + tgid + "/cmdline");
    if (cmdline.find("runsc-sandbox") != std::string::npos) {
      ++sentry_threads;
      EXPECT_EQ(allowed, ours) << "sentry thread " << tid;
    } else if (cmdline.empty()) {  // a stub: it unmapped everything, its argv too
      ++stub_threads;
      bound_stub_threads += one_cpu(allowed) ? 1 : 0;
    }
  }
  EXPECT_GT(sentry_threads, 0);
  EXPECT_GT(stub_threads, 0);
  EXPECT_GT(bound_stub_threads, 0) << "of " << stub_threads << " stub threads";
}

TEST_F(GvisorRuntimeTest, DestroyLeavesNothingBehind) {
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  EXPECT_FALSE(processes_mentioning(s.id).empty());
  EXPECT_FALSE(cgroup_dirs_of(s.id).empty());
  EXPECT_TRUE(corral::gvisor_detail::is_mount_point(data_dir_ + "/sandboxes/" + s.id +
                                                    "/bundle/rootfs"));
  // The link's FIFOs are on a tmpfs of the sandbox's own (their times never reach a journal).
  const std::string link = data_dir_ + "/sandboxes/" + s.id + "/link";
  EXPECT_TRUE(corral::gvisor_detail::is_mount_point(link));
  struct statfs fs {};
  ASSERT_EQ(statfs((link + "/stdin.fifo").c_str(), &fs), 0);
  EXPECT_EQ(fs.f_type, static_cast<decltype(fs.f_type)>(TMPFS_MAGIC));
  struct stat fifo {};
  ASSERT_EQ(lstat((link + "/stdout.fifo").c_str(), &fifo), 0);
  EXPECT_TRUE(S_ISFIFO(fifo.st_mode));
  rt_->destroy(s.id);
  EXPECT_TRUE(s.events->wait_closed());
  EXPECT_EQ(s.events->reason(), "sandbox destroyed");
  expect_gone(s.id);
  EXPECT_FALSE(s.link->send(make_hello(2)));
  // Idempotent, and harmless for ids that never existed or are not ids at all.
  rt_->destroy(s.id);
  rt_->destroy(wire::new_id("sb-"));
  rt_->destroy("../../etc");
  EXPECT_EQ(s.events->closed_count(), 1);
  expect_gone(s.id);
}

// docs/promises.md P13: what a sandbox leaves in its writable layer (links to host paths, deep trees) is removed
// without following anything out of the sandbox's tree.
TEST_F(GvisorRuntimeTest, DestroyNeverFollowsLinksTheSandboxPlanted) {
  const std::string victim_dir = data_dir_ + "/victim";
  ASSERT_EQ(mkdir(victim_dir.c_str(), 0755), 0);
  std::ofstream(victim_dir + "/file") << "keep\n";
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  const auto r = s.sh("ln -s " + victim_dir + " /root/dir-link && ln -s " + victim_dir +
                      "/file /root/file-link && ln -s / /root/root-link &&"
                      " cd /root && for i in $(seq 1 150); do mkdir d && cd d || exit 1; done &&"
                      " echo planted");
  EXPECT_EQ(r.out, "planted\n") << r.err;
  rt_->destroy(s.id);
  expect_gone(s.id);
  EXPECT_EQ(read_text(victim_dir + "/file"), "keep\n");
  EXPECT_TRUE(exists("/usr/bin/sh"));
}

TEST_F(GvisorRuntimeTest, AdoptAfterExecutorRestart) {
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  ASSERT_EQ(s.sh("echo kept > /tmp/adopt-marker").exit_code, 0);
  // The executor goes away: its link closes (no callback) and its runtime object is dropped.
  s.link->close();
  s.link->close();
  EXPECT_FALSE(s.link->send(make_hello(2)));
  rt_.reset();
  EXPECT_EQ(s.events->closed_count(), 0);
  make_runtime();

  const auto ids = rt_->list_host_sandboxes();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), s.id), 1);
  sandbox again;
  again.id = s.id;
  again.next_exec = 1000;  // exec ids are unique per sandbox, across sessions
  again.events = std::make_shared<recorder>();
  auto r = rt_->adopt(s.id, again.events);
  ASSERT_TRUE(r.link) << r.error;
  again.link = r.link;
  ASSERT_TRUE(again.hello(2));
  const auto cat = again.sh("cat /tmp/adopt-marker");
  EXPECT_TRUE(cat.exited);
  EXPECT_EQ(cat.out, "kept\n") << "exit " << cat.exit_code << " signal " << cat.signal << ": "
                                << cat.err;
  EXPECT_EQ(again.events->malformed(), 0);
  // Adopting again replaces the link: the first listener hears nothing more.
  auto third = std::make_shared<recorder>();
  auto r3 = rt_->adopt(s.id, third);
  ASSERT_TRUE(r3.link) << r3.error;
  EXPECT_FALSE(again.link->send(make_hello(3)));
  EXPECT_TRUE(r3.link->send(make_hello(3)));
  EXPECT_TRUE(third->wait_ack(3));
  rt_->destroy(s.id);
  EXPECT_TRUE(third->wait_closed());
  EXPECT_EQ(again.events->closed_count(), 0);
  expect_gone(s.id);
}

TEST_F(GvisorRuntimeTest, OutputWrittenWhileDisconnectedWaitsForTheNextExecutor) {
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  ASSERT_TRUE(s.link->send(make_spawn(7, {"/bin/sh", "-c", "sleep 1; echo written-while-away"})));
  ASSERT_TRUE(s.events->wait_started(7));
  s.link->close();
  // Wait (without reading) until init has written something into its stdout FIFO.
  const std::string fifo = data_dir_ + "/sandboxes/" + s.id + "/link/stdout.fifo";
  const int peek = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(peek, 0);
  pollfd p{peek, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, static_cast<int>(std::chrono::milliseconds(event_deadline).count())), 1);
  close(peek);

  auto later = std::make_shared<recorder>();
  auto r = rt_->adopt(s.id, later);
  ASSERT_TRUE(r.link) << r.error;
  const auto result = later->wait_exec(7);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->out, "written-while-away\n");
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(later->malformed(), 0);
}

// Runs only as the child of AdoptAfterExecutorKill9: starts a sandbox on the parent's data dir,
// leaves a file in it, reports the id on fd 3 and waits to be killed.
// Not a test of its own (hence DISABLED_): the child process that AdoptAfterExecutorKill9 runs
// and kills with -9 while it holds a sandbox.
TEST_F(GvisorRuntimeTest, DISABLED_ExecutorKilledMidSessionChild) {
  ASSERT_TRUE(child_role_) << "run only by AdoptAfterExecutorKill9";
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  ASSERT_EQ(s.sh("echo before-kill > /tmp/k").exit_code, 0);
  // A process of this session that is still running when the executor dies.
  ASSERT_TRUE(s.link->send(make_spawn(99, {"/bin/sh", "-c", "exec sleep 86398"})));
  ASSERT_TRUE(s.events->wait_started(99));
  const std::string line = s.id + "\n";
  ASSERT_EQ(write(3, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  char c;
  (void)!read(STDIN_FILENO, &c, 1);  // until SIGKILL
}

TEST_F(GvisorRuntimeTest, AdoptAfterExecutorKill9) {
  int report[2], hold[2];
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, hold[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, report[1], 3);
  const std::string filter = "--gtest_filter=GvisorRuntimeTest.DISABLED_ExecutorKilledMidSessionChild";
  const std::string also_disabled = "--gtest_also_run_disabled_tests";
  const std::string env_dir = std::string(child_role_env) + "=" + data_dir_;
  std::vector<std::string> env_s = {env_dir, "PATH=/usr/bin:/bin"};
  if (const char* r = getenv("CORRAL_RUNSC")) env_s.push_back(std::string("CORRAL_RUNSC=") + r);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe";
  char* argv[] = {self.data(), const_cast<char*>(filter.c_str()),
                  const_cast<char*>(also_disabled.c_str()), nullptr};
  pid_t child = -1;
  ASSERT_EQ(posix_spawn(&child, "/proc/self/exe", &actions, nullptr, argv, envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(report[1]);
  close(hold[0]);

  // Wait for the child's report (an event, with a deadline).
  std::string id;
  pollfd p{report[0], POLLIN, 0};
  char buf[128];
  while (id.find('\n') == std::string::npos &&
         poll(&p, 1, static_cast<int>(std::chrono::milliseconds(event_deadline).count())) == 1) {
    const ssize_t n = read(report[0], buf, sizeof buf);
    if (n <= 0) break;
    id.append(buf, static_cast<std::size_t>(n));
  }
  ASSERT_NE(id.find('\n'), std::string::npos) << "the child reported no sandbox";
  id.pop_back();
  started_.push_back(id);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));
  close(report[0]);
  close(hold[1]);

  // This process plays the restarted executor.
  sandbox again;
  again.id = id;
  again.next_exec = 1000;
  again.events = std::make_shared<recorder>();
  auto r = rt_->adopt(id, again.events);
  ASSERT_TRUE(r.link) << r.error;
  again.link = r.link;
  ASSERT_TRUE(again.hello(2));
  EXPECT_EQ(again.sh("cat /tmp/k").out, "before-kill\n");
  // The new session ended the old session's process (init's rule); its Exited reaches us.
  const auto old = again.events->wait_exec(99);
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->signal, SIGKILL);
  EXPECT_EQ(again.events->malformed(), 0);
  rt_->destroy(id);
  expect_gone(id);
}

TEST_F(GvisorRuntimeTest, AdoptOfUnknownSandboxFails) {
  auto r = rt_->adopt(wire::new_id("sb-"), std::make_shared<recorder>());
  EXPECT_FALSE(r.link);
  EXPECT_NE(r.error, "");
  auto bad = rt_->adopt("sb-../../x", std::make_shared<recorder>());
  EXPECT_FALSE(bad.link);
}

TEST_F(GvisorRuntimeTest, SandboxDeathClosesTheLink) {
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  // Kill the sandbox behind the runtime's back (as an OOM kill would).
  auto argv = std::vector<std::string>{runsc_binary(), "--root", data_dir_ + "/runsc", "state", s.id};
  command_spec spec;
  spec.argv = argv;
  const auto st = run_command(spec);
  ASSERT_TRUE(st.ok()) << st.describe(500);
  const auto json = corral::gvisor_detail::parse_json(st.out);
  ASSERT_TRUE(json);
  const auto pid = json->get_int("pid");
  ASSERT_TRUE(pid && *pid > 0);
  ASSERT_EQ(kill(static_cast<pid_t>(*pid), SIGKILL), 0);
  ASSERT_TRUE(s.events->wait_closed());
  EXPECT_EQ(s.events->reason().rfind("sandbox exited", 0), 0u) << s.events->reason();
  EXPECT_FALSE(s.link->send(make_hello(2)));
  auto r = rt_->adopt(s.id, std::make_shared<recorder>());
  EXPECT_FALSE(r.link);
  rt_->destroy(s.id);
  EXPECT_EQ(s.events->closed_count(), 1);
  expect_gone(s.id);
}

TEST_F(GvisorRuntimeTest, StartFailureCleansUp) {
  // A runsc that fails.
  cfg_.runsc_path = "/bin/false";
  make_runtime();
  corral::sandbox_spec spec;
  spec.id = wire::new_id("sb-");
  auto r = rt_->start(spec, std::make_shared<recorder>());
  EXPECT_FALSE(r.link);
  EXPECT_NE(r.error.find("runsc run"), std::string::npos) << r.error;
  expect_gone(spec.id);

  // A runsc that does not exist is refused up front.
  cfg_.runsc_path = data_dir_ + "/no-such-runsc";
  auto missing = corral::make_gvisor_runtime(cfg_);
  EXPECT_FALSE(missing.runtime);
  EXPECT_NE(missing.error, "");

  // Specs the runtime refuses before creating anything.
  cfg_.runsc_path = runsc_binary();
  make_runtime();
  corral::sandbox_spec bad;
  bad.id = "sb-short";
  EXPECT_FALSE(rt_->start(bad, std::make_shared<recorder>()).link);
  bad.id = wire::new_id("sb-");
  bad.pids_limit = cfg_.max_pids_limit + 1;
  EXPECT_FALSE(rt_->start(bad, std::make_shared<recorder>()).link);
  bad.pids_limit = 0;
  bad.image = "im-doesnotexist";
  EXPECT_FALSE(rt_->start(bad, std::make_shared<recorder>()).link);
  expect_gone(bad.id);

  // Starting an id twice fails without harming the first sandbox.
  auto s = start();
  ASSERT_TRUE(s.link);
  corral::sandbox_spec dup;
  dup.id = s.id;
  auto again = rt_->start(dup, std::make_shared<recorder>());
  EXPECT_FALSE(again.link);
  ASSERT_TRUE(s.hello(7));
}

TEST_F(GvisorRuntimeTest, LimitsAreAppliedFromOutside) {
  corral::sandbox_spec spec;
  spec.pids_limit = 24;
  spec.memory_mib = 256;
  spec.cpu_millis = 500;
  auto s = start(spec);
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  const std::string cpu_dir = "/sys/fs/cgroup/cpu/corral/" + s.id;
  EXPECT_EQ(read_text(cpu_dir + "/cpu.cfs_period_us"), "100000\n");
  EXPECT_EQ(read_text(cpu_dir + "/cpu.cfs_quota_us"), "50000\n");
  EXPECT_EQ(read_text("/sys/fs/cgroup/memory/corral/" + s.id + "/memory.limit_in_bytes"),
            std::to_string(256ull << 20) + "\n");
  // A fork bomb hits RLIMIT_NPROC inside (EAGAIN); the sandbox survives and stays usable.
  const auto bomb = s.run({"python3", "-c",
                           "import os, signal\n"
                           "pids, err = [], None\n"
                           "for i in range(60):\n"
                           "    try:\n"
                           "        pid = os.fork()\n"
                           "    except OSError as e:\n"
                           "        err = e.errno\n"
                           "        break\n"
                           "    if pid == 0:\n"
                           "        signal.pause()\n"
                           "        os._exit(0)\n"
                           "    pids.append(pid)\n"
                           "for p in pids: os.kill(p, 9)\n"
                           "for p in pids: os.waitpid(p, 0)\n"
                           "print(len(pids) < 60, err)\n"});
  EXPECT_EQ(bomb.out, "True 11\n") << bomb.err;
  // The limit cannot be raised from inside.
  const auto raise = s.run({"python3", "-c",
                            "import resource\n"
                            "try:\n"
                            "    resource.setrlimit(resource.RLIMIT_NPROC, (100000, 100000))\n"
                            "    print('raised')\n"
                            "except (ValueError, OSError):\n"
                            "    print('refused')\n"});
  EXPECT_EQ(raise.out, "refused\n") << raise.err;
  EXPECT_EQ(s.sh("echo alive").out, "alive\n");
  const auto u = rt_->usage(s.id);
  EXPECT_GT(u.cpu_usage_ns, 0u);
  EXPECT_GT(u.memory_bytes, 0u);
  EXPECT_FALSE(u.oom_killed);
}

// At the default pids limit, a fork bomb gets EAGAIN from RLIMIT_NPROC inside the sandbox long
// before the host-side pids cgroup (which would kill the whole sandbox) is reached.
TEST_F(GvisorRuntimeTest, ForkBombAtTheDefaultLimitStaysInside) {
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  const std::string pids_dir = "/sys/fs/cgroup/pids/corral/" + s.id;
  const auto idle = read_text(pids_dir + "/pids.current");
  const auto bomb = s.run({"python3", "-c",
                           "import os, signal\n"
                           "pids, err = [], None\n"
                           "while True:\n"
                           "    try:\n"
                           "        pid = os.fork()\n"
                           "    except OSError as e:\n"
                           "        err = e.errno\n"
                           "        break\n"
                           "    if pid == 0:\n"
                           "        signal.pause()\n"
                           "        os._exit(0)\n"
                           "    pids.append(pid)\n"
                           "print(len(pids), err, 'processes')\n"
                           "for p in pids: os.kill(p, 9)\n"
                           "for p in pids: os.waitpid(p, 0)\n"});
  auto line = [](std::string s) { return s.substr(0, s.find('\n')); };
  std::printf("host tasks: idle %s, after the fork bomb: peak %s of pids.max %s; %s\n",
              line(idle).c_str(), line(read_text(pids_dir + "/pids.peak")).c_str(),
              line(read_text(pids_dir + "/pids.max")).c_str(), line(bomb.out).c_str());
  EXPECT_EQ(bomb.exit_code, 0) << bomb.err;
  EXPECT_NE(bomb.out.find(" 11 processes"), std::string::npos) << bomb.out;
  const auto threads = s.run({"python3", "-c",
                              "import threading\n"
                              "stop = threading.Event()\n"
                              "n = 0\n"
                              "try:\n"
                              "    while True:\n"
                              "        threading.Thread(target=stop.wait).start()\n"
                              "        n += 1\n"
                              "except RuntimeError:\n"
                              "    pass\n"
                              "print(n, 'threads')\n"
                              "stop.set()\n"});
  std::printf("after the thread bomb: peak %s; %s\n",
              line(read_text(pids_dir + "/pids.peak")).c_str(), line(threads.out).c_str());
  EXPECT_EQ(threads.exit_code, 0) << threads.err;
  EXPECT_EQ(read_text(pids_dir + "/pids.events"), "max 0\n");
  EXPECT_EQ(s.sh("echo alive").out, "alive\n");
}

TEST_F(GvisorRuntimeTest, SendAfterCloseAndOversizedPayloadsAreRefused) {
  auto s = start();
  ASSERT_TRUE(s.link);
  EXPECT_FALSE(s.link->send(std::vector<uint8_t>(wire::max_frame_payload + 1, 0)));
  ASSERT_TRUE(s.hello(5));
  s.link->close();
  EXPECT_FALSE(s.link->send(make_hello(6)));
}

TEST_F(GvisorRuntimeTest, MemoryBackedWritableLayerLeavesTheImageUntouched) {
  cfg_.writable_layer = "runsc-memory";
  make_runtime();
  auto s = start();
  ASSERT_TRUE(s.link);
  ASSERT_TRUE(s.hello(1));
  EXPECT_EQ(s.sh("echo x > /root/in-memory && echo y > /etc/passwd && cat /root/in-memory").out,
            "x\n");
  const std::string image = read_text(data_dir_ + "/sandboxes/" + s.id + "/image");
  EXPECT_FALSE(exists(image + "/root/in-memory"));
  EXPECT_NE(read_text(image + "/etc/passwd"), "y\n");
  // No host overlay: the only mount is the tmpfs of the link's FIFOs.
  EXPECT_EQ(corral::gvisor_detail::mounts_under(data_dir_),
            std::vector<std::string>{data_dir_ + "/sandboxes/" + s.id + "/link"});
  rt_->destroy(s.id);
  expect_gone(s.id);
}

TEST_F(GvisorRuntimeTest, ConcurrentStartsAndDestroys) {
  constexpr int sandboxes = 4;
  std::vector<std::thread> threads;
  std::vector<std::string> outputs(sandboxes);
  std::vector<std::string> ids(sandboxes);
  for (int i = 0; i < sandboxes; ++i) ids[i] = wire::new_id("sb-");
  for (int i = 0; i < sandboxes; ++i) {
    threads.emplace_back([&, i] {
      sandbox s;
      s.id = ids[i];
      s.events = std::make_shared<recorder>();
      corral::sandbox_spec spec;
      spec.id = s.id;
      auto r = rt_->start(spec, s.events);
      if (!r.link) {
        outputs[i] = "start failed: " + r.error;
        return;
      }
      s.link = r.link;
      if (!s.hello(static_cast<uint64_t>(i + 1))) {
        outputs[i] = "no HelloAck";
        return;
      }
      outputs[i] = s.sh("echo " + std::to_string(i)).out;
      rt_->destroy(s.id);
      if (!s.events->wait_closed()) outputs[i] += "not closed";
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < sandboxes; ++i) {
    EXPECT_EQ(outputs[i], std::to_string(i) + "\n");
    expect_gone(ids[i]);
  }
}

}  // namespace
