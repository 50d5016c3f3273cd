#pragma once
// The OCI runtime spec (config.json) of one sandbox. A pure function of its inputs.
//
// What the sandbox sees (docs/promises.md P6): the image root (writable through the per-sandbox layer), the
// host's /usr read-only, corral-init read-only at /.corral/init, its own /proc, /dev, /sys
// (read-only) and /dev/shm; no other host path, no host environment (init's environment is
// PATH only), no host namespaces. The processes of the sandbox get Docker's default capability
// set without NET_RAW; in particular without CAP_SYS_ADMIN and CAP_SYS_RESOURCE, so
// RLIMIT_NPROC binds root inside the sandbox and no limit can be raised from inside (docs/promises.md P5).
// corral-init alone also gets init_only_capability (CAP_SYS_ADMIN: it starts the user
// processes' PID namespace and their exec cgroups), which it drops from its bounding set
// before it starts anything, so that no process it starts can have it
// (executor/init/init_isolation.hpp; docs/protocol.md "corral-init's boundary").
//
// /usr is read like the image root, with gVisor's exclusive file access (a mount hint
// annotation): the sentry caches what it looked up there, negative lookups included, instead of
// asking the gofer again on every path walk (runsc's default for mounts, "shared", revalidates
// each one: ~10 gofer round trips per exec of a dynamically linked program found through PATH).
// The host's /usr is treated as immutable for a sandbox's lifetime: files replaced on the host
// (a package upgrade renames new files into place) keep their old content in the sandboxes
// already running, and files added later may stay invisible to them; sandboxes started after
// it see the new /usr.
#include <cstdint>
#include <string>

namespace corral::gvisor_detail {

// Where corral-init is bind-mounted inside every sandbox.
inline constexpr const char* init_path_in_sandbox = "/.corral/init";
// The capability corral-init holds beyond the set every process it starts gets.
inline constexpr const char* init_only_capability = "CAP_SYS_ADMIN";
// Prefix of the annotations that are runsc's mount hint for the /usr bind mount.
inline constexpr const char* usr_mount_hint = "dev.gvisor.spec.mount.usr";

struct oci_inputs {
  std::string root_path;           // bundle-relative ("rootfs") or absolute
  bool root_readonly = false;
  std::string init_host_path;      // absolute path of corral-init on the host
  std::string usr_host_path = "/usr";
  std::string hostname = "sandbox";
  std::string cgroups_path;        // "/corral/<id>"
  uint64_t memory_limit_bytes = 0; // 0: none
  uint32_t nproc_limit = 0;        // RLIMIT_NPROC inside (soft = hard)
  uint32_t host_pids_max = 0;      // cgroup pids.max (host side); 0: none
  uint32_t open_files_limit = 0;   // RLIMIT_NOFILE inside (soft = hard); 0: runsc default
};

[[nodiscard]] std::string make_oci_config(const oci_inputs& in);

}  // namespace corral::gvisor_detail
