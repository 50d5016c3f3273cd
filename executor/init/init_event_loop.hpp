#pragma once
// The protocol engine of corral-init: reads InitCommand frames (schemas/init_command.fbs) from
// the executor on command_fd, runs the processes they ask for, and writes InitEvent frames
// (schemas/init_event.fbs) on event_fd. Single-threaded, one poll() loop.
//
// What the executor can rely on:
// - Every frame init writes is whole and frames are written strictly one after the other; an
//   executor that attaches mid-stream resynchronises on the frame magic.
// - Per process: Started, its Output frames (in order within each stream), then Exited, each
//   exactly once; or SpawnFailed alone. A Spawn whose id was ever seen before is answered
//   SpawnFailed(EEXIST) and starts nothing.
// - Started is written with the next event init has to write, or at the latest
//   init_limits::started_delay_ms after the exec, so that a short process costs one write (and
//   one wake-up of the executor) for Started and Exited together. Every other event is written
//   as soon as the executor's pipe takes it.
// - Exited comes after every byte that was in the process's stdout and stderr pipes when it was
//   reaped; processes it left behind (daemons holding the pipes) do not delay Exited.
// - Output is never dropped or reordered: when the executor does not read, init buffers up to
//   init_limits::max_outbound_bytes and then stops reading its children's pipes (they block).
//   Only if init's stdout is broken for good (EPIPE) are events discarded.
// - Malformed input (bytes that are not frames, payloads that do not verify, unknown ids) is
//   logged on stderr and skipped; it never stops init.
// - A Hello with a session different from the previous Hello's SIGKILLs the whole trees of
//   every process started under another session (including the leftovers of processes that
//   already exited); their Exited events follow as usual.
// - A process's tree is everything it started, whatever session or process group it moved to
//   (setsid, setpgid, double forks, nested namespaces): when init is the sandbox's PID 1 each
//   process starts in an exec cgroup of its own (init_isolation.hpp); otherwise (tests) it is
//   its process group. A Signal with SIGKILL ends the whole tree, even after the process
//   itself has exited; other signals go to its process group.
// - Processes live in the user PID namespace (init_isolation.hpp), where no pid names init.
//   When its PID 1 (the reaper) dies, its processes die with it (each reported Exited as
//   usual) and init starts a new namespace for the processes that follow.
// - A held process (Spawn.hold) produces no event at all. A Spawn that adopts it (Spawn.adopt,
//   with the same argv, env, workdir, stdin and pty) gets Started with its pid and then all of
//   its output from the first byte; a Spawn that names it but asks for anything else, or a
//   Signal to it, kills it and its process group: init reaps it, and the members of its group
//   that are then its children, before it reads the next command. A held process that ends
//   before it is adopted is forgotten (its process group is killed).
// - Every FsCall is answered by exactly one FsResult with its call_id, in the order received,
//   carried out at once inside the sandbox (init_fs.hpp) and bounded by init_limits' fs_* caps.
//   A path that is not absolute or holds a NUL byte, or an unknown op, is invalid_argument.
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "corral/wire/init_command_generated.h"
#include "corral/wire/init_event_generated.h"
#include "executor/init/init_isolation.hpp"
#include "executor/init/init_limits.hpp"
#include "executor/init/init_sys.hpp"
#include "schemas/frame.hpp"

namespace corral::init {

class init_event_loop {
 public:
  // command_fd and event_fd must be non-blocking; they are not closed by the loop.
  init_event_loop(const init_limits& limits, int command_fd, int event_fd,
                  unique_fd child_signal_fd, sandbox_isolation isolation);

  // Runs the loop. Returns only when waiting on fds fails, with the errno.
  [[nodiscard]] int run();

 private:
  struct process {
    uint64_t id = 0;
    pid_t pid = 0;  // also its process group (it called setsid)
    std::string cgroup;  // its exec cgroup; empty when trees are not tracked
    std::optional<uint64_t> session;
    unique_fd stdin_fd;
    unique_fd stdout_fd;
    unique_fd stderr_fd;
    std::vector<uint8_t> stdin_pending;
    std::size_t stdin_offset = 0;
    bool stdin_eof = false;  // close stdin once stdin_pending is written
    bool pty = false;             // on a pseudo-terminal: stdout_fd is its master
    uint64_t stdin_written = 0;   // bytes written into the pipe so far
    uint64_t stdin_reported = 0;  // last total sent in a StdinWritten event
    bool reaped = false;
    int exit_code = 0;
    int signal = 0;
    std::size_t owed_output[2] = {0, 0};  // stdout, stderr bytes in the pipes when reaped
    std::size_t drained_after_exit = 0;   // bytes read beyond owed_output
    // Held (Spawn.hold): started, not reported, its pipes not read, until a Spawn adopts it.
    bool held = false;
    std::string signature;  // of a held one: what an adopting Spawn must ask for exactly
  };
  // The process group and exec cgroup of a process that has exited, kept while members remain
  // (daemons), so a Signal or a session change can still reach them.
  struct ended_group {
    pid_t pgid = 0;  // 0: none (a spawn that failed after its cgroup was made)
    std::string cgroup;
    std::optional<uint64_t> session;
  };
  // An exec cgroup made ahead of the next spawn, off the spawn's own path.
  struct spare_cgroup {
    std::string name;
    unique_fd procs;
  };

  void read_commands();
  void handle_command(const std::vector<uint8_t>& payload);
  void on_hello(const wire::Hello& hello);
  void on_spawn(const wire::Spawn& spawn);
  // Spawn.adopt: the held process `held` becomes process `id` if its signature matches (true);
  // otherwise it is killed (false).
  [[nodiscard]] bool adopt_held(uint64_t held, uint64_t id, const std::string& signature);
  // Kills a held process and its process group, and reaps it and the members of the group that
  // are then init's children before returning.
  void discard_held(std::map<uint64_t, process>::iterator it);
  void on_stdin(const wire::StdinData& data);
  void on_signal(const wire::Signal& sig);
  void on_fs_call(const wire::FsCall& call);  // init_fs_call.cpp
  void kill_other_sessions(uint64_t session);
  // Signals an exited process's group unless its number now belongs to a live process of ours.
  void signal_ended_group(pid_t pgid, int sig);
  // SIGKILLs the tree of a live process: its exec cgroup, its group and itself.
  void kill_tree(const process& p);
  // SIGKILLs what remains of an exited process's tree.
  void kill_ended_tree(const ended_group& g);
  // The exec cgroup for the next spawn (the spare one, or a new one). Returns 0 or the errno.
  [[nodiscard]] int take_exec_cgroup(std::string& name, unique_fd& procs);
  // Housekeeping done after the events were written (as far as the executor's pipe took
  // them), off the path of an exec's events: closes fds spawns no longer need, removes the
  // cgroups of the processes that ended (keeping those with members), makes the spare cgroup.
  void tidy_after_flush();
  // True when nothing of an ended group is left (its cgroup removed, or its group empty).
  [[nodiscard]] bool ended_group_gone(const ended_group& g);

  void reap_children();
  // Sends the output owed by reaped processes, then their Exited. Stops under back-pressure.
  void finish_exiting();
  // Reads what remains in a reaped process's pipes. False when back-pressure interrupted it.
  [[nodiscard]] bool drain_after_exit(process& p);
  // Reads one chunk of a stream of p into an Output frame; closes the fd at EOF or error.
  io_status read_output(process& p, wire::Stream stream);
  void write_stdin(process& p);
  void forget_ended_groups_if_many();

  void flush_events();
  // True while the only events waiting are Started frames within their delay; then
  // timeout_ms is what remains of it.
  [[nodiscard]] bool holding_events(int& timeout_ms);
  void update_pause();
  [[nodiscard]] std::size_t pending_events() const { return outbound_.size() - outbound_pos_; }

  void emit_hello_ack(uint64_t session);
  void emit_started(uint64_t id, pid_t pid);
  void emit_output(uint64_t id, wire::Stream stream, const uint8_t* data, std::size_t size);
  void emit_exited(const process& p);
  void emit_stdin_written(process& p);
  void emit_spawn_failed(uint64_t id, int error_number, const std::string& message);
  void finish_event(wire::Event type, flatbuffers::Offset<void> event);

  init_limits limits_;
  int command_fd_;
  bool commands_open_ = true;
  int event_fd_;
  bool events_broken_ = false;
  unique_fd child_signal_fd_;

  wire::frame_reader commands_;
  uint64_t skipped_reported_ = 0;
  std::vector<uint8_t> command_buf_;
  std::vector<uint8_t> output_buf_;

  std::optional<uint64_t> session_;
  std::map<uint64_t, process> processes_;            // by id: running, or reaped and draining
  std::unordered_map<pid_t, uint64_t> live_pids_;    // pid -> id, until reaped
  std::deque<uint64_t> exiting_;                     // reaped ids, in the order they were reaped
  std::unordered_map<uint64_t, ended_group> ended_groups_;
  std::vector<uint64_t> unsettled_groups_;           // ended_groups_ keys not yet looked at
  std::size_t prune_ended_groups_at_;
  sandbox_isolation isolation_;
  std::optional<spare_cgroup> spare_cgroup_;
  uint64_t cgroups_made_ = 0;                        // names exec cgroups: "x<N>"
  std::vector<unique_fd> fds_to_close_;              // closed by tidy_after_flush
  std::unordered_set<uint64_t> used_ids_;            // every Spawn id ever received

  unique_fd null_input_;  // /dev/null, the stdin of processes started without stdin

  std::vector<uint8_t> outbound_;  // encoded frames not yet written to event_fd
  std::size_t outbound_pos_ = 0;
  // While outbound_ holds Started frames only: they are held (hold_), and written at the
  // latest at hold_until_ms_ (read from the clock once per hold, when the loop first waits:
  // clock_gettime is a trapped system call for init in gVisor).
  bool hold_ = false;
  std::optional<int64_t> hold_until_ms_;
  bool output_paused_ = false;     // back-pressure: children's pipes are not read
  flatbuffers::FlatBufferBuilder fbb_;
};

}  // namespace corral::init
