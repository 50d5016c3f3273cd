// mount(2) / umount2(2) / loop ioctls for the per-sandbox overlayfs and its size-limited layer.
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "executor/runtime/mounts.hpp"

namespace corral::gvisor_detail {
namespace {

// Attempts to attach an image when other processes race for the same free loop device.
constexpr int loop_attach_attempts = 8;

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

std::string mount_fifo_tmpfs(const std::string& target, uint32_t inodes) {
  // size=4k: the smallest a tmpfs takes (a FIFO's buffer is pipe memory, not tmpfs pages).
  const std::string options = "size=4k,mode=0700,nr_inodes=" + std::to_string(inodes);
  if (mount("tmpfs", target.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options.c_str()) != 0)
    return "mount tmpfs on " + target + ": " + std::strerror(errno);
  return {};
}

std::string mount_loop_ext4(const std::string& image, const std::string& target) {
  const int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) return std::string("open /dev/loop-control: ") + std::strerror(errno);
  const int backing = open(image.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (backing < 0) {
    const int e = errno;
    close(control);
    return "open " + image + ": " + std::strerror(e);
  }
  std::string err;
  // Another process may take the free device between GET_FREE and CONFIGURE: retry.
  for (int attempt = 0; attempt < loop_attach_attempts; ++attempt) {
    const int n = ioctl(control, LOOP_CTL_GET_FREE);
    if (n < 0) {
      err = std::string("LOOP_CTL_GET_FREE: ") + std::strerror(errno);
      break;
    }
    const std::string dev = "/dev/loop" + std::to_string(n);
    const int loop = open(dev.c_str(), O_RDWR | O_CLOEXEC);
    if (loop < 0) {
      err = "open " + dev + ": " + std::strerror(errno);
      continue;
    }
    loop_config config{};
    config.fd = static_cast<uint32_t>(backing);
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (ioctl(loop, LOOP_CONFIGURE, &config) != 0) {
      err = "LOOP_CONFIGURE " + dev + ": " + std::strerror(errno);
      close(loop);
      if (errno == EBUSY) continue;
      break;
    }
    err.clear();
    if (mount(dev.c_str(), target.c_str(), "ext4", MS_NOSUID | MS_NODEV, "") != 0)
      err = "mount " + dev + " on " + target + ": " + std::strerror(errno);
    close(loop);  // mounted: autoclear detaches it at the unmount; not mounted: now
    break;
  }
  close(backing);
  close(control);
  return err;
}

std::string copy_sparse_file(const std::string& src, const std::string& dst) {
  const int in = open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) return "open " + src + ": " + std::strerror(errno);
  const int out = open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (out < 0) {
    const int e = errno;
    close(in);
    return "create " + dst + ": " + std::strerror(e);
  }
  std::string err;
  const off_t size = lseek(in, 0, SEEK_END);
  if (size < 0 || ftruncate(out, size) != 0) err = "size " + dst + ": " + std::strerror(errno);
  off_t pos = 0;
  while (err.empty() && pos < size) {
    const off_t data = lseek(in, pos, SEEK_DATA);
    if (data < 0) {
      if (errno != ENXIO) err = "seek " + src + ": " + std::strerror(errno);
      break;  // ENXIO: only a hole is left
    }
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) hole = size;
    loff_t from = data, to = data;
    while (from < hole) {
      const ssize_t n = copy_file_range(in, &from, out, &to, static_cast<size_t>(hole - from), 0);
      if (n <= 0) {
        err = "copy " + src + ": " + (n == 0 ? std::string("short file") : std::strerror(errno));
        break;
      }
    }
    pos = hole;
  }
  close(in);
  if (close(out) != 0 && err.empty()) err = "close " + dst + ": " + std::strerror(errno);
  return err;
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
