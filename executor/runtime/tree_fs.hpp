#pragma once
// Host-side file operations on trees that a sandbox may have written (docs/promises.md P13): nothing here ever
// follows a symbolic link or crosses into another filesystem. Implemented in
// tree_fs_unsafe.cpp. Every function returns an empty string on success, else an error text.
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace corral::gvisor_detail {

// mkdir -p for the runtime's own paths (the data dir); existing directories are kept.
[[nodiscard]] std::string make_dirs(const std::string& path, mode_t mode);

// Creates one directory (not its parents) with exactly this mode (umask ignored).
[[nodiscard]] std::string make_dir(const std::string& path, mode_t mode);

// Removes path and everything below it. Symlinks are removed, never followed; a directory on
// another filesystem (a mount point left behind) is an error and is not entered. Trees of any
// depth are handled without recursion and with a bounded number of open fds: subtrees deeper
// than max_open_depth are moved up to the top and removed from there. Absent path: success.
[[nodiscard]] std::string remove_tree(const std::string& path, std::size_t max_open_depth = 64);

// Writes a new file (O_EXCL: never through an existing file or link) with mode.
[[nodiscard]] std::string write_new_file(const std::string& path, std::string_view content,
                                         mode_t mode);

// Reads a regular file without following a final symlink; nullopt on error or when larger
// than max_bytes.
[[nodiscard]] std::optional<std::string> read_small_file(const std::string& path,
                                                         std::size_t max_bytes);

// Reads the last max_bytes of a regular file (for error messages); empty on error.
[[nodiscard]] std::string read_file_tail(const std::string& path, std::size_t max_bytes);

// Absolute, symlink-free form of an existing path.
[[nodiscard]] std::optional<std::string> real_path(const std::string& path);

}  // namespace corral::gvisor_detail
