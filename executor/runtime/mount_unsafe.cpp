// mount(2) / umount2(2) for the per-sandbox overlayfs.
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "executor/runtime/mounts.hpp"

namespace corral::gvisor_detail {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.size() == 3 && oct.find_first_not_of("01234567") == std::string::npos) {
        out += static_cast<char>(std::stoi(oct, nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::vector<std::string> all_mount_points() {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mount_point;
    if (fields >> id >> parent >> devno >> root >> mount_point)
      out.push_back(unescape_mountinfo(mount_point));
  }
  return out;
}

}  // namespace

std::string mount_overlay(const std::string& lower, const std::string& upper,
                          const std::string& work, const std::string& target) {
  // index/metacopy/redirect_dir off: the upper layer is plain files and whiteouts only, and
  // overlayfs never follows redirects stored in it.
  const std::string options = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work +
                              ",index=off,metacopy=off,redirect_dir=off";
  if (mount("overlay", target.c_str(), "overlay", MS_NOSUID | MS_NODEV, options.c_str()) != 0)
    return "mount overlay on " + target + ": " + std::strerror(errno);
  return {};
}

std::string unmount(const std::string& target) {
  if (umount2(target.c_str(), UMOUNT_NOFOLLOW) == 0) return {};
  if (errno == EINVAL || errno == ENOENT) return {};  // not a mount point / gone
  if (errno == EBUSY && umount2(target.c_str(), UMOUNT_NOFOLLOW | MNT_DETACH) == 0) return {};
  return "umount " + target + ": " + std::strerror(errno);
}

bool is_mount_point(const std::string& target) {
  for (const auto& m : all_mount_points())
    if (m == target) return true;
  return false;
}

std::vector<std::string> mounts_under(const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& m : all_mount_points()) {
    if (m == prefix || (m.size() > prefix.size() && m.compare(0, prefix.size(), prefix) == 0 &&
                        m[prefix.size()] == '/'))
      out.push_back(m);
  }
  return out;
}

}  // namespace corral::gvisor_detail
