// Unit tests of the gvisor runtime's host-side parts that need neither runsc nor corral-init:
// config validation, the OCI spec, the JSON reader, no-follow tree removal (docs/promises.md P13), running
// commands, the host image recipe, the link reactor over plain pipes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "executor/runtime/gvisor_runtime.hpp"
#include "executor/runtime/host_image.hpp"
#include "executor/runtime/json_text.hpp"
#include "executor/runtime/link_reactor.hpp"
#include "executor/runtime/oci_spec.hpp"
#include "executor/runtime/process.hpp"
#include "executor/runtime/tree_fs.hpp"
#include "schemas/frame.hpp"

namespace {

using namespace corral::gvisor_detail;

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class RuntimeHostFs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/corral-runtime-unit-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { EXPECT_EQ(remove_tree(dir_), ""); }
  std::string dir_;
};

TEST(RuntimeConfig, DefaultsAreValid) { EXPECT_EQ(corral::gvisor_config{}.validate(), ""); }

TEST(RuntimeConfig, RejectsBadValues) {
  auto bad = [](auto mutate) {
    corral::gvisor_config c;
    mutate(c);
    return c.validate();
  };
  EXPECT_NE(bad([](auto& c) { c.data_dir = "/var/a,b"; }), "");
  EXPECT_NE(bad([](auto& c) { c.data_dir = ""; }), "");
  EXPECT_NE(bad([](auto& c) { c.platform = "native"; }), "");
  EXPECT_NE(bad([](auto& c) { c.cgroup_parent = "../x"; }), "");
  EXPECT_NE(bad([](auto& c) { c.writable_layer = "tmpfs"; }), "");
  EXPECT_NE(bad([](auto& c) { c.default_pids_limit = 0; }), "");
  EXPECT_NE(bad([](auto& c) { c.max_pids_limit = c.default_pids_limit - 1; }), "");
  EXPECT_NE(bad([](auto& c) { c.cpu_period_us = 10; }), "");
  EXPECT_NE(bad([](auto& c) { c.adopt_resync_bytes = 100; }), "");
  EXPECT_NE(bad([](auto& c) { c.max_send_queue_bytes = 4096; }), "");
  EXPECT_NE(bad([](auto& c) { c.runsc_timeout_ms = 10; }), "");
  EXPECT_EQ(bad([](auto& c) { c.adopt_resync_bytes = 0; }), "");
}

TEST(RuntimeJson, ParsesRunscState) {
  const auto v = parse_json(
      "{\n  \"ociVersion\": \"1.0.2-dev\",\n  \"id\": \"sb-x\",\n  \"status\": \"running\",\n"
      "  \"pid\": 11010,\n  \"bundle\": \"/tmp/a\\\"b\",\n  \"annotations\": {\"k\": [1, true, null]}\n}");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->get_string("status"), "running");
  EXPECT_EQ(v->get_int("pid").value_or(0), 11010);
  EXPECT_EQ(v->get_string("bundle"), "/tmp/a\"b");
  EXPECT_FALSE(v->get_int("missing"));
}

TEST(RuntimeJson, RejectsMalformedAndOversizedInput) {
  EXPECT_FALSE(parse_json("{\"a\": }"));
  EXPECT_FALSE(parse_json("[1, 2"));
  EXPECT_FALSE(parse_json("\"unterminated"));
  EXPECT_FALSE(parse_json("{} trailing"));
  EXPECT_FALSE(parse_json(std::string(100, '['), 1024, 32));  // too deep
  EXPECT_FALSE(parse_json("[1]", 2));                          // too large
  const auto null_list = parse_json("null");
  ASSERT_TRUE(null_list);
  EXPECT_EQ(null_list->type, json_value::kind::null);
}

TEST(RuntimeJson, WriterEscapesAndRoundTrips) {
  json_writer w;
  w.begin_object().key("s").value("a\"b\\c\n\x01").key("n").value(int64_t{-3});
  w.key("list").string_array({"x", "y"}).key("b").value(false).end_object();
  const auto v = parse_json(w.text());
  ASSERT_TRUE(v) << w.text();
  EXPECT_EQ(v->get_string("s"), "a\"b\\c\n\x01");
  EXPECT_EQ(v->get_int("n").value_or(0), -3);
  ASSERT_NE(v->get("list"), nullptr);
  EXPECT_EQ(v->get("list")->array.size(), 2u);
}

TEST(RuntimeOciSpec, DeclaresOnlyWhatTheSandboxMaySee) {
  oci_inputs in;
  in.root_path = "rootfs";
  in.init_host_path = "/opt/corral/bin/corral-init";
  in.cgroups_path = "/corral/sb-1";
  in.memory_limit_bytes = 256ull << 20;
  in.nproc_limit = 64;
  in.host_pids_max = 1024;
  in.open_files_limit = 4096;
  const auto v = parse_json(make_oci_config(in));
  ASSERT_TRUE(v);
  const auto* process = v->get("process");
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->get("args")->array.at(0).string, init_path_in_sandbox);
  ASSERT_EQ(process->get("env")->array.size(), 1u);
  EXPECT_EQ(process->get("env")->array[0].string.rfind("PATH=", 0), 0u);
  EXPECT_EQ(process->get("terminal")->boolean, false);
  // corral-init's set: the one every process it starts gets (it drops init_only_capability
  // from its bounding set first; tests/hostile/init_boundary_test.cpp checks what they get).
  std::string caps;
  int init_only = 0;
  for (const auto& c : process->get("capabilities")->get("bounding")->array) {
    if (c.string == init_only_capability) ++init_only;
    else caps += c.string + " ";
  }
  EXPECT_EQ(std::string(init_only_capability), "CAP_SYS_ADMIN");
  EXPECT_EQ(init_only, 1);
  EXPECT_EQ(caps.find("CAP_SYS_ADMIN"), std::string::npos);
  EXPECT_EQ(caps.find("CAP_SYS_RESOURCE"), std::string::npos);
  EXPECT_EQ(caps.find("CAP_SYS_PTRACE"), std::string::npos);
  EXPECT_EQ(caps.find("CAP_NET_RAW"), std::string::npos);
  bool nproc = false;
  for (const auto& r : process->get("rlimits")->array)
    if (r.get_string("type") == "RLIMIT_NPROC")
      nproc = r.get_int("hard") == 64 && r.get_int("soft") == 64;
  EXPECT_TRUE(nproc);
  // Host paths: /usr (read-only) and the init binary (read-only), nothing else.
  for (const auto& m : v->get("mounts")->array) {
    if (m.get_string("type") != "bind") continue;
    const auto source = m.get_string("source");
    EXPECT_TRUE(source == "/usr" || source == in.init_host_path) << source;
    bool ro = false;
    for (const auto& o : m.get("options")->array) ro = ro || o.string == "ro";
    EXPECT_TRUE(ro) << source;
  }
  // /usr has exclusive file access (runsc's mount hint: share "container"), nothing else has
  // a hint.
  const auto* annotations = v->get("annotations");
  ASSERT_NE(annotations, nullptr);
  EXPECT_EQ(annotations->get_string(std::string(usr_mount_hint) + ".source"), "/usr");
  EXPECT_EQ(annotations->get_string(std::string(usr_mount_hint) + ".type"), "bind");
  EXPECT_EQ(annotations->get_string(std::string(usr_mount_hint) + ".share"), "container");
  EXPECT_EQ(annotations->object.size(), 3u);
  const auto* linux_section = v->get("linux");
  EXPECT_EQ(linux_section->get_string("cgroupsPath"), "/corral/sb-1");
  EXPECT_EQ(linux_section->get("resources")->get("memory")->get_int("limit"), 256ll << 20);
  EXPECT_EQ(linux_section->get("resources")->get("pids")->get_int("limit"), 1024);
  std::string namespaces;
  for (const auto& n : linux_section->get("namespaces")->array) namespaces += n.get_string("type") + " ";
  EXPECT_EQ(namespaces, "pid network ipc uts mount ");
}

TEST_F(RuntimeHostFs, RemoveTreeNeverFollowsLinksOutOfTheTree) {
  const std::string outside = dir_ + "/outside";
  ASSERT_EQ(mkdir(outside.c_str(), 0755), 0);
  write(outside + "/victim", "keep");
  const std::string tree = dir_ + "/tree";
  ASSERT_EQ(make_dirs(tree + "/a/b", 0755), "");
  write(tree + "/a/b/file", "x");
  ASSERT_EQ(symlink(outside.c_str(), (tree + "/a/dirlink").c_str()), 0);
  ASSERT_EQ(symlink((outside + "/victim").c_str(), (tree + "/a/b/filelink").c_str()), 0);
  ASSERT_EQ(link((outside + "/victim").c_str(), (tree + "/hardlink").c_str()), 0);
  ASSERT_EQ(mkfifo((tree + "/fifo").c_str(), 0600), 0);
  ASSERT_EQ(make_dirs(tree + "/noperm/inner", 0755), "");
  ASSERT_EQ(chmod((tree + "/noperm").c_str(), 0), 0);
  EXPECT_EQ(remove_tree(tree), "");
  EXPECT_FALSE(exists(tree));
  EXPECT_TRUE(exists(outside + "/victim"));
  std::ifstream in(outside + "/victim");
  std::string text;
  in >> text;
  EXPECT_EQ(text, "keep");
}

TEST_F(RuntimeHostFs, RemoveTreeOfASymlinkRemovesTheLinkOnly) {
  const std::string target = dir_ + "/target";
  ASSERT_EQ(make_dirs(target, 0755), "");
  write(target + "/f", "x");
  ASSERT_EQ(symlink(target.c_str(), (dir_ + "/link").c_str()), 0);
  EXPECT_EQ(remove_tree(dir_ + "/link"), "");
  EXPECT_FALSE(exists(dir_ + "/link"));
  EXPECT_TRUE(exists(target + "/f"));
  EXPECT_EQ(remove_tree(dir_ + "/absent"), "");
}

TEST_F(RuntimeHostFs, RemoveTreeHandlesTreesDeeperThanItsFdBudget) {
  // 300 levels with at most 8 directories open at a time.
  std::string path = dir_ + "/deep";
  ASSERT_EQ(mkdir(path.c_str(), 0755), 0);
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(mkdirat(fd, "d", 0755), 0);
    const int next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
    close(fd);
    ASSERT_GE(next, 0);
    fd = next;
    if (i % 50 == 0) {
      const int f = openat(fd, "file", O_WRONLY | O_CREAT, 0644);
      close(f);
    }
  }
  close(fd);
  EXPECT_EQ(remove_tree(dir_ + "/deep", 8), "");
  EXPECT_FALSE(exists(dir_ + "/deep"));
}

TEST_F(RuntimeHostFs, RemoveTreeRefusesToEnterAMountPoint) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount";
  const std::string tree = dir_ + "/tree";
  ASSERT_EQ(make_dirs(tree + "/mnt", 0755), "");
  ASSERT_EQ(mount("tmpfs", (tree + "/mnt").c_str(), "tmpfs", 0, "size=1m"), 0);
  write(tree + "/mnt/on-other-fs", "x");
  EXPECT_NE(remove_tree(tree), "");
  EXPECT_TRUE(exists(tree + "/mnt/on-other-fs"));
  ASSERT_EQ(umount2((tree + "/mnt").c_str(), 0), 0);
  EXPECT_EQ(remove_tree(tree), "");
}

TEST(RuntimeRunCommand, CapturesOutputExitCodeAndGivesOnlyStdio) {
  command_spec spec;
  // The child sees only fds 0-2 and only the given environment.
  const int leaked = open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  ASSERT_GE(leaked, 3);
  spec.argv = {"/bin/sh", "-c",
               "echo out; echo err >&2; test -e /proc/self/fd/" + std::to_string(leaked) +
                   " && echo leaked; echo \"env=$(env | grep -v -e ^PWD= -e ^SHLVL= -e ^_= | tr '\\n' ' ')\"; exit 7"};
  spec.env = {"PATH=/usr/bin:/bin", "ONLY=this"};
  const auto r = run_command(spec);
  close(leaked);
  EXPECT_TRUE(r.started);
  ASSERT_TRUE(r.exit_code);
  EXPECT_EQ(*r.exit_code, 7);
  EXPECT_EQ(r.out, "out\nenv=PATH=/usr/bin:/bin ONLY=this \n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(RuntimeRunCommand, ReportsExecFailureAndTimeout) {
  command_spec missing;
  missing.argv = {"/nonexistent/binary"};
  const auto m = run_command(missing);
  EXPECT_FALSE(m.started);
  EXPECT_NE(m.error.find("No such file"), std::string::npos) << m.error;

  command_spec slow;
  slow.argv = {"/bin/sleep", "30"};
  slow.timeout = std::chrono::milliseconds(200);
  const auto s = run_command(slow);
  EXPECT_TRUE(s.timed_out);
  EXPECT_EQ(s.term_signal, SIGKILL);
  EXPECT_FALSE(s.ok());
}

TEST_F(RuntimeHostFs, HostImageIsMinimalAndContentAddressed) {
  const auto img = ensure_host_image(dir_ + "/images");
  ASSERT_EQ(img.error, "");
  EXPECT_EQ(img.rootfs, dir_ + "/images/host/" + img.hash + "/rootfs");
  for (const char* p : {"etc/passwd", "etc/group", "etc/hosts", "etc/resolv.conf", "etc/ld.so.cache",
                        "tmp", "var/tmp", "root", "proc", "dev", "sys", "usr", ".corral/init"})
    EXPECT_TRUE(exists(img.rootfs + "/" + p)) << p;
  for (const char* p : {"etc/shadow", "etc/gshadow", "etc/ssl/private", "etc/ssh", "etc/machine-id",
                        "etc/environment", "home/corral", "var/lib", "opt", "work"})
    EXPECT_FALSE(exists(img.rootfs + "/" + p)) << p;
  struct stat st {};
  ASSERT_EQ(lstat((img.rootfs + "/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  char target[64] = {};
  ASSERT_GT(readlink((img.rootfs + "/bin").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "usr/bin");
  // Idempotent: the same inputs give the same directory, not a second build.
  const auto again = ensure_host_image(dir_ + "/images");
  EXPECT_EQ(again.hash, img.hash);
  EXPECT_EQ(again.error, "");
  // Other versions are collected unless a sandbox still uses them.
  ASSERT_EQ(make_dirs(dir_ + "/images/host/old1/rootfs", 0755), "");
  ASSERT_EQ(make_dirs(dir_ + "/images/host/old2/rootfs", 0755), "");
  EXPECT_EQ(gc_host_images(dir_ + "/images", img.hash, {dir_ + "/images/host/old2/rootfs"}), "");
  EXPECT_FALSE(exists(dir_ + "/images/host/old1"));
  EXPECT_TRUE(exists(dir_ + "/images/host/old2"));
  EXPECT_TRUE(exists(img.rootfs));
}

// The link reactor over two plain pipes and an eventfd standing in for the sandbox's pidfd.
class RuntimeLinkReactor : public ::testing::Test {
 protected:
  struct listener final : corral::init_listener {
    void on_frame(std::vector<uint8_t>) override {}
    void on_closed(corral::close_reason, std::string) override {
      std::lock_guard<std::mutex> lock(mu);
      closed = true;
      cv.notify_all();
    }
    bool wait_closed(std::chrono::seconds within) {
      std::unique_lock<std::mutex> lock(mu);
      return cv.wait_for(lock, within, [&] { return closed; });
    }
    std::mutex mu;
    std::condition_variable cv;
    bool closed = false;
  };

  void SetUp() override {
    std::string err;
    reactor_ = link_reactor::create(link_limits{}, err);
    ASSERT_NE(reactor_, nullptr) << err;
    int to_init[2], from_init[2];
    ASSERT_EQ(pipe2(to_init, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(from_init, O_CLOEXEC | O_NONBLOCK), 0);
    ASSERT_EQ(fcntl(to_init[1], F_SETFL, O_NONBLOCK), 0);
    init_stdin_.reset(to_init[0]);
    init_stdout_.reset(from_init[1]);
    const int death = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ASSERT_GE(death, 0);
    death_ = death;
    link_ = reactor_->attach("sb-test", corral::unique_fd(to_init[1]),
                             corral::unique_fd(from_init[0]), corral::unique_fd(dup(death)),
                             listener_, {});
    ASSERT_NE(link_, nullptr);
  }
  void TearDown() override {
    if (link_) link_->close();
    reactor_.reset();
    if (death_ >= 0) close(death_);
  }

  std::unique_ptr<link_reactor> reactor_;
  std::shared_ptr<listener> listener_ = std::make_shared<listener>();
  std::shared_ptr<corral::init_link> link_;
  corral::unique_fd init_stdin_, init_stdout_;
  int death_ = -1;
};

// A payload that names its sender and sequence number and is checkable byte by byte.
std::vector<uint8_t> numbered_payload(uint32_t sender, uint32_t seq, std::size_t size) {
  std::vector<uint8_t> p(std::max<std::size_t>(size, 8));
  std::memcpy(p.data(), &sender, 4);
  std::memcpy(p.data() + 4, &seq, 4);
  for (std::size_t i = 8; i < p.size(); ++i) p[i] = static_cast<uint8_t>(sender * 31 + seq + i);
  return p;
}

TEST_F(RuntimeLinkReactor, FramesFromManyThreadsArriveWholeAndInOrder) {
  // Senders race each other and a slow reader; some frames are larger than the pipe, so the
  // first write on the sender's thread is partial and the I/O thread finishes it.
  constexpr uint32_t senders = 4, per_sender = 150;
  std::atomic<uint32_t> refused{0};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < senders; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t i = 0; i < per_sender; ++i) {
        const std::size_t size = (i % 10 == 0) ? 200 * 1024 : 16 + (i * 7919 + t) % 3000;
        while (!link_->send(numbered_payload(t, i, size))) {
          ++refused;  // over the queue's cap while the reader lags: retry
          std::this_thread::yield();
        }
      }
    });
  }
  corral::wire::frame_reader reader;
  std::map<uint32_t, uint32_t> next_seq;
  uint32_t frames = 0;
  std::vector<uint8_t> buf(4096);  // a slow reader: small reads
  while (frames < senders * per_sender) {
    pollfd p{init_stdin_.get(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 30000), 1) << "frames stopped arriving after " << frames;
    const ssize_t n = ::read(init_stdin_.get(), buf.data(), buf.size());
    ASSERT_GT(n, 0);
    reader.feed(buf.data(), static_cast<std::size_t>(n));
    while (auto payload = reader.next()) {
      ASSERT_GE(payload->size(), 8u);
      uint32_t sender = 0, seq = 0;
      std::memcpy(&sender, payload->data(), 4);
      std::memcpy(&seq, payload->data() + 4, 4);
      ASSERT_LT(sender, senders);
      ASSERT_EQ(seq, next_seq[sender]) << "sender " << sender;
      const std::size_t size = (seq % 10 == 0) ? 200 * 1024 : 16 + (seq * 7919 + sender) % 3000;
      ASSERT_EQ(*payload, numbered_payload(sender, seq, size));
      ++next_seq[sender];
      ++frames;
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(reader.skipped_bytes(), 0u);
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST_F(RuntimeLinkReactor, SendingToAVanishedSandboxNeverRaisesSigpipe) {
  // This thread's SIGPIPE is not blocked and acts by default (kills): send() must neither
  // raise it nor leave it pending.
  struct sigaction old_action {};
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  ASSERT_EQ(sigaction(SIGPIPE, &default_action, &old_action), 0);
  sigset_t pipe_set, old_mask;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &pipe_set, &old_mask), 0);
  init_stdin_.reset();  // no reader left
  for (int i = 0; i < 3; ++i) (void)link_->send(numbered_payload(0, static_cast<uint32_t>(i), 64));
  sigset_t pending;
  sigemptyset(&pending);
  ASSERT_EQ(sigpending(&pending), 0);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
  // The sandbox "dies": its link reports it.
  const uint64_t one = 1;
  ASSERT_EQ(::write(death_, &one, sizeof one), 8);
  EXPECT_TRUE(listener_->wait_closed(std::chrono::seconds(30)));
  EXPECT_EQ(pthread_sigmask(SIG_SETMASK, &old_mask, nullptr), 0);
  EXPECT_EQ(sigaction(SIGPIPE, &old_action, nullptr), 0);
}

}  // namespace
