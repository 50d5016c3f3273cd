#include "executor/runtime/host_image.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "executor/runtime/tree_fs.hpp"

namespace corral::gvisor_detail {
namespace {

// Bump when the recipe changes in a way the manifest does not show.
constexpr const char* recipe_version = "corral-host-image-1";
// A copied /etc file larger than this is skipped (ca-certificates.crt is ~220 KiB).
constexpr std::size_t max_copied_file_bytes = 16u * 1024 * 1024;

struct entry {
  enum class kind { dir, file, link };
  kind type;
  std::string path;  // relative to rootfs, no leading slash
  mode_t mode;
  std::string data;  // file content or link target
};

class manifest {
 public:
  void dir(const std::string& path, mode_t mode) { entries_.push_back({entry::kind::dir, path, mode, {}}); }
  void file(const std::string& path, std::string content, mode_t mode = 0644) {
    entries_.push_back({entry::kind::file, path, mode, std::move(content)});
  }
  void link(const std::string& path, std::string target) {
    entries_.push_back({entry::kind::link, path, 0777, std::move(target)});
  }

  // Copies a host path (never following a symlink at it) to path. Directories are copied
  // recursively when recursive; other file types are skipped. Absent host paths are skipped.
  void copy(const std::string& host_path, const std::string& path, bool recursive) {
    struct stat st {};
    if (lstat(host_path.c_str(), &st) != 0) return;
    if (S_ISLNK(st.st_mode)) {
      std::string target(PATH_MAX, '\0');
      const ssize_t n = readlink(host_path.c_str(), target.data(), target.size());
      if (n <= 0) return;
      target.resize(static_cast<std::size_t>(n));
      link(path, std::move(target));
    } else if (S_ISREG(st.st_mode)) {
      auto content = read_small_file(host_path, max_copied_file_bytes);
      if (!content) return;
      file(path, std::move(*content), (st.st_mode & 0111) != 0 ? 0755 : 0644);
    } else if (S_ISDIR(st.st_mode) && recursive) {
      dir(path, 0755);
      DIR* d = opendir(host_path.c_str());
      if (d == nullptr) return;
      std::vector<std::string> names;
      while (dirent* e = readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
          names.emplace_back(e->d_name);
      }
      closedir(d);
      std::sort(names.begin(), names.end());
      for (const auto& n : names) copy(host_path + "/" + n, path + "/" + n, true);
    }
  }

  [[nodiscard]] std::string hash() const {
    // Two FNV-1a 64 streams with different offsets: 128 bits over a length-prefixed encoding.
    uint64_t a = 0xcbf29ce484222325ULL, b = 0x84222325cbf29ce4ULL;
    auto mix = [&](const void* p, std::size_t n) {
      const auto* c = static_cast<const unsigned char*>(p);
      for (std::size_t i = 0; i < n; ++i) {
        a = (a ^ c[i]) * 0x100000001b3ULL;
        b = (b ^ c[i] ^ 0x5a) * 0x100000001b3ULL;
      }
    };
    auto mix_str = [&](const std::string& s) {
      const uint64_t n = s.size();
      mix(&n, sizeof n);
      mix(s.data(), s.size());
    };
    mix_str(recipe_version);
    for (const auto& e : entries_) {
      const auto t = static_cast<uint32_t>(e.type);
      const auto m = static_cast<uint32_t>(e.mode);
      mix(&t, sizeof t);
      mix(&m, sizeof m);
      mix_str(e.path);
      mix_str(e.data);
    }
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(a),
                  static_cast<unsigned long long>(b));
    return buf;
  }

  [[nodiscard]] std::string write_to(const std::string& rootfs) const {
    if (auto err = make_dir(rootfs, 0755); !err.empty()) return err;
    for (const auto& e : entries_) {
      const std::string p = rootfs + "/" + e.path;
      std::string err;
      switch (e.type) {
        case entry::kind::dir: err = make_dir(p, e.mode); break;
        case entry::kind::file: err = write_new_file(p, e.data, e.mode); break;
        case entry::kind::link:
          if (symlink(e.data.c_str(), p.c_str()) != 0)
            err = "symlink " + p + ": " + std::strerror(errno);
          break;
      }
      if (!err.empty()) return err;
    }
    return {};
  }

 private:
  std::vector<entry> entries_;
};

bool host_has(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

manifest host_recipe() {
  manifest m;
  // Merged-/usr links; the host's /usr is bind-mounted over the empty usr/ at run time.
  for (const char* l : {"bin", "lib", "lib64", "sbin", "lib32", "libx32"}) {
    const std::string name(l);
    const bool always = name == "bin" || name == "lib" || name == "lib64" || name == "sbin";
    if (always || (host_has("/" + name) && host_has("/usr/" + name))) m.link(name, "usr/" + name);
  }
  m.dir("usr", 0755);
  m.dir("proc", 0555);
  m.dir("dev", 0755);
  m.dir("sys", 0555);
  m.dir("tmp", 01777);
  m.dir("root", 0700);
  m.dir("home", 0755);
  m.dir("run", 0755);
  m.dir("var", 0755);
  m.dir("var/tmp", 01777);
  m.dir(".corral", 0755);
  m.file(".corral/init", "", 0755);  // mount point of the corral-init binary

  m.dir("etc", 0755);
  m.file("etc/passwd",
         "root:x:0:0:root:/root:/bin/sh\n"
         "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
  m.file("etc/group", "root:x:0:\nnogroup:x:65534:\n");
  m.file("etc/hosts", "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  m.file("etc/hostname", "sandbox\n");
  // No host resolver: a sandbox with a network gets its own resolv.conf mounted over this one.
  m.file("etc/resolv.conf", "# no network\n");
  m.file("etc/nsswitch.conf",
         "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n"
         "protocols: files\nservices: files\nethers: files\nrpc: files\n");
  m.link("etc/mtab", "../proc/self/mounts");

  // Copies of public host configuration that programs in /usr expect.
  for (const char* f : {"ld.so.cache", "ld.so.conf", "debian_version", "os-release", "timezone",
                        "localtime", "mime.types", "protocols", "services", "shells", "host.conf",
                        "gai.conf", "magic", "magic.mime", "ca-certificates.conf", "networks",
                        "rpc", "ethertypes", "inputrc", "bash.bashrc"}) {
    m.copy(std::string("/etc/") + f, std::string("etc/") + f, false);
  }
  for (const char* d : {"ld.so.conf.d", "alternatives", "python3", "python3.11", "python3.12",
                        "python3.13", "ca-certificates"}) {
    m.copy(std::string("/etc/") + d, std::string("etc/") + d, true);
  }
  if (host_has("/etc/ssl")) {
    m.dir("etc/ssl", 0755);
    m.copy("/etc/ssl/certs", "etc/ssl/certs", true);
    m.copy("/etc/ssl/openssl.cnf", "etc/ssl/openssl.cnf", false);
  }
  return m;
}

}  // namespace

host_image ensure_host_image(const std::string& images_dir) {
  host_image out;
  const std::string host_dir = images_dir + "/host";
  if (auto err = make_dirs(host_dir, 0700); !err.empty()) {
    out.error = err;
    return out;
  }
  const manifest m = host_recipe();
  out.hash = m.hash();
  const std::string final_dir = host_dir + "/" + out.hash;
  out.rootfs = final_dir + "/rootfs";
  struct stat st {};
  if (lstat(final_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return out;  // built before

  static std::atomic<unsigned> builds{0};
  const std::string tmp = host_dir + "/.tmp-" + out.hash + "-" + std::to_string(getpid()) + "-" +
                          std::to_string(++builds);
  (void)remove_tree(tmp);
  std::string err = make_dir(tmp, 0755);
  if (err.empty()) err = m.write_to(tmp + "/rootfs");
  if (err.empty() && rename(tmp.c_str(), final_dir.c_str()) != 0) {
    if (errno != EEXIST && errno != ENOTEMPTY) err = "rename " + tmp + ": " + std::strerror(errno);
  }
  (void)remove_tree(tmp);  // left over only when we lost a race or failed
  if (!err.empty()) {
    out.error = "building the host image: " + err;
    out.rootfs.clear();
  }
  return out;
}

std::string gc_host_images(const std::string& images_dir, const std::string& keep_hash,
                           const std::set<std::string>& in_use) {
  const std::string host_dir = images_dir + "/host";
  DIR* d = opendir(host_dir.c_str());
  if (d == nullptr) return {};
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != ".." && n != keep_hash) names.push_back(n);
  }
  closedir(d);
  std::string first_err;
  for (const auto& n : names) {
    const std::string dir = host_dir + "/" + n;
    if (in_use.count(dir + "/rootfs") != 0) continue;
    if (auto err = remove_tree(dir); !err.empty() && first_err.empty()) first_err = err;
  }
  return first_err;
}

}  // namespace corral::gvisor_detail
