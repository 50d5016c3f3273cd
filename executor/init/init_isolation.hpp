#pragma once
// What keeps the sandbox's own processes away from corral-init, and what lets init end every
// process an exec started (docs/protocol.md "corral-init's boundary"). Implemented with raw
// syscalls in isolation_unsafe.cpp.
//
// When init is the sandbox's PID 1 (prepare_isolation):
// - Capabilities: init is granted CAP_SYS_ADMIN on top of the user processes' set (the runtime's
//   OCI spec). It drops CAP_SYS_ADMIN from its bounding set before it starts anything, so every
//   process it execs gets the user set only, and keeps it out of its effective set except while
//   it creates a user namespace (so file operations act with a user process's capabilities).
// - The user PID namespace: every process init starts lives in a PID namespace below init's.
//   init is not in it: no pid there names init, so no process can signal, ptrace or open
//   /proc/<pid>/* of init. Its PID 1 is the reaper (init's own binary with --reaper), which
//   mounts the namespace's /proc on /proc, drops every capability, and reaps the orphans of
//   the namespace. When the reaper dies (a user process can SIGKILL it), the kernel kills every
//   process of that namespace; init reaps them and starts a new namespace with a new reaper.
// - The exec cgroups: a pids cgroup hierarchy mounted and at once detached, reachable only
//   through init's fd (no path leads to it, and a user process lacks CAP_SYS_ADMIN to mount
//   it again). Each process init starts moves itself into a cgroup of its own before it execs,
//   so everything it ever forks (setsid, setpgid, double-forked, in nested namespaces) stays
//   in that cgroup: kill_cgroup_tree finds them all.
//
// init's other fds are out of reach because nothing in the user namespace can name init, and
// because (runsc patch 0010) /proc/<pid>/fd and process_vm_readv/writev of another process
// need ptrace access: the child init starts shares init's (non-dumpable) memory and holds
// copies of init's fds until it execs, and is visible meanwhile.
//
// All functions are for init's single thread; every fd they create is close-on-exec.
#include <sys/types.h>

#include <string>

#include "executor/unique_fd.hpp"

namespace corral::init {

using corral::unique_fd;

struct sandbox_isolation {
  bool active = false;        // set up (init is PID 1); false: tests run init as a plain child
  std::string self_exe;       // init's binary, exec'd as the reaper
  pid_t reaper = 0;           // the user namespace's PID 1 (a child of init); 0: none now
  unique_fd cgroup_root;      // the detached pids hierarchy; invalid when !active
};

// When this process is PID 1: drops CAP_SYS_ADMIN from the bounding set, mounts the hidden
// cgroup hierarchy, starts the user PID namespace (start_user_namespace) and lowers its
// effective capabilities. Returns an empty string when done (or when not PID 1: out.active
// stays false), else what failed; init must not run user code then.
[[nodiscard]] std::string prepare_isolation(sandbox_isolation& out);

// Starts a new user PID namespace and its reaper, waiting until the reaper has mounted the
// namespace's /proc, exec'd and dropped what it had (it closes its fd 3 then). Every process
// init starts afterwards is in it. Sets iso.reaper.
[[nodiscard]] std::string start_user_namespace(sandbox_isolation& iso);

// The reaper's whole life (corral-init --reaper): not dumpable, no capabilities, every signal
// blocked and consumed, then closes fd 3 (init's sign that it is ready); reaps every child it
// is given. Never returns.
[[noreturn]] void run_reaper();

// Creates the exec cgroup `name` below root and opens its cgroup.procs for writing (procs):
// a process that writes "0" there moves into it. Returns 0 or the errno.
[[nodiscard]] int create_exec_cgroup(int root, const std::string& name, unique_fd& procs);

// SIGKILLs every process of the exec cgroup `name`, after forbidding it any new process
// (pids.max 0); reads its members again until no new one shows up (at most a few rounds: a
// fork in flight when pids.max was written). Returns the number of processes signalled.
int kill_cgroup_tree(int root, const std::string& name);

// Removes the exec cgroup `name`. True when it is gone (or was); false while it has members.
[[nodiscard]] bool remove_exec_cgroup(int root, const std::string& name);

}  // namespace corral::init
