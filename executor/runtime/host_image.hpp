#pragma once
// The host default image (docs/architecture.md, "Runtimes"): the host's own programs and libraries, and nothing else
// of the host.
//
// The image rootfs holds only: the merged-/usr links (bin, lib, lib64, sbin; lib32 and libx32
// when the host has them), empty mount points (usr, proc, dev, sys, .corral/init), empty
// directories (tmp and var/tmp 1777, root 0700, home, run, var), and a generated minimal /etc:
// passwd (root, nobody), group, hosts, hostname, resolv.conf, nsswitch.conf, mtab, plus copies
// of the host's ld.so cache/config, alternatives links, CA certificates (/etc/ssl/certs,
// openssl.cnf), python3 site config, and a few public data files (os-release, timezone,
// localtime, mime.types, protocols, services, shells, magic...). /usr itself is bind-mounted
// read-only from the host at run time (oci_spec.hpp). Never copied: shadow/gshadow, ssh keys,
// /etc/ssl/private, machine-id, anything of /root, /home, /var, /tmp or the data dir.
//
// Images are immutable once built: the directory name is a hash of the recipe and of every
// copied byte, an image is built in a temporary directory and renamed into place, and a host
// whose /etc changed gets a new directory beside the old one (which sandboxes still running on
// it keep using; gc_host_images removes it once unused).
#include <set>
#include <string>

namespace corral::gvisor_detail {

struct host_image {
  std::string rootfs;  // absolute: <images_dir>/host/<hash>/rootfs
  std::string hash;
  std::string error;   // set when the image could not be built
};

// Finds or builds the current host image under images_dir (absolute). Safe against concurrent
// builders (the rename is atomic; a loser discards its copy).
[[nodiscard]] host_image ensure_host_image(const std::string& images_dir);

// Removes host image versions other than keep_hash whose rootfs is not in in_use. Returns an
// error text for the first failure (and goes on with the others).
[[nodiscard]] std::string gc_host_images(const std::string& images_dir,
                                         const std::string& keep_hash,
                                         const std::set<std::string>& in_use);

}  // namespace corral::gvisor_detail
