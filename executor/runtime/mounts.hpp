#pragma once
// Host mounts made by the runtime: one overlayfs per sandbox (its writable layer). Implemented
// in mount_unsafe.cpp. Functions return an empty string on success, else an error text.
#include <string>
#include <vector>

namespace corral::gvisor_detail {

// Mounts overlayfs on target: lower (read-only image rootfs), upper and work (same filesystem,
// empty). Paths must not contain ',', ':' or '\\' (overlayfs option syntax); the caller checks.
[[nodiscard]] std::string mount_overlay(const std::string& lower, const std::string& upper,
                                        const std::string& work, const std::string& target);

// Unmounts target (never following a symlink at target); lazily (MNT_DETACH) when it is busy.
// Not mounted: success.
[[nodiscard]] std::string unmount(const std::string& target);

// True when target is a mount point in this process's mount namespace (/proc/self/mountinfo).
[[nodiscard]] bool is_mount_point(const std::string& target);

// Mount points at or below prefix (for tests and leak checks).
[[nodiscard]] std::vector<std::string> mounts_under(const std::string& prefix);

}  // namespace corral::gvisor_detail
