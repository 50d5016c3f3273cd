// The scripted operating system of fake_init_os.hpp: init_sys.hpp and init_fs.hpp in memory.
#include "tests/fuzz/fake_init_os.hpp"

#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>

#include "executor/init/init_event_loop.hpp"
#include "executor/init/init_fs.hpp"
#include "executor/init/init_isolation.hpp"
#include "executor/init/init_sys.hpp"
#include "schemas/codec.hpp"
#include "schemas/frame.hpp"

namespace corral::fuzz {
namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what);
  std::abort();
}

// One simulated child. Its fds are fd_base + 4 * pid + {0: stdin, 1: stdout, 2: stderr}.
struct fake_process {
  pid_t pid = 0;
  std::string program;
  bool alive = true;        // not exited yet
  bool zombie = false;      // exited, not reaped
  bool daemon_left = false; // a member of its group outlives it until SIGKILL to the group
  int exit_code = 0;
  int signal = 0;
  bool pty = false;
  bool echo_stdin = false;  // "cat": what is written to stdin comes back on stdout
  std::vector<uint8_t> out[2];
  std::size_t out_pos[2] = {0, 0};
};

constexpr int fd_base = fake_command_fd + 16;

struct world {
  init_script script;
  std::size_t chunk = 0;          // next command chunk
  std::size_t chunk_pos = 0;      // bytes of it already read
  std::vector<uint8_t> events;    // what init wrote
  unsigned writes = 0;
  std::map<pid_t, fake_process> processes;
  pid_t next_pid = 100;
  int64_t clock_ms = 1000;
  uint64_t waits = 0;
  uint64_t wait_bound = 0;
  std::size_t command_bytes = 0;
};

world w;

fake_process* process_of_fd(int fd, int& which) {
  if (fd < fd_base) return nullptr;
  const int rel = fd - fd_base;
  which = rel % 4;
  auto it = w.processes.find(static_cast<pid_t>(rel / 4));
  return it == w.processes.end() ? nullptr : &it->second;
}

void exit_process(fake_process& p, int exit_code, int signal) {
  if (!p.alive) return;
  p.alive = false;
  p.zombie = true;
  p.exit_code = exit_code;
  p.signal = signal;
}

std::size_t left(const fake_process& p, int stream) {
  return p.out[stream].size() - p.out_pos[stream];
}

uint64_t hash_of(std::string_view s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// A deterministic errno for a path, or 0: "/enoent..." and friends name theirs, and one path in
// eleven fails with an errno of its hash.
init::fs_error fs_failure(const std::string& path) {
  static const int table[] = {ENOENT, EEXIST,  EISDIR, ENOTDIR, ENOTEMPTY, EACCES, EROFS,
                              EFBIG,  ENOSPC,  ELOOP,  EIO,     ENAMETOOLONG, EBUSY};
  if (path.find("/enoent") != std::string::npos) return {ENOENT, {}};
  if (path.find("/eacces") != std::string::npos) return {EACCES, "denied by the fake"};
  const uint64_t h = hash_of(path);
  if (h % 11 == 0) return {table[(h / 11) % (sizeof table / sizeof table[0])], {}};
  return {};
}

std::string last_component(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

void reset(const init_script& script) {
  w.~world();
  new (&w) world();
  w.script = script;
  for (const auto& c : script.command_chunks) w.command_bytes += c.size();
  // Every round of the loop consumes a chunk, writes, reads a pipe or reaps: a loop that waits
  // far more often than that spins.
  w.wait_bound = 20000 + 64 * (w.command_bytes + script.command_chunks.size());
}

std::vector<uint8_t> run_init(const init::init_limits& limits) {
  {
    // No isolation: init as a plain process (as in its own tests), nothing mounted or created.
    init::init_event_loop loop(limits, fake_command_fd, fake_event_fd,
                               unique_fd(fake_signal_fd), init::sandbox_isolation{});
    const int e = loop.run();
    if (e != ECANCELED) finding("init's loop stopped for a reason other than having settled");
  }
  return std::move(w.events);
}

void check_events(const std::vector<uint8_t>& events) {
  wire::frame_reader reader;
  reader.feed(events.data(), events.size());
  while (auto payload = reader.next()) {
    if (payload->size() > wire::max_frame_payload) finding("init wrote an oversized frame");
    if (payload->size() > wire::max_message_bytes)
      finding("init wrote an event larger than the executor accepts (max_message_bytes)");
    if (wire::verify<wire::InitEvent>(payload->data(), payload->size(), wire::max_frame_payload) ==
        nullptr)
      finding("init wrote a frame that is not a valid InitEvent");
  }
  if (reader.skipped_bytes() != 0) finding("init wrote bytes that are not frames");
  if (reader.buffered() != 0) finding("init left a partial frame");
}

}  // namespace corral::fuzz

// -- init_sys.hpp -------------------------------------------------------------------------------

namespace corral::init {

using corral::fuzz::w;

// The sandbox's isolation (init_isolation.hpp): the fuzzed init runs without it (as init does
// when it is not PID 1), so none of these may be reached.
std::string prepare_isolation(sandbox_isolation&) { return {}; }
std::string start_user_namespace(sandbox_isolation&) {
  fuzz::finding("init started a user namespace without isolation");
}
void run_reaper() { fuzz::finding("init ran the reaper"); }
int create_exec_cgroup(int, const std::string&, unique_fd&) {
  fuzz::finding("init made an exec cgroup without isolation");
}
int kill_cgroup_tree(int, const std::string&) {
  fuzz::finding("init killed an exec cgroup without isolation");
}
bool remove_exec_cgroup(int, const std::string&) {
  fuzz::finding("init removed an exec cgroup without isolation");
}

void log_line(const char* format, ...) {
  char line[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
}

int highest_open_fd() { return -1; }

bool set_window_size(int fd, uint16_t, uint16_t) {
  int which = 0;
  auto* p = fuzz::process_of_fd(fd, which);
  return p != nullptr && p->pty && which == 1;
}

unique_fd prepare_init_process() { return unique_fd(fuzz::fake_signal_fd); }

unique_fd open_null_input() { return unique_fd(); }

io_result read_some(int fd, uint8_t* buf, std::size_t capacity) {
  if (capacity == 0) fuzz::finding("read of 0 bytes");
  if (fd == fuzz::fake_command_fd) {
    const auto& chunks = w.script.command_chunks;
    if (w.chunk >= chunks.size()) return {io_status::eof, 0, 0};
    const auto& c = chunks[w.chunk];
    if (c.empty()) {
      ++w.chunk;
      return {io_status::would_block, 0, 0};
    }
    const std::size_t n = std::min(capacity, c.size() - w.chunk_pos);
    std::memcpy(buf, c.data() + w.chunk_pos, n);
    w.chunk_pos += n;
    if (w.chunk_pos == c.size()) {
      ++w.chunk;
      w.chunk_pos = 0;
    }
    return {io_status::ok, n, 0};
  }
  int which = 0;
  auto* p = fuzz::process_of_fd(fd, which);
  if (p == nullptr || which == 0) return {io_status::error, 0, EBADF};
  const int stream = p->pty ? 0 : which - 1;
  const std::size_t n = std::min(capacity, fuzz::left(*p, stream));
  if (n > 0) {
    std::memcpy(buf, p->out[stream].data() + p->out_pos[stream], n);
    p->out_pos[stream] += n;
    return {io_status::ok, n, 0};
  }
  if (p->alive) return {io_status::would_block, 0, 0};
  if (p->pty) return {io_status::error, 0, EIO};
  return {io_status::eof, 0, 0};
}

io_result write_some(int fd, const uint8_t* data, std::size_t size) {
  if (size == 0) fuzz::finding("write of 0 bytes");
  if (fd == fuzz::fake_event_fd) {
    ++w.writes;
    if (w.script.block_every != 0 && w.writes % w.script.block_every == 0)
      return {io_status::would_block, 0, 0};
    std::size_t n = size;
    if (w.script.event_write_cap != 0) n = std::min(n, w.script.event_write_cap);
    w.events.insert(w.events.end(), data, data + n);
    if (w.events.size() > (512u << 20)) fuzz::finding("init wrote over 512 MiB of events");
    return {io_status::ok, n, 0};
  }
  int which = 0;
  auto* p = fuzz::process_of_fd(fd, which);
  if (p == nullptr || which != 0) return {io_status::error, 0, EBADF};
  if (!p->alive) return {io_status::error, 0, EPIPE};
  const std::size_t n = std::min<std::size_t>(size, 65536);
  if (p->echo_stdin && p->out[0].size() < (8u << 20)) p->out[0].insert(p->out[0].end(), data, data + n);
  return {io_status::ok, n, 0};
}

std::size_t readable_bytes(int fd) {
  int which = 0;
  auto* p = fuzz::process_of_fd(fd, which);
  if (p == nullptr || which == 0) return 0;
  return fuzz::left(*p, p->pty ? 0 : which - 1);
}

void drain_signal_fd(int) {}

bool wait_for_fds(std::vector<fd_watch>& watches, int timeout_ms, int& error_number) {
  if (++w.waits > w.wait_bound) fuzz::finding("init's loop spins: it never settles");
  bool any = false;
  for (auto& watch : watches) {
    watch.ready = false;
    watch.hung_up = false;
    if (watch.fd == fuzz::fake_command_fd) {
      watch.ready = watch.want_read;
    } else if (watch.fd == fuzz::fake_event_fd) {
      watch.ready = watch.want_write;
    } else if (watch.fd == fuzz::fake_signal_fd) {
      for (const auto& [pid, p] : w.processes) watch.ready = watch.ready || p.zombie;
    } else {
      int which = 0;
      auto* p = fuzz::process_of_fd(watch.fd, which);
      if (p == nullptr) fuzz::finding("init waits on an fd that is not open");
      if (which == 0) {
        watch.ready = watch.want_write;
      } else {
        const std::size_t n = fuzz::left(*p, p->pty ? 0 : which - 1);
        watch.ready = watch.want_read && (n > 0 || !p->alive);
        watch.hung_up = n == 0 && !p->alive;
      }
    }
    any = any || watch.ready;
  }
  if (any) return true;
  if (timeout_ms >= 0) {
    w.clock_ms += timeout_ms;
    return true;
  }
  error_number = ECANCELED;  // nothing will ever happen again: the run is over
  return false;
}

int64_t monotonic_ms() { return w.clock_ms; }

bool reap_one(reaped_child& out) {
  for (auto& [pid, p] : w.processes) {
    if (!p.zombie) continue;
    p.zombie = false;
    out.pid = pid;
    out.exit_code = p.exit_code;
    out.signal = p.signal;
    return true;
  }
  return false;
}

namespace {
int deliver(pid_t pid, int sig, bool group) {
  if (sig < 0 || sig > 64) return EINVAL;
  auto it = w.processes.find(pid);
  if (it == w.processes.end()) return ESRCH;
  auto& p = it->second;
  if (group && sig == SIGKILL) p.daemon_left = false;
  if (!p.alive) return group && p.daemon_left ? 0 : ESRCH;
  if (sig == 0 || sig == SIGCHLD || sig == SIGWINCH || sig == SIGURG || sig == SIGCONT) return 0;
  fuzz::exit_process(p, 128 + sig, sig);
  return 0;
}
}  // namespace

int signal_group(pid_t pgid, int sig) { return deliver(pgid, sig, true); }

int signal_process(pid_t pid, int sig) { return deliver(pid, sig, false); }

void reap_group_now(pid_t pid) {
  auto it = w.processes.find(pid);
  if (it == w.processes.end()) return;
  fuzz::exit_process(it->second, 128 + SIGKILL, SIGKILL);
  it->second.zombie = false;
  it->second.daemon_left = false;
}

bool group_exists(pid_t pgid) {
  auto it = w.processes.find(pgid);
  return it != w.processes.end() && (it->second.alive || it->second.zombie || it->second.daemon_left);
}

pid_t own_pid() { return 1; }

spawn_result spawn_process(const spawn_request& request) {
  // What the caller promises (init_sys.hpp): checked, as a broken promise is a finding.
  if (request.argv.empty()) fuzz::finding("spawn with an empty argv");
  for (const auto& a : request.argv)
    if (a.find('\0') != std::string::npos) fuzz::finding("spawn with a NUL byte in argv");
  for (const auto& e : request.env) {
    const auto eq = e.find('=');
    if (eq == 0 || eq == std::string::npos || e.find('\0') != std::string::npos)
      fuzz::finding("spawn with a malformed environment entry");
  }
  std::size_t decoded = request.workdir.size();
  for (const auto& a : request.argv) decoded += a.size();
  for (const auto& e : request.env) decoded += e.size();
  if (decoded > wire::max_frame_payload) fuzz::finding("init holds a spawn larger than a frame");
  if (request.workdir.empty() || request.workdir.front() != '/' ||
      request.workdir.find('\0') != std::string::npos)
    fuzz::finding("spawn with a workdir that is not absolute");

  spawn_result r;
  const std::string& program = request.argv[0];
  if (program.find("missing") != std::string::npos) {
    r.error_number = ENOENT;
    r.message = "exec " + program + ": No such file or directory";
    return r;
  }
  if (w.processes.size() >= 4096) {
    r.error_number = EAGAIN;
    r.message = "fork: Resource temporarily unavailable";
    return r;
  }
  const pid_t pid = w.next_pid++;
  fuzz::fake_process p;
  p.pid = pid;
  p.program = program;
  p.pty = request.pty;
  if (program == "cat") {
    p.echo_stdin = true;  // runs until signalled
  } else if (program == "hang") {
    // runs until signalled, says nothing
  } else if (program == "flood") {
    std::size_t n = request.argv.size() > 1 ? std::strtoul(request.argv[1].c_str(), nullptr, 10) : 0;
    n = std::min<std::size_t>(n, 2u << 20);
    p.out[0].assign(n, 'x');
    p.alive = false;
    p.zombie = true;
  } else {
    // Says its argv on stdout and its workdir on stderr, then exits with argc; "daemon" leaves
    // a member of its group behind.
    for (const auto& a : request.argv) {
      p.out[0].insert(p.out[0].end(), a.begin(), a.end());
      p.out[0].push_back(' ');
      if (p.out[0].size() > 65536) break;
    }
    p.out[request.pty ? 0 : 1].assign(request.workdir.begin(), request.workdir.end());
    p.alive = false;
    p.zombie = true;
    p.exit_code = static_cast<int>(request.argv.size() & 0xff);
    p.daemon_left = program == "daemon";
  }
  const int base = fuzz::fd_base + 4 * pid;
  if (request.pipe_stdin) r.stdin_fd = unique_fd(base + 0);
  r.stdout_fd = unique_fd(base + 1);
  if (!request.pty) r.stderr_fd = unique_fd(base + 2);
  r.pid = pid;
  w.processes.emplace(pid, std::move(p));
  return r;
}

// -- init_fs.hpp --------------------------------------------------------------------------------

fs_error fs_read(const std::string& path, uint64_t offset, std::size_t max_bytes,
                 std::vector<uint8_t>& out, bool& eof, fs_entry& file) {
  if (auto e = fuzz::fs_failure(path); !e.ok()) return e;
  const uint64_t h = fuzz::hash_of(path);
  const uint64_t size = h % 3 == 0 ? (16u << 20) : h % 70000;
  const uint64_t from = std::min(offset, size);
  const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(max_bytes, size - from));
  out.assign(n, static_cast<uint8_t>(h));
  eof = from + n == size;
  file = fs_entry{fuzz::last_component(path), wire::FsFileType::regular, size, 0644, 1};
  return {};
}

fs_error fs_write(const std::string& path, const fs_write_request& request, uint64_t& written,
                  uint64_t& next_offset, fs_entry& file) {
  if (auto e = fuzz::fs_failure(path); !e.ok()) return e;
  if (request.size != 0 && request.data == nullptr) fuzz::finding("write of bytes that are not there");
  uint64_t sum = 0;
  for (std::size_t i = 0; i < request.size; ++i) sum += request.data[i];  // every byte is read
  written = request.size;
  next_offset = (request.append ? sum : request.offset) + request.size;
  file = fs_entry{fuzz::last_component(path), wire::FsFileType::regular, next_offset,
                  request.mode & 07777, 2};
  return {};
}

fs_error fs_list(const std::string& path, uint64_t first, std::size_t max_entries,
                 std::vector<fs_entry>& out, bool& eof) {
  if (auto e = fuzz::fs_failure(path); !e.ok()) return e;
  const uint64_t h = fuzz::hash_of(path);
  const uint64_t total = h % 4000;
  out.clear();
  for (uint64_t i = first; i < total && out.size() < max_entries; ++i) {
    // Names up to NAME_MAX (255) bytes: the longest a real directory holds.
    const std::size_t len = 1 + static_cast<std::size_t>((h + i * 7919) % 255);
    out.push_back(fs_entry{std::string(len, static_cast<char>('a' + i % 26)),
                           static_cast<wire::FsFileType>(i % 5), i, 0755, 3});
  }
  eof = first + out.size() >= total;
  return {};
}

fs_error fs_stat(const std::string& path, fs_entry& out) {
  if (auto e = fuzz::fs_failure(path); !e.ok()) return e;
  out = fs_entry{fuzz::last_component(path), wire::FsFileType::directory, 4096, 0755, 4};
  return {};
}

fs_error fs_mkdir(const std::string& path, bool, bool exclusive, uint32_t mode) {
  if (auto e = fuzz::fs_failure(path); !e.ok()) return e;
  (void)mode;
  if (exclusive && fuzz::hash_of(path) % 2 == 0) return {EEXIST, {}};
  return {};
}

fs_error fs_remove(const std::string& path, bool recursive, std::size_t max_entries,
                   uint64_t& removed, bool& done) {
  if (auto e = fuzz::fs_failure(path); !e.ok()) return e;
  if (max_entries == 0) fuzz::finding("remove with no entries allowed");
  const uint64_t total = recursive ? fuzz::hash_of(path) % 30000 : 1;
  removed = std::min<uint64_t>(total, max_entries);
  done = removed == total;
  return {};
}

}  // namespace corral::init
