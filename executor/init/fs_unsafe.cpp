// Raw syscalls of corral-init's file operations (see init_fs.hpp).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "executor/init/init_fs.hpp"
#include "executor/unique_fd.hpp"

namespace corral::init {
namespace {

// Names read from a directory per pass while removing it (it is re-read after each pass, so
// that entries are never unlinked while the same stream iterates over them).
constexpr std::size_t remove_batch_entries = 256;

fs_error from_errno(int e = errno) { return fs_error{e == 0 ? EIO : e, {}}; }

fs_error not_regular() { return fs_error{EINVAL, "not a regular file"}; }

wire::FsFileType type_of(mode_t mode) {
  if (S_ISREG(mode)) return wire::FsFileType::regular;
  if (S_ISDIR(mode)) return wire::FsFileType::directory;
  if (S_ISLNK(mode)) return wire::FsFileType::symlink;
  return wire::FsFileType::other;
}

fs_entry entry_of(const struct stat& st, std::string name) {
  fs_entry e;
  e.name = std::move(name);
  e.type = type_of(st.st_mode);
  e.size = static_cast<uint64_t>(st.st_size);
  e.mode = static_cast<uint32_t>(st.st_mode & 07777);
  e.mtime_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
  return e;
}

std::string last_component(const std::string& path) {
  std::size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;
  const std::size_t slash = path.rfind('/', end - 1);
  return slash == std::string::npos ? path.substr(0, end) : path.substr(slash + 1, end - slash - 1);
}

// Splits an absolute path into its parent directory and last component (trailing slashes
// dropped). Empty name for "/".
void split(const std::string& path, std::string& parent, std::string& name) {
  std::size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;
  const std::size_t slash = path.rfind('/', end - 1);
  name = path.substr(slash + 1, end - slash - 1);
  parent = slash == 0 ? "/" : path.substr(0, slash);
}

int open_flags_nofollow_dir() { return O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC; }

// Removes name in dirfd (see fs_remove). complete turns false when the budget ran out.
fs_error remove_at(int dirfd, const char* name, bool recursive, std::size_t& budget,
                   uint64_t& removed, bool& complete, int depth) {
  struct stat st {};
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return from_errno();
  if (!S_ISDIR(st.st_mode)) {
    if (budget == 0) {
      complete = false;
      return {};
    }
    if (::unlinkat(dirfd, name, 0) != 0) return from_errno();
    --budget;
    ++removed;
    return {};
  }
  if (recursive) {
    if (depth >= fs_max_remove_depth) {
      return fs_error{ELOOP, "directory tree deeper than " + std::to_string(fs_max_remove_depth) +
                                 " levels"};
    }
    unique_fd fd(::openat(dirfd, name, open_flags_nofollow_dir()));
    if (!fd.valid()) return from_errno();
    for (;;) {
      // A fresh stream per pass: what the previous pass removed is not seen again.
      const int pass_fd = ::openat(fd.get(), ".", open_flags_nofollow_dir());
      if (pass_fd < 0) return from_errno();
      DIR* dir = ::fdopendir(pass_fd);
      if (dir == nullptr) {
        const int e = errno;
        ::close(pass_fd);
        return from_errno(e);
      }
      std::vector<std::string> names;
      errno = 0;
      while (names.size() < remove_batch_entries) {
        const dirent* d = ::readdir(dir);
        if (d == nullptr) break;
        if (std::strcmp(d->d_name, ".") == 0 || std::strcmp(d->d_name, "..") == 0) continue;
        names.emplace_back(d->d_name);
      }
      const int read_error = errno;
      ::closedir(dir);
      if (read_error != 0) return from_errno(read_error);
      if (names.empty()) break;
      for (const auto& n : names) {
        fs_error e = remove_at(fd.get(), n.c_str(), true, budget, removed, complete, depth + 1);
        if (!e.ok() || !complete) return e;
      }
    }
  }
  if (budget == 0) {
    complete = false;
    return {};
  }
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0) {
    const int e = errno;
    return from_errno(e == EEXIST ? ENOTEMPTY : e);
  }
  --budget;
  ++removed;
  return {};
}

}  // namespace

fs_error fs_read(const std::string& path, uint64_t offset, std::size_t max_bytes,
                 std::vector<uint8_t>& out, bool& eof, fs_entry& file) {
  out.clear();
  eof = false;
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return from_errno();
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return from_errno();
  if (S_ISDIR(st.st_mode)) return from_errno(EISDIR);
  if (!S_ISREG(st.st_mode)) return not_regular();
  file = entry_of(st, last_component(path));
  out.resize(max_bytes);
  std::size_t got = 0;
  while (got < max_bytes) {
    const ssize_t n = ::pread(fd.get(), out.data() + got, max_bytes - got,
                              static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      out.clear();
      return from_errno(e);
    }
    if (n == 0) {
      eof = true;
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  // A file that reports its size (not /proc's) ends there: spare the client an empty read.
  if (st.st_size > 0 && offset + got >= static_cast<uint64_t>(st.st_size)) eof = true;
  return {};
}

fs_error fs_write(const std::string& path, const fs_write_request& r, uint64_t& written,
                  uint64_t& next_offset, fs_entry& file) {
  written = 0;
  int flags = O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  if (r.create || r.exclusive) flags |= O_CREAT;
  if (r.exclusive) flags |= O_EXCL;
  if (r.truncate) flags |= O_TRUNC;
  if (r.append) flags |= O_APPEND;
  unique_fd fd(::open(path.c_str(), flags, static_cast<mode_t>(r.mode & 07777)));
  if (!fd.valid()) return from_errno();
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return from_errno();
  if (!S_ISREG(st.st_mode)) return not_regular();
  while (written < r.size) {
    const ssize_t n =
        r.append ? ::write(fd.get(), r.data + written, r.size - written)
                 : ::pwrite(fd.get(), r.data + written, r.size - written,
                            static_cast<off_t>(r.offset + written));
    if (n < 0) {
      if (errno == EINTR) continue;
      return from_errno();
    }
    if (n == 0) return from_errno(EIO);
    written += static_cast<uint64_t>(n);
  }
  if (::fstat(fd.get(), &st) != 0) return from_errno();
  next_offset = r.append ? static_cast<uint64_t>(st.st_size) : r.offset + written;
  file = entry_of(st, last_component(path));
  return {};
}

fs_error fs_list(const std::string& path, uint64_t first, std::size_t max_entries,
                 std::vector<fs_entry>& out, bool& eof) {
  out.clear();
  eof = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return from_errno();
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    const int e = errno;
    ::close(fd);
    return from_errno(e);
  }
  uint64_t index = 0;
  errno = 0;
  for (;;) {
    const dirent* d = ::readdir(dir);
    if (d == nullptr) {
      eof = true;
      break;
    }
    if (std::strcmp(d->d_name, ".") == 0 || std::strcmp(d->d_name, "..") == 0) continue;
    if (index++ < first) continue;
    if (out.size() == max_entries) break;  // one more exists: not eof
    struct stat st {};
    if (::fstatat(::dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      out.push_back(entry_of(st, d->d_name));
    } else {
      fs_entry gone;  // removed meanwhile, or unreadable: listed by name only
      gone.name = d->d_name;
      out.push_back(std::move(gone));
    }
    errno = 0;
  }
  const int read_error = errno;
  ::closedir(dir);
  if (read_error != 0 && eof) {
    out.clear();
    return from_errno(read_error);
  }
  return {};
}

fs_error fs_stat(const std::string& path, fs_entry& out) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return from_errno();
  out = entry_of(st, last_component(path));
  return {};
}

fs_error fs_mkdir(const std::string& path, bool parents, bool exclusive, uint32_t mode) {
  const mode_t m = static_cast<mode_t>(mode & 07777);
  std::string target = path;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (parents) {
    // Every proper prefix: created when missing, else it must be a directory.
    for (std::size_t slash = target.find('/', 1); slash != std::string::npos;
         slash = target.find('/', slash + 1)) {
      if (target[slash - 1] == '/') continue;  // "//"
      const std::string prefix = target.substr(0, slash);
      if (::mkdir(prefix.c_str(), 0755) == 0) continue;
      if (errno != EEXIST) return from_errno();
      struct stat st {};
      if (::stat(prefix.c_str(), &st) != 0) return from_errno();
      if (!S_ISDIR(st.st_mode)) return fs_error{ENOTDIR, prefix + " is not a directory"};
    }
  }
  if (::mkdir(target.c_str(), m) == 0) return {};
  const int e = errno;
  if (e == EEXIST && parents && !exclusive) {
    struct stat st {};
    if (::stat(target.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return {};
  }
  return from_errno(e);
}

fs_error fs_remove(const std::string& path, bool recursive, std::size_t max_entries,
                   uint64_t& removed, bool& done) {
  removed = 0;
  done = false;
  std::string parent, name;
  split(path, parent, name);
  if (name.empty() || name == "." || name == "..")
    return fs_error{EINVAL, "cannot remove \"/\", \".\" or \"..\""};
  unique_fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return from_errno();
  std::size_t budget = max_entries;
  bool complete = true;
  fs_error e = remove_at(dir.get(), name.c_str(), recursive, budget, removed, complete, 0);
  done = e.ok() && complete;
  return e;
}

}  // namespace corral::init
