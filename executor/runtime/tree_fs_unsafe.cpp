// *at() file operations that refuse symlinks and mount crossings (docs/promises.md P13).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "executor/runtime/tree_fs.hpp"
#include "executor/unique_fd.hpp"

namespace corral::gvisor_detail {
namespace {

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

std::pair<std::string, std::string> split_parent(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// One directory being emptied: its fd (owned by dir) and the name it has in its parent.
struct open_dir {
  DIR* dir = nullptr;
  std::string name;
};

// Empties the directory open as root_fd (on device dev). Returns the number of subtrees moved up
// into the root during this pass (another pass is needed then) or -1 on error (err set).
long empty_dir_pass(int root_fd, dev_t dev, std::size_t max_open_depth, std::string& err,
                    unsigned long& move_counter, bool& root_had_entries) {
  std::vector<open_dir> stack;
  // A new open file description (not a dup, which would share the previous pass's offset at
  // the end of the directory).
  const int root_copy = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_copy < 0) {
    err = std::string("open: ") + std::strerror(errno);
    return -1;
  }
  DIR* root_dir = fdopendir(root_copy);
  if (root_dir == nullptr) {
    close(root_copy);
    err = std::string("fdopendir: ") + std::strerror(errno);
    return -1;
  }
  stack.push_back({root_dir, ""});
  long moved = 0;
  root_had_entries = false;
  while (!stack.empty()) {
    open_dir& top = stack.back();
    const int top_fd = dirfd(top.dir);
    errno = 0;
    dirent* e = readdir(top.dir);
    if (e == nullptr) {
      const std::string name = top.name;
      closedir(top.dir);
      stack.pop_back();
      if (!stack.empty()) {
        if (unlinkat(dirfd(stack.back().dir), name.c_str(), AT_REMOVEDIR) != 0 &&
            errno != ENOENT && err.empty()) {
          err = errno_text("rmdir", name);
        }
      }
      continue;
    }
    const char* n = e->d_name;
    if (std::strcmp(n, ".") == 0 || std::strcmp(n, "..") == 0) continue;
    if (stack.size() == 1) root_had_entries = true;
    struct stat st {};
    if (fstatat(top_fd, n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT && err.empty()) err = errno_text("stat", n);
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (unlinkat(top_fd, n, 0) != 0 && errno != ENOENT && err.empty())
        err = errno_text("unlink", n);
      continue;
    }
    if (st.st_dev != dev) {
      if (err.empty()) err = std::string("refusing to enter another filesystem at ") + n;
      continue;
    }
    if (stack.size() >= max_open_depth) {
      // Too deep to keep one more fd open: move the subtree up to the root for a later pass.
      for (;;) {
        const std::string target = ".corral-rm-" + std::to_string(++move_counter);
        if (renameat2(top_fd, n, root_fd, target.c_str(), RENAME_NOREPLACE) == 0) {
          ++moved;
          break;
        }
        if (errno == EEXIST) continue;
        if (err.empty()) err = errno_text("rename", n);
        break;
      }
      continue;
    }
    const int sub = openat(top_fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      if (errno != ENOENT && err.empty()) err = errno_text("open", n);
      continue;
    }
    struct stat sub_st {};
    if (fstat(sub, &sub_st) != 0 || sub_st.st_dev != dev || sub_st.st_ino != st.st_ino) {
      close(sub);
      if (err.empty()) err = std::string("directory changed while removing: ") + n;
      continue;
    }
    DIR* sub_dir = fdopendir(sub);
    if (sub_dir == nullptr) {
      close(sub);
      if (err.empty()) err = errno_text("fdopendir", n);
      continue;
    }
    stack.push_back({sub_dir, n});
  }
  return err.empty() ? moved : -1;
}

}  // namespace

std::string make_dirs(const std::string& path, mode_t mode) {
  if (path.empty()) return "empty path";
  std::string cur;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    const auto slash = path.find('/', pos);
    const auto end = slash == std::string::npos ? path.size() : slash;
    cur = path.substr(0, end);
    pos = end + 1;
    if (cur.empty()) continue;
    if (mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) return errno_text("mkdir", cur);
    if (slash == std::string::npos) break;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return "not a directory: " + path;
  return {};
}

std::string make_dir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0) return errno_text("mkdir", path);
  if (chmod(path.c_str(), mode) != 0) return errno_text("chmod", path);
  return {};
}

std::string remove_tree(const std::string& path, std::size_t max_open_depth) {
  if (max_open_depth < 2) max_open_depth = 2;
  const auto [parent, base] = split_parent(path);
  if (base.empty() || base == "." || base == "..") return "refusing to remove " + path;
  unique_fd parent_fd(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd) return errno == ENOENT ? std::string{} : errno_text("open", parent);
  struct stat st {};
  if (fstatat(parent_fd.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? std::string{} : errno_text("stat", path);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(parent_fd.get(), base.c_str(), 0) != 0 && errno != ENOENT)
      return errno_text("unlink", path);
    return {};
  }
  struct stat parent_st {};
  if (fstat(parent_fd.get(), &parent_st) != 0) return errno_text("stat", parent);
  if (parent_st.st_dev != st.st_dev) return "refusing to remove a mount point: " + path;
  unique_fd root(openat(parent_fd.get(), base.c_str(),
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root) return errno_text("open", path);
  unsigned long move_counter = 0;
  // Each pass removes everything within reach; a pass that moved subtrees up (or found entries
  // readdir had not returned yet) is followed by another. The bound only stops a pathological
  // loop; a real tree of depth D needs about D / max_open_depth passes.
  constexpr int max_passes = 100000;
  for (int pass = 0; pass < max_passes; ++pass) {
    std::string err;
    bool had_entries = false;
    const long moved = empty_dir_pass(root.get(), st.st_dev, max_open_depth, err, move_counter,
                                      had_entries);
    if (moved < 0) return err + " (removing " + path + ")";
    if (!had_entries) break;
  }
  root.reset();
  if (unlinkat(parent_fd.get(), base.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return errno_text("rmdir", path);
  return {};
}

std::string write_new_file(const std::string& path, std::string_view content, mode_t mode) {
  unique_fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) return errno_text("create", path);
  std::size_t off = 0;
  while (off < content.size()) {
    const ssize_t n = write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_text("write", path);
    }
    off += static_cast<std::size_t>(n);
  }
  if (fchmod(fd.get(), mode) != 0) return errno_text("chmod", path);
  return {};
}

std::optional<std::string> read_small_file(const std::string& path, std::size_t max_bytes) {
  unique_fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return std::nullopt;
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) return std::nullopt;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string read_file_tail(const std::string& path, std::size_t max_bytes) {
  unique_fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return {};
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
  const off_t start = st.st_size > static_cast<off_t>(max_bytes)
                          ? st.st_size - static_cast<off_t>(max_bytes)
                          : 0;
  std::string out(static_cast<std::size_t>(st.st_size - start), '\0');
  const ssize_t n = pread(fd.get(), out.data(), out.size(), start);
  if (n < 0) return {};
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> real_path(const std::string& path) {
  char* p = realpath(path.c_str(), nullptr);
  if (p == nullptr) return std::nullopt;
  std::string out(p);
  std::free(p);
  return out;
}

}  // namespace corral::gvisor_detail
