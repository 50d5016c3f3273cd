#include "executor/runtime/sandbox_cgroups.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "executor/runtime/process.hpp"

namespace corral::gvisor_detail {
namespace {

bool read_u64(const std::string& path, uint64_t& value) {
  std::ifstream in(path);
  return static_cast<bool>(in >> value);
}

bool write_text(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.flush();
  return static_cast<bool>(out);
}

bool dir_exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Interval between rmdir attempts while the kernel finishes detaching dead tasks (EBUSY).
constexpr auto rmdir_retry_interval = std::chrono::milliseconds(10);

}  // namespace

sandbox_cgroups::sandbox_cgroups(std::string parent, std::string id)
    : parent_(std::move(parent)), id_(std::move(id)) {}

std::vector<sandbox_cgroups::mount> sandbox_cgroups::read_mounts() {
  std::vector<mount> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    const auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream pre(line.substr(0, sep)), post(line.substr(sep + 3));
    std::string id, parent, devno, root, mount_point, fstype, source, super_opts;
    if (!(pre >> id >> parent >> devno >> root >> mount_point)) continue;
    if (!(post >> fstype >> source >> super_opts) || fstype != "cgroup") continue;
    mount m;
    m.path = mount_point;
    std::istringstream opts(super_opts);
    std::string o;
    while (std::getline(opts, o, ',')) m.options.push_back(o);
    out.push_back(std::move(m));
  }
  return out;
}

const std::vector<sandbox_cgroups::mount>& sandbox_cgroups::mounts() const {
  if (!mounts_) mounts_ = read_mounts();
  return *mounts_;
}

std::string sandbox_cgroups::cgroups_path() const { return "/" + parent_ + "/" + id_; }

std::vector<std::string> sandbox_cgroups::v1_mounts() {
  std::vector<std::string> out;
  for (const auto& m : read_mounts()) out.push_back(m.path);
  return out;
}

std::string sandbox_cgroups::limit_parent_memory(const std::string& parent, uint64_t bytes) {
  for (const auto& m : read_mounts()) {
    bool memory = false;
    for (const auto& o : m.options) memory = memory || o == "memory";
    if (!memory) continue;
    const std::string dir = m.path + "/" + parent;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return "mkdir " + dir + ": " + std::strerror(errno);
    const std::string value = std::to_string(bytes);
    const std::string memsw = dir + "/memory.memsw.limit_in_bytes";
    const bool has_memsw = ::access(memsw.c_str(), F_OK) == 0;
    // memsw may never be below the limit: raise it first when the limit goes up, last when down.
    uint64_t current = 0;
    {
      std::ifstream in(dir + "/memory.limit_in_bytes");
      in >> current;
    }
    if (has_memsw && bytes > current && !write_text(memsw, value))
      return "write " + memsw + ": " + std::strerror(errno);
    if (!write_text(dir + "/memory.limit_in_bytes", value))
      return "write " + dir + "/memory.limit_in_bytes: " + std::strerror(errno);
    if (has_memsw && bytes <= current && !write_text(memsw, value))
      return "write " + memsw + ": " + std::strerror(errno);
    return {};
  }
  return "no memory cgroup controller mounted";
}

std::string sandbox_cgroups::dir_of(const std::string& controller) const {
  for (const auto& m : mounts())
    for (const auto& o : m.options)
      if (o == controller) return m.path + cgroups_path();
  return {};
}

std::string sandbox_cgroups::set_cpu_limit(uint32_t millis, uint32_t period_us) const {
  const std::string dir = dir_of("cpu");
  if (dir.empty()) return "no cpu cgroup controller mounted";
  uint64_t quota = static_cast<uint64_t>(millis) * period_us / 1000;
  if (quota < 1000) quota = 1000;
  if (!write_text(dir + "/cpu.cfs_period_us", std::to_string(period_us)))
    return "write " + dir + "/cpu.cfs_period_us: " + std::strerror(errno);
  if (!write_text(dir + "/cpu.cfs_quota_us", std::to_string(quota)))
    return "write " + dir + "/cpu.cfs_quota_us: " + std::strerror(errno);
  return {};
}

std::string sandbox_cgroups::write_file(const std::string& controller, const std::string& file,
                                        const std::string& value) const {
  const std::string dir = dir_of(controller);
  if (dir.empty()) return "no " + controller + " cgroup controller mounted";
  if (!write_text(dir + "/" + file, value))
    return "write " + dir + "/" + file + ": " + std::strerror(errno);
  return {};
}

std::string sandbox_cgroups::set_cpu_shares(uint64_t shares) const {
  return write_file("cpu", "cpu.shares", std::to_string(shares));
}

std::string sandbox_cgroups::reset_cpu_usage() const {
  return write_file("cpuacct", "cpuacct.usage", "0");
}

std::string sandbox_cgroups::clear_cpu_limit() const {
  return write_file("cpu", "cpu.cfs_quota_us", "-1");
}

std::string sandbox_cgroups::set_memory_limit(uint64_t bytes) const {
  const std::string dir = dir_of("memory");
  if (dir.empty()) return "no memory cgroup controller mounted";
  const std::string limit = dir + "/memory.limit_in_bytes";
  const std::string memsw = dir + "/memory.memsw.limit_in_bytes";
  struct stat st {};
  const bool has_memsw = stat(memsw.c_str(), &st) == 0;
  uint64_t current = 0;
  const bool raising = read_u64(limit, current) && bytes > current;
  auto write = [&](const std::string& path) -> std::string {
    if (write_text(path, std::to_string(bytes))) return {};
    return "write " + path + ": " + std::strerror(errno);
  };
  // memsw >= limit at every step: raise memsw first, lower it last.
  if (has_memsw && raising)
    if (auto e = write(memsw); !e.empty()) return e;
  if (auto e = write(limit); !e.empty()) return e;
  if (has_memsw && !raising)
    if (auto e = write(memsw); !e.empty()) return e;
  return {};
}

sandbox_usage sandbox_cgroups::usage() const {
  sandbox_usage u;
  if (const auto d = dir_of("cpuacct"); !d.empty()) (void)read_u64(d + "/cpuacct.usage", u.cpu_usage_ns);
  if (const auto d = dir_of("memory"); !d.empty()) {
    (void)read_u64(d + "/memory.usage_in_bytes", u.memory_bytes);
    std::ifstream in(d + "/memory.oom_control");
    std::string k;
    uint64_t v = 0;
    while (in >> k >> v)
      if (k == "oom_kill" && v > 0) u.oom_killed = true;
  }
  return u;
}

std::vector<std::string> sandbox_cgroups::existing_dirs() const {
  std::vector<std::string> out;
  for (const auto& m : mounts()) {
    const std::string d = m.path + cgroups_path();
    if (dir_exists(d)) out.push_back(d);
  }
  return out;
}

std::string sandbox_cgroups::kill_and_remove(std::chrono::steady_clock::time_point deadline) const {
  const auto dirs = existing_dirs();
  if (dirs.empty()) return {};
  std::vector<int> pids;
  for (const auto& d : dirs) {
    std::ifstream in(d + "/cgroup.procs");
    int pid = 0;
    while (in >> pid) pids.push_back(pid);
  }
  if (!pids.empty() && kill_and_wait(pids, deadline) != 0)
    return "processes of the sandbox survived SIGKILL";
  std::string err;
  for (const auto& d : dirs) {
    for (;;) {
      if (rmdir(d.c_str()) == 0 || errno == ENOENT) break;
      if (errno != EBUSY || std::chrono::steady_clock::now() >= deadline) {
        if (err.empty()) err = "rmdir " + d + ": " + std::strerror(errno);
        break;
      }
      std::this_thread::sleep_for(rmdir_retry_interval);
    }
  }
  return err;
}

}  // namespace corral::gvisor_detail
