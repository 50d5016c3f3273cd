#include "executor/init/init_event_loop.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

#include "schemas/codec.hpp"

namespace corral::init {
namespace {

constexpr std::size_t command_read_bytes = 64 * 1024;
// Below this many ended groups nobody checks whether they still have members.
constexpr std::size_t ended_groups_checked_from = 1024;
// Consumed prefixes of buffers are erased once at least this large.
constexpr std::size_t compact_after_bytes = 1024 * 1024;

unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

int stream_index(wire::Stream s) { return s == wire::Stream::stdout ? 0 : 1; }

bool has_nul(const flatbuffers::String* s) {
  return s != nullptr && std::memchr(s->data(), '\0', s->size()) != nullptr;
}

}  // namespace

init_event_loop::init_event_loop(const init_limits& limits, int command_fd, int event_fd,
                                 unique_fd child_signal_fd, sandbox_isolation isolation)
    : limits_(limits),
      command_fd_(command_fd),
      event_fd_(event_fd),
      child_signal_fd_(std::move(child_signal_fd)),
      command_buf_(command_read_bytes),
      output_buf_(limits.read_chunk_bytes),
      prune_ended_groups_at_(ended_groups_checked_from),
      isolation_(std::move(isolation)),
      null_input_(open_null_input()),
      fbb_(limits.read_chunk_bytes + 1024) {}

int init_event_loop::run() {
  enum class target : uint8_t { commands, events, child_signal, out, err, in };
  struct watch_target {
    target what;
    uint64_t id;
  };
  std::vector<fd_watch> watches;
  std::vector<watch_target> targets;
  for (;;) {
    finish_exiting();
    int timeout_ms = -1;
    const bool holding = holding_events(timeout_ms);
    if (!holding) {
      flush_events();
      tidy_after_flush();
    }

    watches.clear();
    targets.clear();
    auto add = [&](int fd, bool read, bool write, target what, uint64_t id) {
      watches.push_back(fd_watch{fd, read, write, false});
      targets.push_back(watch_target{what, id});
    };
    if (commands_open_) add(command_fd_, true, false, target::commands, 0);
    if (!holding && pending_events() > 0) add(event_fd_, false, true, target::events, 0);
    add(child_signal_fd_.get(), true, false, target::child_signal, 0);
    for (auto& [id, p] : processes_) {
      if (p.reaped || p.held) continue;
      if (!output_paused_) {
        if (p.stdout_fd.valid()) add(p.stdout_fd.get(), true, false, target::out, id);
        if (p.stderr_fd.valid()) add(p.stderr_fd.get(), true, false, target::err, id);
      }
      if (p.stdin_fd.valid() && p.stdin_offset < p.stdin_pending.size()) {
        add(p.stdin_fd.get(), false, true, target::in, id);
      }
    }

    int error_number = 0;
    if (!wait_for_fds(watches, timeout_ms, error_number)) {
      log_line("poll failed: %s", std::strerror(error_number));
      return error_number;
    }

    bool children_ended = false;
    for (std::size_t i = 0; i < watches.size(); ++i) {
      if (!watches[i].ready) continue;
      const watch_target& t = targets[i];
      switch (t.what) {
        case target::commands:
          read_commands();
          break;
        case target::events:
          flush_events();
          break;
        case target::child_signal:
          children_ended = true;  // reaped after the pipes of this round were read
          break;
        case target::out:
        case target::err:
        case target::in: {
          auto it = processes_.find(t.id);
          if (it == processes_.end() || it->second.reaped) break;
          const wire::Stream stream =
              t.what == target::out ? wire::Stream::stdout : wire::Stream::stderr;
          if (t.what == target::in) {
            write_stdin(it->second);
          } else if (watches[i].hung_up && !it->second.pty) {
            // An output pipe at its end and empty (every writer gone): closed without the
            // read that would only say so (one trapped system call less per stream).
            (stream == wire::Stream::stdout ? it->second.stdout_fd : it->second.stderr_fd).reset();
          } else if (!output_paused_) {
            (void)read_output(it->second, stream);
          }
          break;
        }
      }
    }
    if (children_ended) reap_children();
  }
}

// -- commands -----------------------------------------------------------------------------------

void init_event_loop::read_commands() {
  const io_result r = read_some(command_fd_, command_buf_.data(), command_buf_.size());
  switch (r.status) {
    case io_status::would_block:
      return;
    case io_status::eof:
      log_line("stdin closed: no more commands; processes keep running");
      commands_open_ = false;
      return;
    case io_status::error:
      log_line("reading stdin failed (%s): no more commands", std::strerror(r.error_number));
      commands_open_ = false;
      return;
    case io_status::ok:
      break;
  }
  commands_.feed(command_buf_.data(), r.bytes);
  while (auto payload = commands_.next()) handle_command(*payload);
  if (commands_.skipped_bytes() != skipped_reported_) {
    log_line("skipped %llu bytes that were not frames",
             ull(commands_.skipped_bytes() - skipped_reported_));
    skipped_reported_ = commands_.skipped_bytes();
  }
}

void init_event_loop::handle_command(const std::vector<uint8_t>& payload) {
  const auto* cmd =
      wire::verify<wire::InitCommand>(payload.data(), payload.size(), wire::max_frame_payload);
  if (cmd == nullptr) {
    log_line("a frame of %zu bytes is not a valid InitCommand: skipped", payload.size());
    return;
  }
  switch (cmd->command_type()) {
    case wire::Command::Hello:
      if (const auto* c = cmd->command_as_Hello()) return on_hello(*c);
      break;
    case wire::Command::Spawn:
      if (const auto* c = cmd->command_as_Spawn()) return on_spawn(*c);
      break;
    case wire::Command::StdinData:
      if (const auto* c = cmd->command_as_StdinData()) return on_stdin(*c);
      break;
    case wire::Command::Signal:
      if (const auto* c = cmd->command_as_Signal()) return on_signal(*c);
      break;
    case wire::Command::FsCall:
      if (const auto* c = cmd->command_as_FsCall()) return on_fs_call(*c);
      break;
    case wire::Command::Resize:
      if (const auto* c = cmd->command_as_Resize()) {
        auto it = processes_.find(c->id());
        // A pty process reads and writes its master through stdout_fd (stderr is merged).
        if (it != processes_.end() && it->second.pty && it->second.stdout_fd.valid())
          (void)set_window_size(it->second.stdout_fd.get(), c->rows(), c->cols());
        return;
      }
      break;
    default:
      break;
  }
  log_line("an InitCommand without a known command: skipped");
}

void init_event_loop::on_hello(const wire::Hello& hello) {
  const uint64_t session = hello.session();
  if (session_.has_value() && *session_ != session) {
    log_line("session %llu replaces %llu: killing the processes of older sessions", ull(session),
             ull(*session_));
    kill_other_sessions(session);
  }
  session_ = session;
  emit_hello_ack(session);
}

void init_event_loop::kill_other_sessions(uint64_t session) {
  for (auto& [id, p] : processes_) {
    if (p.session == session) continue;
    if (!p.reaped) {
      kill_tree(p);
    } else {
      kill_ended_tree(ended_group{p.pid, p.cgroup, p.session});
    }
  }
  for (auto& [id, g] : ended_groups_) {
    if (g.session != session) kill_ended_tree(g);
  }
  // Forgotten once their cgroups are empty (tidy_after_flush).
  for (auto& [id, g] : ended_groups_) {
    if (g.session != session) unsettled_groups_.push_back(id);
  }
}

void init_event_loop::kill_tree(const process& p) {
  if (!p.cgroup.empty()) (void)kill_cgroup_tree(isolation_.cgroup_root.get(), p.cgroup);
  (void)signal_group(p.pid, SIGKILL);
  (void)signal_process(p.pid, SIGKILL);
}

void init_event_loop::kill_ended_tree(const ended_group& g) {
  if (!g.cgroup.empty()) (void)kill_cgroup_tree(isolation_.cgroup_root.get(), g.cgroup);
  if (g.pgid != 0) signal_ended_group(g.pgid, SIGKILL);
}

void init_event_loop::signal_ended_group(pid_t pgid, int sig) {
  // A pid is not reused while it names a process group with members, so if a live process of
  // ours now has this number, the old group is empty and the signal must not go to the new one.
  if (live_pids_.count(pgid) != 0) return;
  const int e = signal_group(pgid, sig);
  if (e != 0 && e != ESRCH) log_line("kill(-%d, %d): %s", pgid, sig, std::strerror(e));
}

void init_event_loop::on_spawn(const wire::Spawn& spawn) {
  const uint64_t id = spawn.id();
  if (!used_ids_.insert(id).second) {
    log_line("spawn %llu: id already used", ull(id));
    return emit_spawn_failed(id, EEXIST, "process id " + std::to_string(id) + " already used");
  }
  auto reject = [&](const std::string& message) {
    log_line("spawn %llu rejected: %s", ull(id), message.c_str());
    emit_spawn_failed(id, EINVAL, message);
  };

  spawn_request request;
  // Offsets may share their strings (a valid FlatBuffer): argv and env are copied only while
  // they add up to no more than a frame, so one frame never becomes many in init's memory.
  std::size_t copied = 0;
  auto over_frame = [&](std::size_t n) { return (copied += n) > wire::max_frame_payload; };
  if (spawn.argv() == nullptr || spawn.argv()->size() == 0) return reject("empty argv");
  for (flatbuffers::uoffset_t i = 0; i < spawn.argv()->size(); ++i) {
    const auto* arg = spawn.argv()->Get(i);
    if (has_nul(arg)) return reject("argv[" + std::to_string(i) + "] contains a NUL byte");
    if (over_frame(arg->size() + 1)) return reject("argv and env are larger than a frame");
    request.argv.emplace_back(wire::str(arg));
  }
  if (spawn.env() != nullptr) {
    for (flatbuffers::uoffset_t i = 0; i < spawn.env()->size(); ++i) {
      const auto* kv = spawn.env()->Get(i);
      if (over_frame(wire::str(kv->key()).size() + wire::str(kv->value()).size() + 2))
        return reject("argv and env are larger than a frame");
      const std::string_view key = wire::str(kv->key());
      if (key.empty() || key.find('=') != std::string_view::npos || has_nul(kv->key()) ||
          has_nul(kv->value())) {
        return reject("env[" + std::to_string(i) +
                      "]: the key is empty or contains '=', or a NUL byte is present");
      }
      std::string entry(key);
      entry += '=';
      entry += wire::str(kv->value());
      request.env.push_back(std::move(entry));
    }
  }
  request.workdir = std::string(wire::str(spawn.workdir()));
  if (request.workdir.empty()) request.workdir = "/";
  if (request.workdir.front() != '/' || has_nul(spawn.workdir())) {
    return reject("workdir must be an absolute path: " + request.workdir);
  }
  request.pipe_stdin = spawn.stdin();
  request.null_input = null_input_.get();
  request.pty = spawn.pty();
  request.rows = spawn.rows();
  request.cols = spawn.cols();

  // What a held process was started with, in one string (NUL never occurs in its parts).
  std::string signature;
  if (spawn.hold() || spawn.adopt() != 0) {
    auto put = [&](std::string_view part) {
      signature.append(part);
      signature += '\0';
    };
    put(std::to_string(request.argv.size()));
    for (const auto& a : request.argv) put(a);
    put(std::to_string(request.env.size()));
    for (const auto& e : request.env) put(e);
    put(request.workdir);
    put(request.pipe_stdin ? "stdin" : "-");
    put(request.pty ? std::to_string(request.rows) + "x" + std::to_string(request.cols) : "-");
  }
  if (spawn.adopt() != 0 && !spawn.hold() && adopt_held(spawn.adopt(), id, signature)) return;

  // Every process starts in its own exec cgroup, or not at all (its tree must be endable).
  std::string cgroup;
  unique_fd cgroup_procs;
  if (isolation_.active) {
    if (isolation_.reaper == 0) {
      if (auto e = start_user_namespace(isolation_); !e.empty()) {
        log_line("spawn %llu: no user namespace: %s", ull(id), e.c_str());
        return emit_spawn_failed(id, EAGAIN, "the sandbox cannot start processes: " + e);
      }
    }
    if (int e = take_exec_cgroup(cgroup, cgroup_procs); e != 0) {
      log_line("spawn %llu: exec cgroup: %s", ull(id), std::strerror(e));
      return emit_spawn_failed(id, e, std::string("cannot make the exec's cgroup: ") +
                                          std::strerror(e));
    }
    request.cgroup_procs_fd = cgroup_procs.get();
  }

  spawn_result started = spawn_process(request);
  if (started.error_number == ENOMEM && isolation_.active && started.pid == 0) {
    // The user namespace may have died with its reaper a moment ago (fork into a dead PID
    // namespace fails with ENOMEM) and its SIGCHLD not be handled yet: handle it (that starts
    // a new namespace) and try once more.
    const pid_t reaper = isolation_.reaper;
    reap_children();
    if (isolation_.reaper != reaper && isolation_.reaper != 0) started = spawn_process(request);
  }
  if (cgroup_procs.valid()) fds_to_close_.push_back(std::move(cgroup_procs));  // off this path
  if (started.error_number != 0) {
    log_line("spawn %llu failed: %s", ull(id), started.message.c_str());
    if (!cgroup.empty()) {
      ended_groups_[id] = ended_group{0, cgroup, session_};
      unsettled_groups_.push_back(id);
    }
    return emit_spawn_failed(id, started.error_number, started.message);
  }
  process p;
  p.id = id;
  p.pid = started.pid;
  p.cgroup = std::move(cgroup);
  p.session = session_;
  p.stdin_fd = std::move(started.stdin_fd);
  p.stdout_fd = std::move(started.stdout_fd);
  p.stderr_fd = std::move(started.stderr_fd);
  p.pty = request.pty;
  live_pids_[p.pid] = id;
  if (spawn.hold()) {
    p.held = true;
    p.signature = std::move(signature);
  } else {
    emit_started(id, p.pid);
  }
  processes_.emplace(id, std::move(p));
}

bool init_event_loop::adopt_held(uint64_t held, uint64_t id, const std::string& signature) {
  auto it = processes_.find(held);
  if (it == processes_.end() || !it->second.held || it->second.reaped) return false;
  if (it->second.signature != signature) {
    log_line("spawn %llu does not match held process %llu: killing it", ull(id), ull(held));
    discard_held(it);
    return false;
  }
  process p = std::move(it->second);
  processes_.erase(it);
  p.id = id;
  p.held = false;
  p.signature.clear();
  p.session = session_;
  live_pids_[p.pid] = id;
  emit_started(id, p.pid);
  processes_.emplace(id, std::move(p));
  return true;
}

void init_event_loop::on_stdin(const wire::StdinData& data) {
  const uint64_t id = data.id();
  auto it = processes_.find(id);
  if (it == processes_.end() || it->second.reaped) {
    log_line("stdin for process %llu, which is not running: dropped", ull(id));
    return;
  }
  process& p = it->second;
  if (!p.stdin_fd.valid() || p.stdin_eof) {
    log_line("stdin for process %llu, whose stdin is closed: dropped", ull(id));
    return;
  }
  if (data.data() != nullptr && data.data()->size() > 0) {
    const std::size_t size = data.data()->size();
    const std::size_t pending = p.stdin_pending.size() - p.stdin_offset;
    if (pending + size > limits_.max_stdin_buffer_bytes) {
      log_line("stdin of process %llu: %zu bytes dropped, %zu already buffered (cap %zu)", ull(id),
               size, pending, limits_.max_stdin_buffer_bytes);
    } else {
      p.stdin_pending.insert(p.stdin_pending.end(), data.data()->begin(), data.data()->end());
    }
  }
  if (data.eof()) p.stdin_eof = true;
  write_stdin(p);
}

void init_event_loop::discard_held(std::map<uint64_t, process>::iterator it) {
  const pid_t pid = it->second.pid;
  kill_tree(it->second);
  reap_group_now(pid);
  live_pids_.erase(pid);
  if (!it->second.cgroup.empty()) {
    ended_groups_[it->first] = ended_group{0, it->second.cgroup, it->second.session};
    unsettled_groups_.push_back(it->first);
  }
  processes_.erase(it);
}

void init_event_loop::on_signal(const wire::Signal& sig) {
  const uint64_t id = sig.id();
  const int signal = sig.signal();
  auto it = processes_.find(id);
  if (it != processes_.end() && it->second.held) return discard_held(it);
  if (it != processes_.end() && !it->second.reaped && signal == SIGKILL) return kill_tree(it->second);
  if (it != processes_.end() && !it->second.reaped) {
    const int e = signal_group(it->second.pid, signal);
    (void)signal_process(it->second.pid, signal);
    if (e != 0 && e != ESRCH) {
      log_line("signal %d to process %llu: %s", signal, ull(id), std::strerror(e));
    }
    return;
  }
  if (it != processes_.end()) {
    if (signal == SIGKILL)
      return kill_ended_tree(ended_group{it->second.pid, it->second.cgroup, it->second.session});
    return signal_ended_group(it->second.pid, signal);
  }
  auto ended = ended_groups_.find(id);
  if (ended != ended_groups_.end()) {
    if (signal == SIGKILL) {
      kill_ended_tree(ended->second);
      unsettled_groups_.push_back(id);  // forgotten once empty (tidy_after_flush)
    } else if (ended->second.pgid != 0) {
      signal_ended_group(ended->second.pgid, signal);
    }
    return;
  }
  log_line("signal %d for unknown process %llu: ignored", signal, ull(id));
}

// -- processes ----------------------------------------------------------------------------------

void init_event_loop::reap_children() {
  drain_signal_fd(child_signal_fd_.get());
  reaped_child child;
  while (reap_one(child)) {
    if (isolation_.active && child.pid == isolation_.reaper) {
      // Its namespace died with it, and every process in it: they are reaped as they come.
      log_line("the user namespace's reaper ended (%s %d): starting a new namespace",
               child.signal != 0 ? "signal" : "status",
               child.signal != 0 ? child.signal : child.exit_code);
      if (auto e = start_user_namespace(isolation_); !e.empty())
        log_line("no user namespace for now (the next spawn tries again): %s", e.c_str());
      continue;
    }
    auto live = live_pids_.find(child.pid);
    if (live == live_pids_.end()) continue;  // an orphan, or a child whose exec failed
    auto it = processes_.find(live->second);
    live_pids_.erase(live);
    if (it->second.held) {
      // Never reported, never adopted: it goes without a word, and what it started with it.
      const ended_group g{it->second.pid, it->second.cgroup, it->second.session};
      kill_ended_tree(g);
      if (!g.cgroup.empty()) {
        ended_groups_[it->first] = g;
        unsettled_groups_.push_back(it->first);
      }
      processes_.erase(it);
      continue;
    }
    process& p = it->second;
    p.reaped = true;
    p.exit_code = child.exit_code;
    p.signal = child.signal;
    if (p.stdout_fd.valid()) p.owed_output[0] = readable_bytes(p.stdout_fd.get());
    if (p.stderr_fd.valid()) p.owed_output[1] = readable_bytes(p.stderr_fd.get());
    if (p.stdin_fd.valid()) {
      const std::size_t unwritten = p.stdin_pending.size() - p.stdin_offset;
      if (unwritten > 0) {
        log_line("process %llu exited with %zu bytes of stdin unread", ull(p.id), unwritten);
      }
      p.stdin_fd.reset();
      p.stdin_pending = {};
      p.stdin_offset = 0;
    }
    exiting_.push_back(p.id);
  }
}

void init_event_loop::finish_exiting() {
  while (!exiting_.empty() && !output_paused_) {
    auto it = processes_.find(exiting_.front());
    process& p = it->second;
    if (!drain_after_exit(p)) return;  // back-pressure: continue once the executor reads
    p.stdout_fd.reset();
    p.stderr_fd.reset();
    emit_exited(p);
    // Whether anything of it is left is looked at once Exited is written (tidy_after_flush).
    ended_groups_[p.id] = ended_group{p.pid, p.cgroup, p.session};
    unsettled_groups_.push_back(p.id);
    processes_.erase(it);
    exiting_.pop_front();
  }
}

bool init_event_loop::drain_after_exit(process& p) {
  for (wire::Stream stream : {wire::Stream::stdout, wire::Stream::stderr}) {
    const unique_fd& fd = stream == wire::Stream::stdout ? p.stdout_fd : p.stderr_fd;
    const std::size_t& owed = p.owed_output[stream_index(stream)];
    while (fd.valid()) {
      if (output_paused_) return false;
      if (owed == 0 && p.drained_after_exit >= limits_.max_drain_after_exit_bytes) {
        log_line("process %llu: output still arriving %zu bytes past its exit: not waiting",
                 ull(p.id), p.drained_after_exit);
        break;
      }
      // would_block: the pipe is momentarily empty (all that was owed has been read, as init
      // holds the only read end); eof or error: closed.
      if (read_output(p, stream) != io_status::ok) break;
    }
  }
  return true;
}

io_status init_event_loop::read_output(process& p, wire::Stream stream) {
  unique_fd& fd = stream == wire::Stream::stdout ? p.stdout_fd : p.stderr_fd;
  if (!fd.valid()) return io_status::eof;
  const io_result r = read_some(fd.get(), output_buf_.data(), output_buf_.size());
  switch (r.status) {
    case io_status::ok: {
      if (p.reaped) {
        std::size_t& owed = p.owed_output[stream_index(stream)];
        const std::size_t paid = r.bytes < owed ? r.bytes : owed;
        owed -= paid;
        p.drained_after_exit += r.bytes - paid;
      }
      emit_output(p.id, stream, output_buf_.data(), r.bytes);
      break;
    }
    case io_status::would_block:
      break;
    case io_status::error:
      // A pty master reads EIO once every slave fd is closed: that is its end of file.
      if (!(p.pty && r.error_number == EIO))
        log_line("reading output of process %llu: %s", ull(p.id), std::strerror(r.error_number));
      fd.reset();
      break;
    case io_status::eof:
      fd.reset();
      break;
  }
  return r.status;
}

// How often, at the least, init reports stdin progress while it is writing a large buffer.
constexpr uint64_t stdin_report_every_bytes = 256 * 1024;

void init_event_loop::write_stdin(process& p) {
  while (p.stdin_fd.valid() && p.stdin_offset < p.stdin_pending.size()) {
    const io_result r = write_some(p.stdin_fd.get(), p.stdin_pending.data() + p.stdin_offset,
                                   p.stdin_pending.size() - p.stdin_offset);
    if (r.status == io_status::would_block) break;
    if (r.status != io_status::ok) {
      log_line("stdin of process %llu closed (%s): %zu bytes dropped", ull(p.id),
               std::strerror(r.error_number), p.stdin_pending.size() - p.stdin_offset);
      p.stdin_fd.reset();
      p.stdin_pending = {};
      p.stdin_offset = 0;
      return;
    }
    p.stdin_offset += r.bytes;
    p.stdin_written += r.bytes;
  }
  if (p.stdin_written != p.stdin_reported &&
      (p.stdin_offset == p.stdin_pending.size() ||
       p.stdin_written - p.stdin_reported >= stdin_report_every_bytes)) {
    emit_stdin_written(p);
  }
  if (p.stdin_offset == p.stdin_pending.size()) {
    p.stdin_pending.clear();
    p.stdin_offset = 0;
    if (p.stdin_eof) p.stdin_fd.reset();
  } else if (p.stdin_offset >= compact_after_bytes) {
    p.stdin_pending.erase(p.stdin_pending.begin(),
                          p.stdin_pending.begin() + static_cast<std::ptrdiff_t>(p.stdin_offset));
    p.stdin_offset = 0;
  }
}

void init_event_loop::forget_ended_groups_if_many() {
  if (ended_groups_.size() < prune_ended_groups_at_) return;
  for (auto it = ended_groups_.begin(); it != ended_groups_.end();) {
    it = ended_group_gone(it->second) ? ended_groups_.erase(it) : std::next(it);
  }
  prune_ended_groups_at_ = std::max(ended_groups_checked_from, 2 * ended_groups_.size());
}

bool init_event_loop::ended_group_gone(const ended_group& g) {
  // Every member of its process group is in its cgroup (a group never spans sessions, and
  // every session of the tree started inside the cgroup): an empty cgroup is the whole answer.
  if (!g.cgroup.empty()) return remove_exec_cgroup(isolation_.cgroup_root.get(), g.cgroup);
  return g.pgid == 0 || !group_exists(g.pgid);
}

void init_event_loop::tidy_after_flush() {
  fds_to_close_.clear();
  if (!unsettled_groups_.empty()) {
    for (const uint64_t id : unsettled_groups_) {
      auto it = ended_groups_.find(id);
      if (it != ended_groups_.end() && ended_group_gone(it->second)) ended_groups_.erase(it);
    }
    unsettled_groups_.clear();
    forget_ended_groups_if_many();
  }
  if (isolation_.active && !spare_cgroup_) {
    spare_cgroup next;
    next.name = "x" + std::to_string(++cgroups_made_);
    if (create_exec_cgroup(isolation_.cgroup_root.get(), next.name, next.procs) == 0)
      spare_cgroup_ = std::move(next);
  }
}

int init_event_loop::take_exec_cgroup(std::string& name, unique_fd& procs) {
  if (spare_cgroup_) {
    name = std::move(spare_cgroup_->name);
    procs = std::move(spare_cgroup_->procs);
    spare_cgroup_.reset();
    return 0;
  }
  name = "x" + std::to_string(++cgroups_made_);
  return create_exec_cgroup(isolation_.cgroup_root.get(), name, procs);
}

// -- events -------------------------------------------------------------------------------------

void init_event_loop::flush_events() {
  while (pending_events() > 0) {
    const io_result r =
        write_some(event_fd_, outbound_.data() + outbound_pos_, pending_events());
    if (r.status == io_status::would_block) break;
    if (r.status != io_status::ok) {
      log_line("stdout is broken (%s): events are discarded from now on",
               std::strerror(r.error_number));
      events_broken_ = true;
      outbound_ = {};
      outbound_pos_ = 0;
      break;
    }
    outbound_pos_ += r.bytes;
  }
  if (outbound_pos_ == outbound_.size()) {
    outbound_.clear();
    outbound_pos_ = 0;
  } else if (outbound_pos_ >= compact_after_bytes) {
    outbound_.erase(outbound_.begin(),
                    outbound_.begin() + static_cast<std::ptrdiff_t>(outbound_pos_));
    outbound_pos_ = 0;
  }
  update_pause();
}

bool init_event_loop::holding_events(int& timeout_ms) {
  if (hold_ && pending_events() > 0) {
    const int64_t now = monotonic_ms();
    if (!hold_until_ms_) hold_until_ms_ = now + static_cast<int64_t>(limits_.started_delay_ms);
    if (now < *hold_until_ms_) {
      timeout_ms = static_cast<int>(*hold_until_ms_ - now);
      return true;
    }
  }
  hold_ = false;
  hold_until_ms_.reset();
  return false;
}

void init_event_loop::update_pause() {
  const std::size_t pending = pending_events();
  if (!output_paused_ && pending >= limits_.max_outbound_bytes) {
    output_paused_ = true;
    log_line("back-pressure: %zu bytes of events unread by the executor; pausing process output",
             pending);
  } else if (output_paused_ && pending <= limits_.max_outbound_bytes / 2) {
    output_paused_ = false;
    log_line("back-pressure released: resuming process output");
  }
}

void init_event_loop::finish_event(wire::Event type, flatbuffers::Offset<void> event) {
  const auto root = wire::CreateInitEvent(fbb_, type, event);
  wire::FinishInitEventBuffer(fbb_, root);
  if (type != wire::Event::Started || limits_.started_delay_ms == 0) {
    hold_ = false;  // written at once, with whatever was held
  } else if (pending_events() == 0) {
    hold_ = true;
    hold_until_ms_.reset();
  }  // else: held already, or written with what is waiting
  if (!events_broken_) wire::append_frame(outbound_, fbb_.GetBufferPointer(), fbb_.GetSize());
  fbb_.Clear();
  update_pause();
}

void init_event_loop::emit_hello_ack(uint64_t session) {
  fbb_.Clear();
  finish_event(wire::Event::HelloAck, wire::CreateHelloAck(fbb_, session, own_pid()).Union());
}

void init_event_loop::emit_started(uint64_t id, pid_t pid) {
  fbb_.Clear();
  finish_event(wire::Event::Started, wire::CreateStarted(fbb_, id, pid).Union());
}

void init_event_loop::emit_output(uint64_t id, wire::Stream stream, const uint8_t* data,
                                  std::size_t size) {
  fbb_.Clear();
  const auto bytes = fbb_.CreateVector(data, size);
  finish_event(wire::Event::Output, wire::CreateOutput(fbb_, id, stream, bytes).Union());
}

void init_event_loop::emit_exited(const process& p) {
  fbb_.Clear();
  finish_event(wire::Event::Exited,
               wire::CreateExited(fbb_, p.id, p.exit_code, p.signal).Union());
}

void init_event_loop::emit_stdin_written(process& p) {
  fbb_.Clear();
  p.stdin_reported = p.stdin_written;
  finish_event(wire::Event::StdinWritten,
               wire::CreateStdinWritten(fbb_, p.id, p.stdin_written).Union());
}

void init_event_loop::emit_spawn_failed(uint64_t id, int error_number,
                                        const std::string& message) {
  fbb_.Clear();
  const auto text = fbb_.CreateString(message);
  finish_event(wire::Event::SpawnFailed,
               wire::CreateSpawnFailed(fbb_, id, error_number, text).Union());
}

}  // namespace corral::init
