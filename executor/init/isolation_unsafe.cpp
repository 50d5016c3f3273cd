// Raw syscalls of corral-init's isolation: capabilities, the user PID namespace and its reaper,
// the hidden exec cgroups (see init_isolation.hpp).
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>

#include "executor/init/init_isolation.hpp"
#include "executor/init/init_sys.hpp"

namespace corral::init {
namespace {

// The one capability init holds beyond the user processes' set: to create PID namespaces and
// mount their /proc and the cgroup hierarchy (executor/runtime/oci_spec.hpp grants it).
constexpr int init_only_capability = CAP_SYS_ADMIN;
constexpr uint64_t init_only_mask = uint64_t{1} << init_only_capability;

// The reaper's fd that init reads until EOF: closed once the reaper is set up.
constexpr int reaper_ready_fd = 3;
// Rounds of reading an exec cgroup's members while killing it (see kill_cgroup_tree).
constexpr int tree_kill_rounds = 8;
// Largest cgroup.procs read while killing (pids of one exec cgroup, one per line).
constexpr std::size_t max_procs_bytes = 1 << 20;

struct capability_sets {
  uint64_t effective = 0;
  uint64_t permitted = 0;
  uint64_t inheritable = 0;
};

bool get_capabilities(capability_sets& out) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  out.effective = data[0].effective | (uint64_t{data[1].effective} << 32);
  out.permitted = data[0].permitted | (uint64_t{data[1].permitted} << 32);
  out.inheritable = data[0].inheritable | (uint64_t{data[1].inheritable} << 32);
  return true;
}

bool set_capabilities(const capability_sets& in) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  data[0].effective = static_cast<uint32_t>(in.effective);
  data[1].effective = static_cast<uint32_t>(in.effective >> 32);
  data[0].permitted = static_cast<uint32_t>(in.permitted);
  data[1].permitted = static_cast<uint32_t>(in.permitted >> 32);
  data[0].inheritable = static_cast<uint32_t>(in.inheritable);
  data[1].inheritable = static_cast<uint32_t>(in.inheritable >> 32);
  return ::syscall(SYS_capset, &header, data) == 0;
}

// Raises (or lowers) init's effective CAP_SYS_ADMIN. Returns 0 or the errno.
int set_admin_effective(bool on) {
  capability_sets caps;
  if (!get_capabilities(caps)) return errno;
  if ((caps.permitted & init_only_mask) == 0) return on ? EPERM : 0;
  caps.effective = on ? (caps.effective | init_only_mask) : (caps.effective & ~init_only_mask);
  return set_capabilities(caps) ? 0 : errno;
}

std::string failure(const std::string& what, int error_number) {
  return what + ": " + std::strerror(error_number);
}

// The hidden hierarchy: mounted on a fresh directory, opened, detached at once. Only the fd
// leads to it afterwards.
std::string mount_hidden_cgroup(unique_fd& out) {
  std::string dir;
  for (const char* base : {"/dev", "/tmp", "/"}) {
    std::string templ = std::string(base) + (base[1] == '\0' ? "" : "/") + ".corral-cgroup-XXXXXX";
    if (::mkdtemp(templ.data()) != nullptr) {
      dir = templ;
      break;
    }
  }
  if (dir.empty()) return failure("mkdtemp for the cgroup mount", errno);
  std::string error;
  if (::mount("corral", dir.c_str(), "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, "pids") != 0) {
    error = failure("mount cgroup (pids)", errno);
  } else {
    out.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!out.valid()) error = failure("open the cgroup mount", errno);
    if (::umount2(dir.c_str(), MNT_DETACH) != 0 && error.empty())
      error = failure("detach the cgroup mount", errno);
  }
  if (::rmdir(dir.c_str()) != 0 && error.empty()) error = failure("rmdir " + dir, errno);
  if (!error.empty()) out.reset();
  return error;
}

// The reaper-to-be between fork and exec (it runs init's code in its own copy of init's
// memory): plain system calls only. Reports an errno on ready_fd when it fails; the reaper
// gets ready_fd as its fd 3 and closes it once it is set up (run_reaper).
[[noreturn]] void become_reaper(const char* self_exe, int ready_fd) {
  auto fail = [&](int e) {
    const ssize_t ignored = ::write(ready_fd, &e, sizeof e);
    (void)ignored;
    ::_exit(127);
  };
  // Nothing of init's: stdio becomes /dev/null (the rest is close-on-exec).
  const int null_fd = ::open("/dev/null", O_RDWR);
  for (int fd = 0; fd <= 2; ++fd) {
    if (null_fd >= 0) {
      if (::dup2(null_fd, fd) != fd) fail(errno);
    } else {
      ::close(fd);
    }
  }
  if (null_fd > 2) ::close(null_fd);
  // This namespace's /proc replaces whatever /proc was (init's, or a dead namespace's).
  if (::umount2("/proc", MNT_DETACH) != 0 && errno != EINVAL) fail(errno);
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    fail(errno);
  // The only fd that crosses the exec (dup2 clears close-on-exec on its copy).
  if (ready_fd == reaper_ready_fd) {
    if (::fcntl(ready_fd, F_SETFD, 0) != 0) fail(errno);
  } else if (::dup2(ready_fd, reaper_ready_fd) != reaper_ready_fd) {
    fail(errno);
  }
  char arg0[] = "corral-reaper";
  char arg1[] = "--reaper";
  char* const argv[] = {arg0, arg1, nullptr};
  char* const envp[] = {nullptr};
  ::execve(self_exe, argv, envp);
  fail(errno);
  ::_exit(127);
}

// Reads a cgroup file of at most max bytes through dir.
bool read_cgroup_file(int dir, const char* name, std::string& out) {
  unique_fd fd(::openat(dir, name, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  out.clear();
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_procs_bytes) return true;
  }
}

bool write_cgroup_file(int dir, const char* name, const char* value) {
  unique_fd fd(::openat(dir, name, O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  const std::size_t n = std::strlen(value);
  return ::write(fd.get(), value, n) == static_cast<ssize_t>(n);
}

}  // namespace

std::string prepare_isolation(sandbox_isolation& out) {
  if (::getpid() != 1) return {};
  capability_sets caps;
  if (!get_capabilities(caps)) return failure("capget", errno);
  if ((caps.permitted & init_only_mask) == 0)
    return "init lacks CAP_SYS_ADMIN: the runtime must grant it (it keeps it from every process "
           "it starts)";
  // From now on nothing init execs can hold CAP_SYS_ADMIN.
  if (::prctl(PR_CAPBSET_DROP, init_only_capability, 0, 0, 0) != 0)
    return failure("PR_CAPBSET_DROP CAP_SYS_ADMIN", errno);
  if (int e = set_admin_effective(true); e != 0) return failure("raising CAP_SYS_ADMIN", e);

  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return failure("readlink /proc/self/exe", errno);
  out.self_exe.assign(exe, static_cast<std::size_t>(n));

  if (auto e = mount_hidden_cgroup(out.cgroup_root); !e.empty()) return e;
  if (auto e = start_user_namespace(out); !e.empty()) return e;
  if (int e = set_admin_effective(false); e != 0) return failure("lowering CAP_SYS_ADMIN", e);
  out.active = true;
  return {};
}

std::string start_user_namespace(sandbox_isolation& iso) {
  iso.reaper = 0;
  if (int e = set_admin_effective(true); e != 0) return failure("raising CAP_SYS_ADMIN", e);
  std::string error;
  int ready[2] = {-1, -1};
  if (::unshare(CLONE_NEWPID) != 0) {
    error = failure("unshare(CLONE_NEWPID)", errno);
  } else if (::pipe2(ready, O_CLOEXEC) != 0) {
    error = failure("pipe2", errno);
  } else {
    const pid_t pid = ::fork();
    if (pid == 0) become_reaper(iso.self_exe.c_str(), ready[1]);
    ::close(ready[1]);
    if (pid < 0) {
      error = failure("fork the reaper", errno);
    } else {
      // EOF: the reaper is set up (it closed its fd 3, the last copy of the write end);
      // 4 bytes: it failed before its exec, with that errno.
      int child_error = 0;
      ssize_t got;
      do {
        got = ::read(ready[0], &child_error, sizeof child_error);
      } while (got < 0 && errno == EINTR);
      if (got == 0) {
        iso.reaper = pid;
      } else {
        error = failure("starting the reaper", got == sizeof child_error ? child_error : EIO);
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
      }
    }
    ::close(ready[0]);
  }
  if (int e = set_admin_effective(false); e != 0 && error.empty())
    error = failure("lowering CAP_SYS_ADMIN", e);
  return error;
}

void run_reaper() {
  // Nothing to lose: not dumpable (exec made it dumpable again), no capability, no fd but
  // /dev/null, a memory image of its own. init waits for that (the close of fd 3).
  (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  (void)set_capabilities(capability_sets{});
  sigset_t all;
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  (void)::sigprocmask(SIG_BLOCK, &all, nullptr);
  ::close(reaper_ready_fd);
  for (;;) {
    // Every signal is consumed here (a flood of queued ones cannot pile up); only SIGCHLD
    // means work.
    siginfo_t info;
    (void)::sigwaitinfo(&all, &info);
    int status = 0;
    while (::waitpid(-1, &status, WNOHANG) > 0) {
    }
  }
}

int create_exec_cgroup(int root, const std::string& name, unique_fd& procs) {
  if (::mkdirat(root, name.c_str(), 0700) != 0 && errno != EEXIST) return errno;
  procs.reset(::openat(root, (name + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
  if (!procs.valid()) {
    const int e = errno;
    (void)::unlinkat(root, name.c_str(), AT_REMOVEDIR);
    return e;
  }
  return 0;
}

int kill_cgroup_tree(int root, const std::string& name) {
  unique_fd dir(::openat(root, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return 0;
  // No new process in it from now on (a fork there fails with EAGAIN).
  if (!write_cgroup_file(dir.get(), "pids.max", "0"))
    log_line("cgroup %s: pids.max: %s", name.c_str(), std::strerror(errno));
  std::set<pid_t> signalled;
  std::string procs;
  for (int round = 0; round < tree_kill_rounds; ++round) {
    if (!read_cgroup_file(dir.get(), "cgroup.procs", procs)) {
      log_line("cgroup %s: reading its processes: %s", name.c_str(), std::strerror(errno));
      break;
    }
    bool new_member = false;
    const char* p = procs.c_str();
    while (*p != '\0') {
      char* end = nullptr;
      const long pid = std::strtol(p, &end, 10);
      if (end == p) break;
      p = end;
      while (*p == '\n') ++p;
      if (pid <= 1 || !signalled.insert(static_cast<pid_t>(pid)).second) continue;
      new_member = true;
      (void)::kill(static_cast<pid_t>(pid), SIGKILL);
    }
    if (!new_member) break;
  }
  return static_cast<int>(signalled.size());
}

bool remove_exec_cgroup(int root, const std::string& name) {
  if (::unlinkat(root, name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT) return true;
  if (errno != EBUSY)
    log_line("cgroup %s: rmdir: %s", name.c_str(), std::strerror(errno));
  return false;
}

}  // namespace corral::init
