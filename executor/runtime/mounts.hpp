#pragma once
// Host mounts made by the runtime: one overlayfs per sandbox (its writable layer), on a
// loop-mounted ext4 image when the layer has a disk quota, and a tiny tmpfs per sandbox for the
// FIFOs of its link to corral-init. Implemented in mount_unsafe.cpp. Functions return an empty
// string on success, else an error text.
#include <cstdint>
#include <string>
#include <vector>

namespace corral::gvisor_detail {

// Mounts overlayfs on target: lower (read-only image rootfs), upper and work (same filesystem,
// empty). Paths must not contain ',', ':' or '\\' (overlayfs option syntax); the caller checks.
[[nodiscard]] std::string mount_overlay(const std::string& lower, const std::string& upper,
                                        const std::string& work, const std::string& target);

// Attaches image (a file holding an ext4 file system) to a free loop device with autoclear and
// mounts it on target (nosuid, nodev): a sandbox's size-limited writable layer (writes past
// the image's size fail with ENOSPC). The loop device goes away with the unmount.
[[nodiscard]] std::string mount_loop_ext4(const std::string& image, const std::string& target);

// Mounts a tmpfs on target (nosuid, nodev, noexec, mode 0700) that holds at most `inodes`
// files and no data: the place of a sandbox's link FIFOs. A FIFO on a disk file system has its
// timestamps journaled on every write and read that goes through it (pipe_write updates mtime,
// pipe_read atime); on tmpfs they stay in memory.
[[nodiscard]] std::string mount_fifo_tmpfs(const std::string& target, uint32_t inodes);

// Copies the file src to a new file dst (mode 0600), holes kept as holes (SEEK_DATA/SEEK_HOLE
// and copy_file_range): a formatted layer image is ~1 MiB of data in a sparse file.
[[nodiscard]] std::string copy_sparse_file(const std::string& src, const std::string& dst);

// Unmounts target (never following a symlink at target); lazily (MNT_DETACH) when it is busy.
// Not mounted: success.
[[nodiscard]] std::string unmount(const std::string& target);

// True when target is a mount point in this process's mount namespace (/proc/self/mountinfo).
[[nodiscard]] bool is_mount_point(const std::string& target);

// Mount points at or below prefix (for tests and leak checks).
[[nodiscard]] std::vector<std::string> mounts_under(const std::string& prefix);

}  // namespace corral::gvisor_detail
