#include "executor/runtime/gvisor_runtime.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "executor/runtime/host_image.hpp"
#include "executor/runtime/json_text.hpp"
#include "executor/runtime/link_reactor.hpp"
#include "executor/runtime/mounts.hpp"
#include "executor/runtime/oci_spec.hpp"
#include "executor/runtime/orphan_reaper.hpp"
#include "executor/runtime/process.hpp"
#include "executor/runtime/sandbox_cgroups.hpp"
#include "executor/runtime/tree_fs.hpp"
#include "schemas/frame.hpp"
#include "schemas/ids.hpp"

namespace corral {

std::string gvisor_config::validate() const {
  auto token_ok = [](const std::string& s) {
    return !s.empty() && s.find_first_of(" \t\n,:\\") == std::string::npos;
  };
  if (!token_ok(data_dir)) return "data_dir must be a non-empty path without spaces, ',' ':' '\\'";
  if (runsc_path.empty()) return "runsc_path is empty";
  if (init_path.empty()) return "init_path is empty";
  if (platform != "ptrace" && platform != "kvm" && platform != "systrap")
    return "platform must be ptrace, kvm or systrap";
  if (cgroup_parent.empty() || cgroup_parent.find_first_not_of(
                                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                                   std::string::npos)
    return "cgroup_parent must be one path component of [A-Za-z0-9_-]";
  if (writable_layer != "overlayfs" && writable_layer != "runsc-memory")
    return "writable_layer must be overlayfs or runsc-memory";
  if (disk_limit_mib > 1024 * 1024) return "disk_limit_mib must be <= 1048576 (1 TiB)";
  if (disk_limit_mib != 0 && disk_limit_mib < 16) return "disk_limit_mib must be 0 or >= 16";
  if (disk_limit_mib > 0 && disk_inodes_limit < 1024) return "disk_inodes_limit must be >= 1024";
  if (disk_limit_mib > 0 && mkfs_ext4_path.empty()) return "mkfs_ext4_path is empty";
  if (default_pids_limit == 0) return "default_pids_limit must be > 0";
  if (max_pids_limit < default_pids_limit) return "max_pids_limit must be >= default_pids_limit";
  if (host_pids_per_sandbox_task == 0 || host_pids_per_sandbox_task > 64)
    return "host_pids_per_sandbox_task must be 1..64";
  if (host_pids_headroom > 1000000) return "host_pids_headroom must be <= 1000000";
  if (cpu_period_us < 1000 || cpu_period_us > 1000000) return "cpu_period_us must be 1000..1000000";
  if (open_files_limit < 64) return "open_files_limit must be >= 64";
  if (read_chunk_bytes < 4096) return "read_chunk_bytes must be >= 4096";
  if (fifo_pipe_bytes < 4096) return "fifo_pipe_bytes must be >= 4096";
  constexpr std::size_t largest_frame = wire::frame_header_bytes + wire::max_frame_payload;
  if (adopt_resync_bytes != 0 && adopt_resync_bytes < largest_frame)
    return "adopt_resync_bytes must be 0 or >= " + std::to_string(largest_frame);
  if (max_send_queue_bytes < largest_frame + adopt_resync_bytes)
    return "max_send_queue_bytes must hold adopt_resync_bytes plus one largest frame (" +
           std::to_string(largest_frame + adopt_resync_bytes) + ")";
  if (runsc_timeout_ms < 1000) return "runsc_timeout_ms must be >= 1000";
  if (destroy_timeout_ms < 1000) return "destroy_timeout_ms must be >= 1000";
  return {};
}

namespace gvisor_detail {
namespace {

using clock_type = std::chrono::steady_clock;

constexpr const char* sandbox_id_prefix = "sb-";
// Files a sandbox's link tmpfs may hold: its two FIFOs, and room to spare.
constexpr uint32_t link_fs_inodes = 8;
// Largest `runsc state` / `runsc list` output accepted.
constexpr std::size_t max_runsc_json_bytes = 4u * 1024 * 1024;

struct runsc_status {
  bool exists = false;
  std::string status;  // "created", "running", "stopped", ...
  int pid = 0;
  std::string error;   // why the state could not be read (when !exists)
};

bool path_exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// One mutex per sandbox id in use: start/adopt/destroy of one id never overlap, different ids
// never wait for each other. Entries live only while someone holds or waits for them.
class id_lock_table {
 public:
  class guard {
   public:
    guard(id_lock_table& table, const std::string& id) : table_(table), id_(id) {
      std::mutex* m = nullptr;
      {
        std::lock_guard<std::mutex> lock(table_.mu_);
        auto& e = table_.entries_[id_];
        ++e.users;
        m = &e.mu;
      }
      m->lock();
      mu_ = m;
    }
    ~guard() {
      mu_->unlock();
      std::lock_guard<std::mutex> lock(table_.mu_);
      auto it = table_.entries_.find(id_);
      if (--it->second.users == 0) table_.entries_.erase(it);
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;

   private:
    id_lock_table& table_;
    const std::string id_;
    std::mutex* mu_ = nullptr;
  };

 private:
  struct entry {
    std::mutex mu;
    int users = 0;
  };
  std::mutex mu_;
  std::map<std::string, entry> entries_;  // node-based: an entry's mutex never moves
};

// Runs cleanup steps unless released.
class rollback {
 public:
  explicit rollback(std::function<void()> fn) : fn_(std::move(fn)) {}
  ~rollback() {
    if (fn_) fn_();
  }
  void release() { fn_ = nullptr; }

 private:
  std::function<void()> fn_;
};

// Names a death by the memory cgroup's OOM killer (close_reason::out_of_memory), which the link
// alone cannot tell from any other death. Reads the cgroup on the I/O thread: a few small files.
class oom_aware_listener final : public init_listener {
 public:
  oom_aware_listener(std::shared_ptr<init_listener> inner, sandbox_cgroups cgroups)
      : inner_(std::move(inner)), cgroups_(std::move(cgroups)) {}
  void on_frame(std::vector<uint8_t> payload) override { inner_->on_frame(std::move(payload)); }
  void on_closed(close_reason reason, std::string detail) override {
    if (cgroups_.usage().oom_killed) {
      reason = close_reason::out_of_memory;
      detail = "out of memory (the sandbox reached its memory limit; " + detail + ")";
    }
    inner_->on_closed(reason, std::move(detail));
  }

 private:
  std::shared_ptr<init_listener> inner_;
  sandbox_cgroups cgroups_;
};

class gvisor_runtime final : public runtime {
 public:
  gvisor_runtime(gvisor_config cfg, std::string data_dir, std::string init_path, host_image image,
                 std::unique_ptr<link_reactor> reactor, std::string layer_template)
      : layer_template_(std::move(layer_template)),
        cfg_(std::move(cfg)),
        data_dir_(std::move(data_dir)),
        init_path_(std::move(init_path)),
        image_(std::move(image)),
        reactor_(std::move(reactor)) {}

  started start(const sandbox_spec& spec, std::shared_ptr<init_listener> listener) override;
  started adopt(const std::string& id, std::shared_ptr<init_listener> listener) override;
  void destroy(const std::string& id) override;
  std::vector<std::string> list_host_sandboxes() override;
  sandbox_usage usage(const std::string& id) override;
  std::string foreground(const std::string& id) override;
  std::string update_limits(const std::string& id, uint32_t cpu_millis,
                            uint32_t memory_mib) override;

 private:
  [[nodiscard]] std::string sandbox_dir(const std::string& id) const {
    return data_dir_ + "/sandboxes/" + id;
  }
  [[nodiscard]] std::string runsc_root() const { return data_dir_ + "/runsc"; }

  // runsc with the global flags every command needs.
  [[nodiscard]] std::vector<std::string> runsc_argv(const std::string& log_file) const;
  [[nodiscard]] command_result run_runsc(std::vector<std::string> argv, int in = -1, int out = -1,
                                         int err = -1) const;
  [[nodiscard]] runsc_status state(const std::string& id) const;
  // Opens a pidfd on the running sandbox's process, checking it is that sandbox's.
  [[nodiscard]] unique_fd sandbox_pidfd(const std::string& id, const runsc_status& st,
                                        std::string& err) const;
  // Everything destroy() does but the link; returns the first error.
  std::string teardown(const std::string& id);

  // The formatted ext4 image each sandbox's layer image is copied from (disk quota only).
  const std::string layer_template_;
  const gvisor_config cfg_;
  const std::string data_dir_;
  const std::string init_path_;
  const host_image image_;
  std::unique_ptr<link_reactor> reactor_;
  id_lock_table id_locks_;
};

// A new sparse file of config.disk_limit_mib at path, formatted as ext4: the template every
// sandbox's writable layer image is copied from.
std::string make_layer_image(const gvisor_config& cfg, const std::string& path) {
  unique_fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return "create " + path + ": " + std::strerror(errno);
  if (ftruncate(fd.get(), static_cast<off_t>(cfg.disk_limit_mib) << 20) != 0)
    return "size " + path + ": " + std::strerror(errno);
  fd.reset();
  command_spec spec;
  // No journal and lazy init: the layer is scratch space that dies with the sandbox, and this
  // keeps mkfs at ~10 ms. No reserved blocks: the sandbox gets all of its quota.
  spec.argv = {cfg.mkfs_ext4_path, "-q", "-F", "-O", "^has_journal", "-E",
               "lazy_itable_init=1,nodiscard", "-m", "0", "-N",
               std::to_string(cfg.disk_inodes_limit), path};
  spec.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  spec.timeout = std::chrono::milliseconds(cfg.runsc_timeout_ms);
  const auto r = run_command(spec);
  if (!r.started || r.timed_out || (r.exit_code && *r.exit_code != 0))
    return "mkfs.ext4 " + path + ": " + r.describe(cfg.error_excerpt_bytes);
  return {};
}

std::vector<std::string> gvisor_runtime::runsc_argv(const std::string& log_file) const {
  std::vector<std::string> argv = {cfg_.runsc_path, "--root", runsc_root(), "--platform",
                                   cfg_.platform, "--network", "none"};
  if (!log_file.empty()) {
    argv.push_back("--log");
    argv.push_back(log_file);
  }
  if (cfg_.writable_layer == "runsc-memory") argv.push_back("--overlay2=root:memory");
  if (cfg_.runsc_debug && !log_file.empty()) {
    argv.push_back("--debug");
    argv.push_back("--debug-log=" + log_file + ".debug/");
  }
  return argv;
}

command_result gvisor_runtime::run_runsc(std::vector<std::string> argv, int in, int out,
                                         int err) const {
  command_spec spec;
  spec.argv = std::move(argv);
  spec.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  spec.stdin_fd = in;
  spec.stdout_fd = out;
  spec.stderr_fd = err;
  spec.timeout = std::chrono::milliseconds(cfg_.runsc_timeout_ms);
  spec.max_capture_bytes = max_runsc_json_bytes;
  return run_command(spec);
}

runsc_status gvisor_runtime::state(const std::string& id) const {
  runsc_status st;
  auto argv = runsc_argv({});
  argv.insert(argv.end(), {"state", id});
  const auto r = run_runsc(argv);
  if (!r.ok()) {
    st.error = "runsc state: " + r.describe(cfg_.error_excerpt_bytes);
    return st;
  }
  const auto json = parse_json(r.out, max_runsc_json_bytes);
  if (!json || json->get_string("id") != id) {
    st.error = "runsc state: unexpected output";
    return st;
  }
  st.exists = true;
  st.status = json->get_string("status");
  st.pid = static_cast<int>(json->get_int("pid").value_or(0));
  return st;
}

unique_fd gvisor_runtime::sandbox_pidfd(const std::string& id, const runsc_status& st,
                                        std::string& err) const {
  if (!st.exists || st.status != "running" || st.pid <= 0) {
    err = st.exists ? "sandbox is " + st.status : st.error;
    return {};
  }
  unique_fd fd(open_pidfd(st.pid));
  if (!fd) {
    err = "sandbox process " + std::to_string(st.pid) + " is gone: " + std::strerror(errno);
    return {};
  }
  // The pid came from runsc's state file: make sure (now that the pidfd pins it) that it is
  // this sandbox's runsc process and not a recycled pid.
  const auto cmdline = read_small_file("/proc/" + std::to_string(st.pid) + "/cmdline", 1 << 20);
  if (!cmdline || cmdline->find("runsc-sandbox") == std::string::npos ||
      cmdline->find(sandbox_dir(id) + "/") == std::string::npos || !pidfd_alive(fd.get())) {
    err = "sandbox process " + std::to_string(st.pid) + " is not running";
    return {};
  }
  return fd;
}

runtime::started gvisor_runtime::start(const sandbox_spec& spec,
                                       std::shared_ptr<init_listener> listener) {
  auto fail = [](std::string e) { return started{nullptr, std::move(e)}; };
  const std::string& id = spec.id;
  if (!wire::valid_id(id, sandbox_id_prefix)) return fail("invalid sandbox id");
  if (!listener) return fail("no listener");
  if (spec.network)
    return fail("network access is not supported by the gvisor runtime yet (sandboxes run with "
                "--network=none)");
  if (!spec.image.empty() && spec.image != "host") return fail("unknown image: " + spec.image);
  const uint32_t pids = spec.pids_limit != 0 ? spec.pids_limit : cfg_.default_pids_limit;
  if (pids > cfg_.max_pids_limit)
    return fail("pids_limit over the maximum of " + std::to_string(cfg_.max_pids_limit));
  const uint32_t memory_mib = spec.memory_mib != 0 ? spec.memory_mib : cfg_.default_memory_mib;
  const uint32_t cpu_millis = spec.cpu_millis != 0 ? spec.cpu_millis : cfg_.default_cpu_millis;

  id_lock_table::guard lock(id_locks_, id);
  const std::string dir = sandbox_dir(id);
  // (A runsc container of this id without its directory can only be a leftover of a failed
  // teardown; `runsc run` refuses it and the rollback below removes it.)
  if (path_exists(dir)) return fail("sandbox " + id + " already exists");

  // From here on, anything created is undone on failure.
  rollback undo([&] { (void)teardown(id); });
  if (auto e = make_dir(dir, 0700); !e.empty()) return fail(e);
  const std::string bundle = dir + "/bundle";
  if (auto e = make_dir(bundle, 0700); !e.empty()) return fail(e);
  if (auto e = write_new_file(dir + "/image", image_.rootfs, 0600); !e.empty()) return fail(e);

  oci_inputs oci;
  if (cfg_.writable_layer == "overlayfs") {
    // The writable layer: on a size-limited tmpfs (the disk quota), or on the data dir's disk.
    std::string layer = dir;
    if (cfg_.disk_limit_mib > 0) {
      layer = dir + "/layer";
      if (auto e = make_dir(layer, 0700); !e.empty()) return fail(e);
      if (auto e = copy_sparse_file(layer_template_, dir + "/layer.img"); !e.empty())
        return fail(e);
      if (auto e = mount_loop_ext4(dir + "/layer.img", layer); !e.empty()) return fail(e);
    }
    for (const auto& [path, mode] : {std::pair<std::string, mode_t>{layer + "/upper", 0755},
                                     {layer + "/work", 0700}, {bundle + "/rootfs", 0755}}) {
      if (auto e = make_dir(path, mode); !e.empty()) return fail(e);
    }
    if (auto e = mount_overlay(image_.rootfs, layer + "/upper", layer + "/work", bundle + "/rootfs");
        !e.empty())
      return fail(e);
    oci.root_path = "rootfs";
  } else {
    oci.root_path = image_.rootfs;  // runsc --overlay2=root:memory keeps it unmodified
  }
  sandbox_cgroups cgroups(cfg_.cgroup_parent, id);
  oci.init_host_path = init_path_;
  oci.cgroups_path = cgroups.cgroups_path();
  oci.memory_limit_bytes = static_cast<uint64_t>(memory_mib) << 20;
  oci.nproc_limit = pids;
  oci.host_pids_max = pids * cfg_.host_pids_per_sandbox_task + cfg_.host_pids_headroom;
  oci.open_files_limit = cfg_.open_files_limit;
  if (auto e = write_new_file(bundle + "/config.json", make_oci_config(oci), 0600); !e.empty())
    return fail(e);

  // init's stdio. The sandbox gets both FIFOs opened O_RDWR (it then always holds a reader and
  // a writer of each); the executor keeps its own ends for the link.
  const std::string link_dir = dir + "/link";
  if (auto e = make_dir(link_dir, 0700); !e.empty()) return fail(e);
  if (auto e = mount_fifo_tmpfs(link_dir, link_fs_inodes); !e.empty()) return fail(e);
  const std::string stdin_fifo = link_dir + "/stdin.fifo", stdout_fifo = link_dir + "/stdout.fifo";
  if (mkfifo(stdin_fifo.c_str(), 0600) != 0 || mkfifo(stdout_fifo.c_str(), 0600) != 0)
    return fail(std::string("mkfifo: ") + std::strerror(errno));
  unique_fd sandbox_in(open(stdin_fifo.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  unique_fd sandbox_out(open(stdout_fifo.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  unique_fd to_init(open(stdin_fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW));
  unique_fd from_init(open(stdout_fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW));
  const std::string stderr_file = dir + "/init.stderr";
  unique_fd init_stderr(open(stderr_file.c_str(),
                             O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!sandbox_in || !sandbox_out || !to_init || !from_init || !init_stderr)
    return fail(std::string("opening init's stdio: ") + std::strerror(errno));
  // Best effort: the kernel caps it at /proc/sys/fs/pipe-max-size.
  (void)fcntl(sandbox_in.get(), F_SETPIPE_SZ, static_cast<int>(cfg_.fifo_pipe_bytes));
  (void)fcntl(sandbox_out.get(), F_SETPIPE_SZ, static_cast<int>(cfg_.fifo_pipe_bytes));

  const std::string runsc_log = dir + "/runsc.log";
  auto argv = runsc_argv(runsc_log);
  const std::string pid_file = dir + "/sandbox.pid";
  argv.insert(argv.end(), {"run", "--detach", "--pid-file", pid_file, "--bundle", bundle, id});
  const auto run = run_runsc(argv, sandbox_in.get(), sandbox_out.get(), init_stderr.get());
  sandbox_in.reset();
  sandbox_out.reset();
  init_stderr.reset();
  auto explain = [&](const std::string& what) {
    std::string msg = what;
    const auto log_tail = read_file_tail(runsc_log, cfg_.error_excerpt_bytes);
    const auto err_tail = read_file_tail(stderr_file, cfg_.error_excerpt_bytes);
    if (!err_tail.empty()) msg += "; stderr: " + err_tail;
    else if (!log_tail.empty()) msg += "; runsc log: " + log_tail;
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return msg;
  };
  if (!run.started || run.timed_out || (run.exit_code && *run.exit_code != 0))
    return fail(explain("runsc run: " + run.describe(cfg_.error_excerpt_bytes)));

  // The sandbox process's pid, as runsc wrote it (saves a `runsc state`, ~25 ms).
  runsc_status st;
  const auto pid_text = read_small_file(pid_file, 64);
  st.pid = pid_text ? std::atoi(pid_text->c_str()) : 0;
  st.exists = st.pid > 0;
  st.status = "running";
  std::string err;
  unique_fd death = sandbox_pidfd(id, st, err);
  if (!death) return fail(explain("sandbox did not stay up: " + err));

  if (cpu_millis > 0) {
    if (auto e = cgroups.set_cpu_limit(cpu_millis, cfg_.cpu_period_us); !e.empty())
      return fail("setting the cpu limit: " + e);
  }
  if (spec.background) {
    if (auto e = cgroups.set_cpu_shares(cfg_.background_cpu_shares); !e.empty())
      return fail("setting the cpu weight: " + e);
  }

  auto link = reactor_->attach(id, std::move(to_init), std::move(from_init), std::move(death),
                               std::make_shared<oom_aware_listener>(std::move(listener), cgroups),
                               {});
  if (!link) return fail("registering the link failed");
  undo.release();
  return {std::move(link), {}};
}

runtime::started gvisor_runtime::adopt(const std::string& id,
                                       std::shared_ptr<init_listener> listener) {
  auto fail = [](std::string e) { return started{nullptr, std::move(e)}; };
  if (!wire::valid_id(id, sandbox_id_prefix)) return fail("invalid sandbox id");
  if (!listener) return fail("no listener");
  id_lock_table::guard lock(id_locks_, id);
  const std::string dir = sandbox_dir(id);
  if (!path_exists(dir)) return fail("sandbox " + id + " is not on this host");
  const auto st = state(id);
  std::string err;
  unique_fd death = sandbox_pidfd(id, st, err);
  if (!death) return fail("sandbox " + id + " cannot be adopted: " + err);
  // The sandbox holds the read end of stdin.fifo: O_WRONLY|O_NONBLOCK fails with ENXIO only if
  // nothing does, i.e. when it is gone. (A sandbox started before link/ existed has its FIFOs
  // in its directory.)
  const std::string fifo_dir = path_exists(dir + "/link/stdin.fifo") ? dir + "/link" : dir;
  unique_fd to_init(
      open((fifo_dir + "/stdin.fifo").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW));
  unique_fd from_init(
      open((fifo_dir + "/stdout.fifo").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW));
  if (!to_init || !from_init)
    return fail("sandbox " + id + " cannot be adopted: opening its FIFOs: " + std::strerror(errno));
  std::vector<uint8_t> preamble(cfg_.adopt_resync_bytes, 0);
  auto link = reactor_->attach(
      id, std::move(to_init), std::move(from_init), std::move(death),
      std::make_shared<oom_aware_listener>(std::move(listener),
                                           sandbox_cgroups(cfg_.cgroup_parent, id)),
      std::move(preamble));
  if (!link) return fail("registering the link failed");
  return {std::move(link), {}};
}

std::string gvisor_runtime::teardown(const std::string& id) {
  const auto deadline = clock_type::now() + std::chrono::milliseconds(cfg_.destroy_timeout_ms);
  const std::string dir = sandbox_dir(id);
  std::string first_err;
  auto note = [&](const std::string& e) {
    if (!e.empty() && first_err.empty()) first_err = e;
  };
  const std::string log = path_exists(dir) ? dir + "/runsc.log" : std::string{};
  // delete --force kills a running sandbox and waits for its processes; it removes the cgroups
  // runsc created and runsc's state.
  auto del = runsc_argv(log);
  del.insert(del.end(), {"delete", "--force", id});
  auto r = run_runsc(del);
  if (!r.ok() && state(id).exists) {
    auto kill = runsc_argv(log);
    kill.insert(kill.end(), {"kill", "--all", id, "KILL"});
    (void)run_runsc(kill);
    r = run_runsc(del);
    if (!r.ok()) note("runsc delete: " + r.describe(cfg_.error_excerpt_bytes));
  }
  // Whatever runsc left: processes in the sandbox's cgroups, the cgroups themselves.
  note(sandbox_cgroups(cfg_.cgroup_parent, id).kill_and_remove(deadline));
  if (path_exists(dir)) {
    const std::string rootfs = dir + "/bundle/rootfs";
    const std::string layer = dir + "/layer";
    const std::string link = dir + "/link";
    note(unmount(rootfs));
    if (!is_mount_point(rootfs)) note(unmount(layer));
    note(unmount(link));
    if (is_mount_point(rootfs) || is_mount_point(layer) || is_mount_point(link)) {
      note("still mounted: " + rootfs + ", " + layer + " or " + link);
    } else {
      note(remove_tree(dir));
    }
  }
  return first_err;
}

void gvisor_runtime::destroy(const std::string& id) {
  if (!wire::valid_id(id, sandbox_id_prefix)) return;
  id_lock_table::guard lock(id_locks_, id);
  reactor_->set_end_reason(id, "sandbox destroyed");
  (void)teardown(id);
  // The sandbox's death normally ended the link already; this covers a link whose sandbox
  // could not be found by runsc any more.
  reactor_->end(id, "sandbox destroyed",
                clock_type::now() + std::chrono::milliseconds(cfg_.destroy_timeout_ms));
}

std::vector<std::string> gvisor_runtime::list_host_sandboxes() {
  std::set<std::string> ids;
  if (DIR* d = opendir((data_dir_ + "/sandboxes").c_str())) {
    while (dirent* e = readdir(d))
      if (wire::valid_id(e->d_name, sandbox_id_prefix)) ids.insert(e->d_name);
    closedir(d);
  }
  auto argv = runsc_argv({});
  argv.insert(argv.end(), {"list", "--format=json"});
  const auto r = run_runsc(argv);
  if (r.ok()) {
    if (const auto json = parse_json(r.out, max_runsc_json_bytes);
        json && json->type == json_value::kind::array) {
      for (const auto& c : json->array) {
        const auto id = c.get_string("id");
        if (wire::valid_id(id, sandbox_id_prefix)) ids.insert(id);
      }
    }
  }
  return {ids.begin(), ids.end()};
}

// The same cgroup files start() sets: the memory limit (memory.limit_in_bytes, and memsw: no
// swap) that runsc wrote from linux.resources, and the CFS quota written after start.
std::string gvisor_runtime::update_limits(const std::string& id, uint32_t cpu_millis,
                                          uint32_t memory_mib) {
  if (!wire::valid_id(id, sandbox_id_prefix)) return "invalid sandbox id";
  id_lock_table::guard lock(id_locks_, id);
  if (!path_exists(sandbox_dir(id))) return "sandbox " + id + " is not on this host";
  const uint32_t memory = memory_mib != 0 ? memory_mib : cfg_.default_memory_mib;
  const uint32_t cpu = cpu_millis != 0 ? cpu_millis : cfg_.default_cpu_millis;
  sandbox_cgroups cgroups(cfg_.cgroup_parent, id);
  if (memory > 0) {
    if (auto e = cgroups.set_memory_limit(static_cast<uint64_t>(memory) << 20); !e.empty())
      return "setting the memory limit: " + e;
  }
  auto e = cpu > 0 ? cgroups.set_cpu_limit(cpu, cfg_.cpu_period_us) : cgroups.clear_cpu_limit();
  if (!e.empty()) return "setting the cpu limit: " + e;
  return {};
}

std::string gvisor_runtime::foreground(const std::string& id) {
  if (!wire::valid_id(id, sandbox_id_prefix)) return "invalid sandbox id";
  id_lock_table::guard lock(id_locks_, id);
  if (!path_exists(sandbox_dir(id))) return "sandbox " + id + " is not on this host";
  sandbox_cgroups cgroups(cfg_.cgroup_parent, id);
  if (auto e = cgroups.set_cpu_shares(cfg_.normal_cpu_shares); !e.empty())
    return "setting the cpu weight: " + e;
  if (auto e = cgroups.reset_cpu_usage(); !e.empty()) return "resetting the cpu usage: " + e;
  return {};
}

sandbox_usage gvisor_runtime::usage(const std::string& id) {
  if (!wire::valid_id(id, sandbox_id_prefix)) return {};
  return sandbox_cgroups(cfg_.cgroup_parent, id).usage();
}

// Mounts and unmounts a throw-away overlay over the image: proves overlayfs works here.
std::string probe_overlay(const std::string& data_dir, const std::string& lower) {
  const std::string probe = data_dir + "/overlay-probe-" + std::to_string(getpid());
  (void)unmount(probe + "/merged");
  (void)remove_tree(probe);
  std::string err = make_dir(probe, 0700);
  for (const char* sub : {"upper", "work", "merged"})
    if (err.empty()) err = make_dir(probe + "/" + sub, 0700);
  if (err.empty()) err = mount_overlay(lower, probe + "/upper", probe + "/work", probe + "/merged");
  if (err.empty()) err = unmount(probe + "/merged");
  const auto rm = remove_tree(probe);
  return err.empty() ? rm : err;
}

}  // namespace
}  // namespace gvisor_detail

gvisor_runtime_or_error make_gvisor_runtime(const gvisor_config& config) {
  using namespace gvisor_detail;
  auto fail = [](std::string e) { return gvisor_runtime_or_error{nullptr, std::move(e)}; };
  if (auto e = config.validate(); !e.empty()) return fail("invalid gvisor config: " + e);
  if (auto e = make_dirs(config.data_dir, 0700); !e.empty()) return fail(e);
  const auto data_dir = real_path(config.data_dir);
  if (!data_dir) return fail("data_dir: " + std::string(std::strerror(errno)));
  if (data_dir->find_first_of(" \t\n,:\\") != std::string::npos)
    return fail("data_dir " + *data_dir + " contains a character overlayfs options cannot carry");
  if (access(config.runsc_path.c_str(), X_OK) != 0)
    return fail("runsc_path " + config.runsc_path + ": " + std::strerror(errno));
  const auto init_path = real_path(config.init_path);
  struct stat st {};
  if (!init_path || stat(init_path->c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      access(init_path->c_str(), X_OK) != 0)
    return fail("init_path " + config.init_path + " is not an executable file");
  for (const char* sub : {"/sandboxes", "/runsc", "/images"})
    if (auto e = make_dirs(*data_dir + sub, 0700); !e.empty()) return fail(e);
  if (config.sandboxes_memory_limit_bytes > 0) {
    if (auto e = sandbox_cgroups::limit_parent_memory(config.cgroup_parent,
                                                      config.sandboxes_memory_limit_bytes);
        !e.empty())
      return fail(e);
  }
  if (config.become_subreaper) {
    if (auto e = start_orphan_reaper(); !e.empty()) return fail(e);
  }
  auto image = ensure_host_image(*data_dir + "/images");
  if (!image.error.empty()) return fail(image.error);
  if (config.writable_layer == "overlayfs" && config.disk_limit_mib > 0 &&
      access(config.mkfs_ext4_path.c_str(), X_OK) != 0)
    return fail("mkfs_ext4_path " + config.mkfs_ext4_path + ": " + std::strerror(errno) +
                " (needed for disk_limit_mib; 0 disables the disk quota)");
  // Formatted once per runtime (~20 ms); sandboxes copy it (~1 ms: it is ~1 MiB of data).
  std::string layer_template;
  if (config.writable_layer == "overlayfs" && config.disk_limit_mib > 0) {
    layer_template = *data_dir + "/layer-template.img";
    if (unlink(layer_template.c_str()) != 0 && errno != ENOENT)
      return fail("remove " + layer_template + ": " + std::strerror(errno));
    if (auto e = make_layer_image(config, layer_template); !e.empty()) return fail(e);
  }
  if (config.writable_layer == "overlayfs") {
    if (auto e = probe_overlay(*data_dir, image.rootfs); !e.empty())
      return fail("overlayfs does not work here (" + e +
                  "); set writable_layer = \"runsc-memory\"");
  }
  // Older host images that no sandbox still runs on.
  std::set<std::string> in_use;
  if (DIR* d = opendir((*data_dir + "/sandboxes").c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      if (auto img = read_small_file(*data_dir + "/sandboxes/" + e->d_name + "/image", 4096))
        in_use.insert(*img);
    }
    closedir(d);
  }
  (void)gc_host_images(*data_dir + "/images", image.hash, in_use);

  std::string err;
  link_limits limits;
  limits.max_send_queue_bytes = config.max_send_queue_bytes;
  limits.read_chunk_bytes = config.read_chunk_bytes;
  auto reactor = link_reactor::create(limits, err);
  if (!reactor) return fail(err);
  return {std::make_shared<gvisor_runtime>(config, *data_dir, *init_path, std::move(image),
                                           std::move(reactor), std::move(layer_template)),
          {}};
}

}  // namespace corral
