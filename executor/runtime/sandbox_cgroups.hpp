#pragma once
// A sandbox's cgroups (cgroup v1, one directory <parent>/<id> under every mounted controller).
// runsc creates them from linux.cgroupsPath and removes them on `runsc delete`; this class sets
// what must be set after start (the cpu quota), reads usage, and removes whatever a failed or
// interrupted delete left behind. An object reads /proc/self/mountinfo once, at its first use
// (each call used to read it again); it is not for use from two threads at once.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/ports.hpp"

namespace corral::gvisor_detail {

class sandbox_cgroups {
 public:
  // parent: e.g. "corral"; id: the sandbox id (already validated).
  sandbox_cgroups(std::string parent, std::string id);

  // "/<parent>/<id>", the value of linux.cgroupsPath.
  [[nodiscard]] std::string cgroups_path() const;

  // Writes cpu.cfs_period_us and cpu.cfs_quota_us (quota = millis * period / 1000, at least
  // 1 ms). Empty on success.
  [[nodiscard]] std::string set_cpu_limit(uint32_t millis, uint32_t period_us) const;
  // Writes cpu.shares (the cgroup's relative cpu weight). Empty on success.
  [[nodiscard]] std::string set_cpu_shares(uint64_t shares) const;
  // Restarts cpuacct.usage from zero. Empty on success.
  [[nodiscard]] std::string reset_cpu_usage() const;
  // Removes the cpu quota (cpu.cfs_quota_us = -1). Empty on success.
  [[nodiscard]] std::string clear_cpu_limit() const;

  // Writes memory.limit_in_bytes and, when swap accounting exists, memory.memsw.limit_in_bytes
  // (the same value: no swap on top), in the order the kernel accepts (memsw never below the
  // limit). The kernel refuses a limit below what the cgroup uses now (EBUSY after reclaim).
  // Empty on success.
  [[nodiscard]] std::string set_memory_limit(uint64_t bytes) const;

  // cpuacct.usage, memory.usage_in_bytes, memory.oom_control's oom_kill; zeros when unknown.
  [[nodiscard]] sandbox_usage usage() const;

  // Directories of this sandbox that exist now, one per controller mount.
  [[nodiscard]] std::vector<std::string> existing_dirs() const;

  // SIGKILLs every process left in any of the sandbox's cgroups, waits (up to the deadline) for
  // them to die, and removes the directories. Empty on success.
  [[nodiscard]] std::string kill_and_remove(std::chrono::steady_clock::time_point deadline) const;

  // Mount points of the cgroup v1 hierarchies (from /proc/self/mountinfo).
  [[nodiscard]] static std::vector<std::string> v1_mounts();

  // Creates <parent> under the memory controller (when missing) and limits the memory of
  // everything under it to `bytes` (no swap on top). Empty on success. A limit below what the
  // sandboxes use now is refused by the kernel (said so).
  [[nodiscard]] static std::string limit_parent_memory(const std::string& parent, uint64_t bytes);

 private:
  struct mount {
    std::string path;
    std::vector<std::string> options;  // super options: "rw", "cpu", "name=systemd", ...
  };
  [[nodiscard]] static std::vector<mount> read_mounts();
  [[nodiscard]] const std::vector<mount>& mounts() const;  // read_mounts(), once
  [[nodiscard]] std::string dir_of(const std::string& controller) const;
  // Writes value into file of this sandbox's cgroup of controller. Empty on success.
  [[nodiscard]] std::string write_file(const std::string& controller, const std::string& file,
                                       const std::string& value) const;
  std::string parent_;
  std::string id_;
  mutable std::optional<std::vector<mount>> mounts_;
};

}  // namespace corral::gvisor_detail
