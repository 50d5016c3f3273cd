#pragma once
// File operations of corral-init (FsCall in schemas/init_command.fbs), implemented with raw
// syscalls in fs_unsafe.cpp. They run inside the sandbox, so every path resolves in the
// sandbox's own tree (symlinks included): the host never resolves a sandbox path (docs/promises.md P13).
//
// Every function is bounded by its arguments (bytes or entries per call) so that one call never
// holds init's single-threaded event loop for long, and never blocks on a FIFO or a device: only
// regular files are read or written (opened O_NONBLOCK, then checked). All fds are close-on-exec
// and closed before return. Results: fs_error{0} on success, else the errno and, when the errno
// alone would mislead, a reason.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "corral/wire/fs_common_generated.h"

namespace corral::init {

struct fs_error {
  int error_number = 0;  // 0: success
  std::string reason;    // empty: strerror(error_number) says it
  [[nodiscard]] bool ok() const { return error_number == 0; }
};

// One file as lstat(2) sees it.
struct fs_entry {
  std::string name;
  wire::FsFileType type = wire::FsFileType::unknown;
  uint64_t size = 0;
  uint32_t mode = 0;  // st_mode & 07777
  int64_t mtime_ms = 0;
};

// Reads at most max_bytes of the regular file at path from offset into out (replaced).
// eof: the end of the file was reached. file: the file's fstat. EISDIR for a directory, EINVAL
// for anything that is not a regular file.
[[nodiscard]] fs_error fs_read(const std::string& path, uint64_t offset, std::size_t max_bytes,
                               std::vector<uint8_t>& out, bool& eof, fs_entry& file);

struct fs_write_request {
  uint64_t offset = 0;
  const uint8_t* data = nullptr;
  std::size_t size = 0;
  bool create = true;
  bool truncate = false;
  bool append = false;
  bool exclusive = false;
  uint32_t mode = 0644;
};
// Writes all of the request's bytes to the regular file at path. next_offset: the offset after
// the bytes written; file: the file's fstat afterwards.
[[nodiscard]] fs_error fs_write(const std::string& path, const fs_write_request& request,
                                uint64_t& written, uint64_t& next_offset, fs_entry& file);

// Lists at most max_entries entries of the directory at path, skipping the first `first` in
// directory order ("." and ".." are never listed). eof: no entry follows the last one listed.
[[nodiscard]] fs_error fs_list(const std::string& path, uint64_t first, std::size_t max_entries,
                               std::vector<fs_entry>& out, bool& eof);

// lstat of path (a final symlink is reported as a symlink); name is the last component.
[[nodiscard]] fs_error fs_stat(const std::string& path, fs_entry& out);

// mkdir; with parents, missing parents are created and an existing directory is fine unless
// exclusive. EEXIST when the path exists as something else; ENOTDIR when a parent is not one.
[[nodiscard]] fs_error fs_mkdir(const std::string& path, bool parents, bool exclusive,
                                uint32_t mode);

// Removes the file, symlink (never its target) or empty directory at path; with recursive, a
// directory and everything below it, never following a symlink, removing at most max_entries
// entries in this call. done: path is gone; false when the cap stopped it (call again).
// The tree may be at most fs_max_remove_depth levels deep.
inline constexpr int fs_max_remove_depth = 256;
[[nodiscard]] fs_error fs_remove(const std::string& path, bool recursive, std::size_t max_entries,
                                 uint64_t& removed, bool& done);

}  // namespace corral::init
