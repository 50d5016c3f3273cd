#include "executor/runtime/oci_spec.hpp"

#include <vector>

#include "executor/runtime/json_text.hpp"

namespace corral::gvisor_detail {
namespace {

// Docker's default capability set without CAP_NET_RAW, and corral-init's extra one.
const std::vector<std::string>& init_capabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",  "CAP_SETGID",       "CAP_SETUID",           "CAP_SETFCAP",
      "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
      "CAP_AUDIT_WRITE", init_only_capability};
  return caps;
}

void mount(json_writer& w, const char* destination, const char* type, const std::string& source,
           const std::vector<std::string>& options) {
  w.begin_object();
  w.key("destination").value(destination);
  w.key("type").value(type);
  w.key("source").value(source);
  w.key("options").string_array(options);
  w.end_object();
}

void rlimit(json_writer& w, const char* type, uint64_t value) {
  w.begin_object();
  w.key("type").value(type);
  w.key("hard").value(value);
  w.key("soft").value(value);
  w.end_object();
}

}  // namespace

std::string make_oci_config(const oci_inputs& in) {
  json_writer w;
  w.begin_object();
  w.key("ociVersion").value("1.0.2");

  w.key("process").begin_object();
  w.key("terminal").value(false);
  w.key("user").begin_object().key("uid").value(0).key("gid").value(0).end_object();
  w.key("args").string_array({init_path_in_sandbox});
  w.key("env").string_array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
  w.key("cwd").value("/");
  w.key("capabilities").begin_object();
  for (const char* set : {"bounding", "effective", "permitted"})
    w.key(set).string_array(init_capabilities());
  w.key("inheritable").string_array({});
  w.key("ambient").string_array({});
  w.end_object();
  w.key("rlimits").begin_array();
  if (in.nproc_limit > 0) rlimit(w, "RLIMIT_NPROC", in.nproc_limit);
  if (in.open_files_limit > 0) rlimit(w, "RLIMIT_NOFILE", in.open_files_limit);
  w.end_array();
  w.key("noNewPrivileges").value(true);
  w.end_object();

  w.key("root").begin_object();
  w.key("path").value(in.root_path);
  w.key("readonly").value(in.root_readonly);
  w.end_object();
  w.key("hostname").value(in.hostname);

  w.key("mounts").begin_array();
  mount(w, "/proc", "proc", "proc", {"nosuid", "noexec", "nodev"});
  mount(w, "/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"});
  mount(w, "/dev/pts", "devpts", "devpts",
        {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"});
  mount(w, "/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777"});
  mount(w, "/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"});
  mount(w, "/usr", "bind", in.usr_host_path, {"rbind", "ro", "nosuid", "nodev"});
  // /usr/local is the host administrator's own (tools, packages, and their configuration, such
  // as a package manager's credentials under /usr/local/etc): an empty, read-only directory
  // here (docs/security.md, "Smaller boundaries").
  mount(w, "/usr/local", "tmpfs", "tmpfs", {"ro", "nosuid", "nodev", "noexec", "mode=755", "size=4k"});
  mount(w, init_path_in_sandbox, "bind", in.init_host_path, {"bind", "ro", "nodev"});
  w.end_array();

  // gVisor mount hints (runsc/boot/mount_hints.go): share "container" gives the /usr bind
  // mount exclusive file access, as the root has by default.
  w.key("annotations").begin_object();
  w.key(std::string(usr_mount_hint) + ".source").value(in.usr_host_path);
  w.key(std::string(usr_mount_hint) + ".type").value("bind");
  w.key(std::string(usr_mount_hint) + ".share").value("container");
  w.end_object();

  w.key("linux").begin_object();
  w.key("namespaces").begin_array();
  for (const char* ns : {"pid", "network", "ipc", "uts", "mount"})
    w.begin_object().key("type").value(ns).end_object();
  w.end_array();
  w.key("cgroupsPath").value(in.cgroups_path);
  w.key("resources").begin_object();
  if (in.memory_limit_bytes > 0) {
    w.key("memory").begin_object();
    w.key("limit").value(static_cast<int64_t>(in.memory_limit_bytes));
    w.key("swap").value(static_cast<int64_t>(in.memory_limit_bytes));  // no swap on top
    w.end_object();
  }
  if (in.host_pids_max > 0)
    w.key("pids").begin_object().key("limit").value(static_cast<int64_t>(in.host_pids_max)).end_object();
  w.end_object();
  w.key("maskedPaths").string_array({"/proc/kcore", "/proc/keys", "/proc/timer_list",
                                     "/sys/firmware"});
  w.key("readonlyPaths").string_array({"/proc/sys", "/proc/sysrq-trigger", "/proc/irq",
                                       "/proc/bus"});
  w.end_object();

  w.end_object();
  return w.text();
}

}  // namespace corral::gvisor_detail
