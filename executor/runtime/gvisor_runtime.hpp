#pragma once
// The `gvisor` runtime (docs/architecture.md, "Runtimes"): every corral sandbox is one runsc container whose PID 1
// is corral-init, its root a per-sandbox writable overlay over a read-only image.
//
// Layout under data_dir (everything of the runtime lives there; nothing else on the host is
// written but the sandbox cgroups and the mounts):
//   images/host/<hash>/rootfs   the host default image (immutable; content-hashed)
//   runsc/                      runsc --root (container state)
//   sandboxes/<id>/             one per sandbox:
//     bundle/config.json        the OCI spec
//     bundle/rootfs/            overlay mount point (lower = image, upper/work below)
//     layer.img layer/          ext4 image of disk_limit_mib, loop-mounted on layer/, holding
//     layer/upper layer/work    the sandbox's writable layer (upper/ work/ when no quota)
//     link/                     a tmpfs of its own holding stdin.fifo and stdout.fifo,
//                               corral-init's stdin/stdout (see "Link" below)
//     init.stderr runsc.log     corral-init's stderr; runsc's error log
//     sandbox.pid               the runsc sandbox process (runsc run --pid-file)
//     image                     path of the image the sandbox was started from
//
// Link: init's stdin and stdout are two named FIFOs that runsc hands to the sandbox opened
// O_RDWR, so the sandbox always holds both ends of both: init never sees EOF or SIGPIPE while
// no executor is connected, and its output waits in the pipe. The executor opens its own ends
// (O_WRONLY on stdin.fifo, O_RDONLY on stdout.fifo); adopt() after a restart just reopens them
// (those of a sandbox started before link/ existed are in its directory itself). The FIFOs are
// on a tmpfs because every frame through a FIFO updates its inode's times: on the data dir's
// disk file system each one was a journaled inode update beside the exec (4 per exec), which
// also lengthened the store's synced writes (measured: exec round trip p50 -0.45 ms on tmpfs).
// Because the FIFOs never reach EOF while the sandbox lives, death is detected with a pidfd on
// the runsc sandbox process (from `runsc run --pid-file` at start, `runsc state` at adopt; the
// pid is checked against /proc/<pid>/cmdline once the pidfd pins it). When it becomes readable
// the link drains what init wrote, then calls on_closed.
//
// Threads: one I/O thread per runtime runs an epoll loop over every link (reads, writes,
// pidfds). All listener callbacks run on it; listeners must not block and must not call
// start/adopt/destroy from a callback.
//
// destroy(): `runsc delete --force` (kills the sandbox, waits for its processes, removes runsc's
// state and cgroups), then SIGKILL of anything still in the sandbox's cgroups, removal of those
// cgroups (every v1 controller), unmount of the overlay and no-follow removal of the sandbox dir.
// Whatever could not be removed stays visible in list_host_sandboxes(), so a later destroy()
// retries it. start() runs the same teardown when it fails.
//
// Limits (docs/promises.md P5): memory in linux.resources (cgroup memory.limit_in_bytes); reaching it, the
// kernel's OOM killer kills the sandbox's sentry, i.e. the whole sandbox (gVisor has no OOM
// killer of its own): the link's on_closed reason is then close_reason::out_of_memory. Disk: the
// writable layer's quota (disk_limit_mib). (runsc's own /tmp is a tmpfs in sandbox memory,
// bounded by the memory limit, not the disk quota.) Cpu as a CFS quota
// written into the sandbox's cpu cgroup right after start (a quota present during start slows
// runsc's boot ~2.5x); processes as RLIMIT_NPROC inside the sandbox (a fork bomb gets EAGAIN
// inside instead of killing the sentry) with a larger cgroup pids.max as a host-side backstop.
// update_limits() rewrites the memory limit and the cpu quota of a running sandbox in the same
// cgroup files (the warm pool boots with the defaults). The sentry keeps the memory size it
// booted with for what it reports (/proc/meminfo); the host cgroup is what enforces the limit.
// A background start (the warm pool's) boots at the normal cpu weight (the pool refills as fast
// as it can) and then waits at background_cpu_shares, so that what it runs before it is handed
// out (a pre-started command) takes only CPU the running sandboxes leave idle; foreground() sets
// it back to the normal weight and restarts its cpu usage counter (cpuacct.usage) from zero, so
// that the tenant is billed from the hand-out on.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/ports.hpp"

namespace corral {

struct gvisor_config {
  // Root of everything the runtime writes. Relative paths are made absolute at start-up.
  std::string data_dir = "./var/executor";
  // The runsc binary (a patched build from deploy/build-runsc.sh, or Debian's /usr/bin/runsc).
  std::string runsc_path = "/usr/bin/runsc";
  // The corral-init binary on the host; bind-mounted read-only at /.corral/init in every sandbox.
  std::string init_path = "./build/bin/corral-init";
  // runsc --platform. "ptrace" works everywhere; "kvm" needs /dev/kvm.
  std::string platform = "ptrace";
  // Sandbox cgroups are <cgroup_parent>/<id> under every cgroup v1 controller.
  std::string cgroup_parent = "corral";
  // The memory every sandbox together may use (<cgroup_parent>'s memory.limit_in_bytes): with
  // limits overcommitted, the kernel's out-of-memory killer then picks a sandbox's process, never
  // the executor, NATS or the host's services (docs/security.md, "Fair share"). 0: not set.
  uint64_t sandboxes_memory_limit_bytes = 0;
  // "overlayfs": a host overlayfs mount per sandbox (upper layer on disk under the sandbox dir).
  // "runsc-memory": no host mount; runsc --overlay2=root:memory (upper layer in sandbox memory).
  std::string writable_layer = "overlayfs";
  // Disk quota of a sandbox's writable layer (overlayfs only), in MiB: the upper and work dirs
  // live on an ext4 file system in a sparse image file of this size under the sandbox dir,
  // loop-mounted (a write past it gets ENOSPC). Making and mounting it costs ~15-25 ms of a
  // start. A tmpfs would be cheaper but its pages are unreclaimable memory charged to the
  // sandbox's memory cgroup: a disk filler would end as an OOM kill, not ENOSPC. The image's
  // page cache is reclaimable. 0 = no quota (the layer is a directory on the data dir's disk).
  uint32_t disk_limit_mib = 1024;
  // Files and directories the writable layer may hold (mkfs.ext4 -N) when disk_limit_mib > 0.
  uint32_t disk_inodes_limit = 65536;
  // mkfs.ext4 used to format the layer images.
  std::string mkfs_ext4_path = "/usr/sbin/mkfs.ext4";

  // Processes (RLIMIT_NPROC inside the sandbox) when the spec says 0, and the largest accepted.
  uint32_t default_pids_limit = 512;
  uint32_t max_pids_limit = 16384;
  // Host-side cgroup pids.max = pids_limit * host_pids_per_sandbox_task + host_pids_headroom:
  // a backstop for the host tasks of the sandbox (sentry, gofer, ptrace stubs). Reaching it
  // wedges the whole sandbox, so it sits above what RLIMIT_NPROC lets the sandbox reach.
  // Measured with runsc 20221219 --platform=ptrace: an idle sandbox is ~35 host tasks, each
  // sandbox process adds ~6.2 (its stub address space), sandbox threads add ~none.
  uint32_t host_pids_per_sandbox_task = 8;
  uint32_t host_pids_headroom = 512;
  // Applied when the spec says 0; 0 here means no limit.
  uint32_t default_memory_mib = 0;
  uint32_t default_cpu_millis = 0;
  // CFS period used for cpu limits (cpu.cfs_period_us), 1000..1000000.
  uint32_t cpu_period_us = 100000;
  // cpu.shares of a sandbox started in the background, and of every other one (the kernel's
  // default weight).
  uint32_t background_cpu_shares = 2;
  uint32_t normal_cpu_shares = 1024;
  // RLIMIT_NOFILE inside the sandbox.
  uint32_t open_files_limit = 65536;

  // A link's queued but unwritten bytes; send() returns false past it.
  std::size_t max_send_queue_bytes = 8u * 1024 * 1024;
  // Capacity requested for each FIFO (F_SETPIPE_SZ; capped by /proc/sys/fs/pipe-max-size): what
  // init can write while no executor reads.
  std::size_t fifo_pipe_bytes = 1024 * 1024;
  // Bytes read from a link per read(2).
  std::size_t read_chunk_bytes = 64 * 1024;
  // adopt() first writes this many zero bytes to init's stdin, so that a frame an earlier
  // executor left half-written is completed (and rejected) before the new session's frames;
  // init's frame reader skips the zeros. 0 disables. Must be 0 or >= the largest frame.
  std::size_t adopt_resync_bytes = 1024 * 1024 + 4096 + 8;

  // Deadline of one runsc command (run, state, kill, delete, list); it is killed after it.
  uint32_t runsc_timeout_ms = 30000;
  // Deadline for a destroyed sandbox's processes to be gone and its cgroups removable.
  uint32_t destroy_timeout_ms = 10000;
  // Bytes of runsc's stderr/log quoted in error messages.
  std::size_t error_excerpt_bytes = 2048;
  // Pass --debug to runsc (verbose runsc.log).
  bool runsc_debug = false;
  // Make this process a child subreaper and reap orphaned runsc processes (see
  // orphan_reaper.hpp); without it `runsc delete` waits ~1.5 s for orphans to be reaped by
  // the host's init.
  bool become_subreaper = true;

  // Empty when the configuration is usable, else what is wrong with it.
  [[nodiscard]] std::string validate() const;
};

struct gvisor_runtime_or_error {
  std::shared_ptr<corral::runtime> runtime;  // null on error
  std::string error;
};

// Validates config, creates the data dir layout, builds the host default image (idempotent),
// checks that the writable layer works on this host, and starts the I/O thread. Blocks for up
// to a few hundred milliseconds. Destroying the runtime closes its links (no callbacks after)
// but leaves the sandboxes running, to be adopted by the next runtime.
[[nodiscard]] gvisor_runtime_or_error make_gvisor_runtime(const gvisor_config& config);

}  // namespace corral
