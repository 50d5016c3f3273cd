// corral-init, black box: the real static binary run as a child of the test, spoken to over its
// stdin/stdout with the frames and FlatBuffers of schemas/init_command.fbs and init_event.fbs.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "schemas/codec.hpp"
#include "schemas/frame.hpp"
#include "tests/init_harness.hpp"

namespace corral::init_test {
namespace {

using namespace std::chrono_literals;
using env_list = std::vector<std::pair<std::string, std::string>>;

// Every wait has this deadline; on a healthy machine each takes milliseconds.
test_clock::time_point deadline(std::chrono::milliseconds within = 30s) {
  return test_clock::now() + within;
}

const env_list default_env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}};

// -- commands -----------------------------------------------------------------------------------

bytes finish(flatbuffers::FlatBufferBuilder& fbb, wire::Command type,
             flatbuffers::Offset<void> command) {
  fbb.Finish(wire::CreateInitCommand(fbb, type, command), wire::InitCommandIdentifier());
  return bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

bytes hello(uint64_t session) {
  flatbuffers::FlatBufferBuilder fbb;
  return finish(fbb, wire::Command::Hello, wire::CreateHello(fbb, session).Union());
}

bytes spawn(uint64_t id, const std::vector<std::string>& argv, const env_list& env = default_env,
            const std::string& workdir = "", bool with_stdin = false, bool pty = false,
            uint16_t rows = 0, uint16_t cols = 0, bool hold = false, uint64_t adopt = 0) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<flatbuffers::String>> args;
  for (const auto& a : argv) args.push_back(fbb.CreateString(a));
  std::vector<flatbuffers::Offset<wire::KeyValue>> kvs;
  for (const auto& [k, v] : env) {
    const auto key = fbb.CreateString(k);
    const auto value = fbb.CreateString(v);
    kvs.push_back(wire::CreateKeyValue(fbb, key, value));
  }
  const auto argv_vec = fbb.CreateVector(args);
  const auto env_vec = fbb.CreateVector(kvs);
  const auto dir = fbb.CreateString(workdir);
  return finish(fbb, wire::Command::Spawn,
                wire::CreateSpawn(fbb, id, argv_vec, env_vec, dir, with_stdin, pty, rows, cols,
                                  hold, adopt)
                    .Union());
}

bytes stdin_data(uint64_t id, const std::string& data, bool eof) {
  flatbuffers::FlatBufferBuilder fbb;
  const auto vec = fbb.CreateVector(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return finish(fbb, wire::Command::StdinData, wire::CreateStdinData(fbb, id, vec, eof).Union());
}

bytes resize_cmd(uint64_t id, uint16_t rows, uint16_t cols) {
  flatbuffers::FlatBufferBuilder fbb;
  return finish(fbb, wire::Command::Resize, wire::CreateResize(fbb, id, rows, cols).Union());
}

bytes signal_cmd(uint64_t id, int sig) {
  flatbuffers::FlatBufferBuilder fbb;
  return finish(fbb, wire::Command::Signal, wire::CreateSignal(fbb, id, sig).Union());
}

// -- the test's side of the protocol ------------------------------------------------------------

// Everything init said about one process id.
struct exec_outcome {
  int started = 0;
  int pid = 0;
  std::string out;
  std::string err;
  int exited = 0;
  int exit_code = -1;
  int signal = -1;
  int spawn_failed = 0;
  int error_number = 0;
  std::string message;
  bool event_after_end = false;  // an event for this id after its Exited or SpawnFailed
  bool output_before_start = false;
  uint64_t stdin_written = 0;       // last StdinWritten total
  int stdin_written_events = 0;
  bool stdin_written_backwards = false;
  [[nodiscard]] bool ended() const { return exited > 0 || spawn_failed > 0; }
};

class init_client {
 public:
  explicit init_client(const std::vector<std::string>& args = {}) : init_(args) {}
  ~init_client() {
    EXPECT_EQ(reader_.skipped_bytes(), 0u) << "init wrote bytes that are not frames";
    // A sanitizer build of init reports there (UBSan carries on after its report).
    EXPECT_EQ(init_.log().find("runtime error"), std::string::npos);
    EXPECT_EQ(init_.log().find("Sanitizer"), std::string::npos);
    if (::testing::Test::HasFailure()) std::fprintf(stderr, "--- init's log:\n%s", init_.log().c_str());
  }

  init_process& process() { return init_; }

  void send(const bytes& payload) { ASSERT_TRUE(init_.write(wire::make_frame(payload), deadline())); }
  void send_raw(const bytes& raw) { ASSERT_TRUE(init_.write(raw, deadline())); }

  // Reads what init has written (at most read_size bytes) and applies the events in it.
  // False when nothing arrived before the deadline.
  bool read_events(test_clock::time_point until, std::size_t read_size = 1 << 20) {
    const bytes got = init_.read_stdout(read_size, until);
    if (got.empty()) return false;
    reader_.feed(got.data(), got.size());
    while (auto payload = reader_.next()) apply(*payload);
    return true;
  }

  // Reads events until done() holds; false at the deadline.
  bool wait_until(const std::function<bool()>& done, test_clock::time_point until = deadline()) {
    while (!done()) {
      if (!read_events(until)) return done();
    }
    return true;
  }

  bool wait_ended(uint64_t id) {
    return wait_until([&] { return outcomes_[id].ended(); });
  }

  // Waits for the HelloAck of session; false at the deadline.
  bool wait_hello_ack(uint64_t session) {
    const bool ok = wait_until([&] {
      return std::find(acks_.begin(), acks_.end(), session) != acks_.end();
    });
    acks_.erase(std::remove(acks_.begin(), acks_.end(), session), acks_.end());
    return ok;
  }

  // A Hello of session, answered.
  void handshake(uint64_t session) {
    send(hello(session));
    ASSERT_TRUE(wait_hello_ack(session));
  }

  exec_outcome& outcome(uint64_t id) { return outcomes_[id]; }
  [[nodiscard]] int hello_ack_pid() const { return hello_ack_pid_; }

  // Runs argv to its end and returns what init said about it.
  exec_outcome run(uint64_t id, const std::vector<std::string>& argv,
                   const env_list& env = default_env, const std::string& workdir = "") {
    send(spawn(id, argv, env, workdir));
    EXPECT_TRUE(wait_ended(id)) << "process " << id << " did not end";
    return outcomes_[id];
  }

 private:
  void apply(const bytes& payload) {
    const auto* ev = wire::verify<wire::InitEvent>(payload.data(), payload.size(),
                                                   wire::max_frame_payload);
    ASSERT_NE(ev, nullptr) << "init sent a frame that is not a valid InitEvent";
    switch (ev->event_type()) {
      case wire::Event::HelloAck: {
        const auto* e = ev->event_as_HelloAck();
        acks_.push_back(e->session());
        hello_ack_pid_ = e->pid();
        return;
      }
      case wire::Event::Started: {
        const auto* e = ev->event_as_Started();
        exec_outcome& o = at(e->id());
        ++o.started;
        o.pid = e->pid();
        return;
      }
      case wire::Event::Output: {
        const auto* e = ev->event_as_Output();
        exec_outcome& o = at(e->id());
        if (o.started == 0) o.output_before_start = true;
        std::string& s = e->stream() == wire::Stream::stdout ? o.out : o.err;
        EXPECT_TRUE(e->stream() == wire::Stream::stdout || e->stream() == wire::Stream::stderr);
        if (e->data() != nullptr) s.append(e->data()->begin(), e->data()->end());
        return;
      }
      case wire::Event::Exited: {
        const auto* e = ev->event_as_Exited();
        exec_outcome& o = at(e->id());
        ++o.exited;
        o.exit_code = e->exit_code();
        o.signal = e->signal();
        return;
      }
      case wire::Event::SpawnFailed: {
        const auto* e = ev->event_as_SpawnFailed();
        exec_outcome& o = outcomes_[e->id()];  // a duplicate id fails after its first ended
        ++o.spawn_failed;
        o.error_number = e->error_number();
        o.message = std::string(wire::str(e->message()));
        return;
      }
      case wire::Event::StdinWritten: {
        const auto* e = ev->event_as_StdinWritten();
        exec_outcome& o = at(e->id());
        if (e->total() < o.stdin_written) o.stdin_written_backwards = true;
        o.stdin_written = e->total();
        ++o.stdin_written_events;
        return;
      }
      default:
        ADD_FAILURE() << "an InitEvent without an event";
    }
  }

  exec_outcome& at(uint64_t id) {
    exec_outcome& o = outcomes_[id];
    if (o.ended()) o.event_after_end = true;
    return o;
  }

  init_process init_;
  wire::frame_reader reader_;
  std::map<uint64_t, exec_outcome> outcomes_;
  std::vector<uint64_t> acks_;
  int hello_ack_pid_ = 0;
};

std::string sequence_text(int first, int last) {
  std::string s;
  for (int i = first; i <= last; ++i) {
    s += std::to_string(i);
    s += '\n';
  }
  return s;
}

std::string as_string(const bytes& b) { return std::string(b.begin(), b.end()); }

// Reads events (Hello round trips) until pid has been reaped by init, which happens within the
// loop iteration that sees its SIGCHLD.
bool wait_reaped(init_client& c, pid_t pid, uint64_t session) {
  const auto until = deadline();
  while (!process_reaped(pid)) {
    if (test_clock::now() > until) return false;
    c.send(hello(session));
    if (!c.wait_hello_ack(session)) return false;
  }
  return true;
}

// -- tests --------------------------------------------------------------------------------------

TEST(init, hello_is_answered_with_session_and_pid) {
  init_client c;
  c.handshake(42);
  EXPECT_EQ(c.hello_ack_pid(), c.process().pid());
  c.handshake(42);  // the same session again: just answered
}

TEST(init, runs_a_process_and_reports_both_streams_and_exit_code) {
  init_client c;
  c.handshake(1);
  const exec_outcome o = c.run(1, {"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(o.started, 1);
  EXPECT_GT(o.pid, 0);
  EXPECT_EQ(o.out, "out\n");
  EXPECT_EQ(o.err, "err\n");
  EXPECT_EQ(o.exited, 1);
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_EQ(o.signal, 0);
  EXPECT_FALSE(o.output_before_start);
  EXPECT_FALSE(o.event_after_end);
}

TEST(init, a_short_process_costs_one_write_for_started_and_exited) {
  init_client c({"--started-delay-ms=1000"});
  c.handshake(1);
  c.send(spawn(1, {"true"}));
  // The first bytes init writes after the Spawn carry both events (one write of both frames).
  ASSERT_TRUE(c.read_events(deadline()));
  EXPECT_EQ(c.outcome(1).started, 1);
  EXPECT_EQ(c.outcome(1).exited, 1);
  EXPECT_EQ(c.outcome(1).exit_code, 0);
}

TEST(init, started_of_a_running_process_is_written_after_its_delay) {
  for (const char* delay : {"--started-delay-ms=0", "--started-delay-ms=20"}) {
    SCOPED_TRACE(delay);
    init_client c({delay});
    c.handshake(1);
    c.send(spawn(1, {"sleep", "100"}));
    ASSERT_TRUE(c.wait_until([&] { return c.outcome(1).started == 1; }));
    EXPECT_EQ(c.outcome(1).exited, 0);
    // Another event right away: the Started of a second process is written with it.
    c.send(spawn(2, {"sleep", "100"}));
    c.handshake(1);
    EXPECT_EQ(c.outcome(2).started, 1);
    c.send(signal_cmd(1, SIGKILL));
    c.send(signal_cmd(2, SIGKILL));
    ASSERT_TRUE(c.wait_ended(1));
    ASSERT_TRUE(c.wait_ended(2));
    EXPECT_EQ(c.outcome(1).signal, SIGKILL);
  }
}

TEST(init, stdin_round_trip_through_cat) {
  init_client c;
  c.handshake(1);
  c.send(spawn(1, {"cat"}, default_env, "", true));
  // 320 KiB in 64 KiB chunks: more than a pipe holds, so init buffers it.
  std::string sent;
  for (int i = 0; i < 5; ++i) {
    std::string chunk(64 * 1024, static_cast<char>('a' + i));
    chunk[0] = '\n';
    sent += chunk;
    c.send(stdin_data(1, chunk, i == 4));
  }
  ASSERT_TRUE(c.wait_ended(1));
  const exec_outcome& o = c.outcome(1);
  EXPECT_EQ(o.started, 1);
  EXPECT_TRUE(o.out == sent) << "got " << o.out.size() << " bytes of " << sent.size();
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.signal, 0);
  // Flow control: init reported every byte it wrote into the pipe, never going backwards.
  EXPECT_EQ(o.stdin_written, sent.size());
  EXPECT_GE(o.stdin_written_events, 1);
  EXPECT_FALSE(o.stdin_written_backwards);
}

TEST(init, pty_merges_stderr_sets_the_size_and_resizes) {
  init_client c;
  c.handshake(1);
  c.send(spawn(1, {"sh", "-c", "stty size; echo err >&2; read line; stty size; tty"}, default_env, "",
               true, true, 30, 100));
  // Resize once the first size is out (the shell has started and read it).
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(1).out.find("err") != std::string::npos; }));
  c.send(resize_cmd(1, 40, 120));
  c.send(stdin_data(1, "go\n", false));
  ASSERT_TRUE(c.wait_ended(1));
  const exec_outcome& o = c.outcome(1);
  EXPECT_EQ(o.exit_code, 0) << o.out;
  EXPECT_NE(o.out.find("30 100"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("err"), std::string::npos) << o.out;  // stderr is the terminal too
  EXPECT_NE(o.out.find("40 120"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("/dev/pts/"), std::string::npos) << o.out;
  EXPECT_EQ(o.err, "");
}

TEST(init, stdin_eof_alone_and_dev_null_stdin) {
  init_client c;
  c.handshake(1);
  c.send(spawn(1, {"cat"}, default_env, "", true));
  c.send(stdin_data(1, "", true));
  ASSERT_TRUE(c.wait_ended(1));
  EXPECT_EQ(c.outcome(1).exit_code, 0);
  EXPECT_EQ(c.outcome(1).out, "");
  // Without stdin the process reads /dev/null: cat ends at once.
  const exec_outcome o = c.run(2, {"cat"});
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, "");
}

TEST(init, signal_kills_the_process) {
  init_client c;
  c.handshake(1);
  c.send(spawn(1, {"sleep", "100"}));
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(1).started == 1; }));
  c.send(signal_cmd(1, SIGKILL));
  ASSERT_TRUE(c.wait_ended(1));
  EXPECT_EQ(c.outcome(1).signal, SIGKILL);
  EXPECT_EQ(c.outcome(1).exit_code, 128 + SIGKILL);
}

TEST(init, signal_reaches_the_whole_process_group) {
  init_client c;
  c.handshake(1);
  c.send(spawn(1, {"sh", "-c", "sleep 100 & echo $!; wait"}));
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(1).out.find('\n') != std::string::npos; }));
  const pid_t background = std::stoi(c.outcome(1).out);
  ASSERT_TRUE(process_alive(background));
  c.send(signal_cmd(1, SIGTERM));
  ASSERT_TRUE(c.wait_ended(1));
  EXPECT_EQ(c.outcome(1).signal, SIGTERM);
  EXPECT_TRUE(wait_process_exit(background, deadline()));
  EXPECT_TRUE(wait_reaped(c, background, 1)) << "the orphan was not reaped by init";
}

TEST(init, background_child_holding_the_pipes_does_not_delay_exited) {
  init_client c;
  c.handshake(1);
  // The shell exits at once; its background sleep keeps stdout and stderr open for 100 s.
  const auto until = test_clock::now() + 20s;
  const exec_outcome o = c.run(1, {"sh", "-c", "sleep 100 & echo $!"});
  EXPECT_LT(test_clock::now(), until);
  ASSERT_EQ(o.exited, 1);
  EXPECT_EQ(o.exit_code, 0);
  const pid_t background = std::stoi(o.out);
  EXPECT_TRUE(process_alive(background));
  // The exec has ended, but its process group can still be signalled (daemons included).
  c.send(signal_cmd(1, SIGKILL));
  EXPECT_TRUE(wait_process_exit(background, deadline()));
  EXPECT_TRUE(wait_reaped(c, background, 1));
  EXPECT_FALSE(c.outcome(1).event_after_end);
}

TEST(init, a_grandchild_flooding_the_pipes_cannot_postpone_exited) {
  init_client c;
  c.handshake(1);
  // yes keeps writing to the inherited stdout after the shell has exited.
  const exec_outcome o = c.run(1, {"sh", "-c", "yes & echo started >&2"});
  ASSERT_EQ(o.exited, 1);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.err, "started\n");
  // Once Exited is sent init closes the pipes: yes dies of SIGPIPE, nothing follows Exited.
  c.handshake(1);
  EXPECT_FALSE(c.outcome(1).event_after_end);
}

TEST(init, missing_executable_is_spawn_failed_with_enoent) {
  init_client c;
  c.handshake(1);
  exec_outcome o = c.run(1, {"corral-no-such-program", "x"});
  EXPECT_EQ(o.spawn_failed, 1);
  EXPECT_EQ(o.started, 0);
  EXPECT_EQ(o.exited, 0);
  EXPECT_EQ(o.error_number, ENOENT);
  EXPECT_EQ(o.message, "executable not found: corral-no-such-program");

  o = c.run(2, {"/nonexistent/bin/prog"});
  EXPECT_EQ(o.spawn_failed, 1);
  EXPECT_EQ(o.error_number, ENOENT);
  EXPECT_NE(o.message.find("executable not found"), std::string::npos) << o.message;

  // Not executable: EACCES.
  const std::string dir = make_temp_dir();
  ASSERT_TRUE(write_file(dir + "/data", "not a program\n", 0644));
  o = c.run(3, {dir + "/data"});
  EXPECT_EQ(o.spawn_failed, 1);
  EXPECT_EQ(o.error_number, EACCES);
  EXPECT_EQ(o.message, "permission denied: " + dir + "/data");
  std::filesystem::remove_all(dir);

  // A PATH from the env is what is searched: without /bin in it, sh is not found.
  o = c.run(4, {"sh", "-c", "true"}, {{"PATH", "/nonexistent"}});
  EXPECT_EQ(o.spawn_failed, 1);
  EXPECT_EQ(o.error_number, ENOENT);

  // The failed children were reaped, and init goes on.
  o = c.run(5, {"true"});
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_FALSE(c.outcome(1).event_after_end);
}

TEST(init, invalid_spawns_are_rejected_with_einval) {
  init_client c;
  c.handshake(1);
  exec_outcome o = c.run(1, {});
  EXPECT_EQ(o.spawn_failed, 1);
  EXPECT_EQ(o.error_number, EINVAL);
  EXPECT_EQ(o.started, 0);

  o = c.run(2, {"true"}, default_env, "relative/dir");
  EXPECT_EQ(o.error_number, EINVAL);

  o = c.run(3, {"true"}, {{"A=B", "c"}});
  EXPECT_EQ(o.error_number, EINVAL);

  o = c.run(4, {std::string("tr\0ue", 5)});
  EXPECT_EQ(o.error_number, EINVAL);

  o = c.run(5, {"pwd"}, default_env, "/nonexistent-workdir");
  EXPECT_EQ(o.spawn_failed, 1);
  EXPECT_EQ(o.error_number, ENOENT);
  EXPECT_NE(o.message.find("workdir"), std::string::npos) << o.message;
}

TEST(init, duplicate_id_is_refused_and_never_starts_a_second_process) {
  init_client c;
  c.handshake(1);
  c.send(spawn(7, {"sleep", "100"}));
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(7).started == 1; }));
  c.send(spawn(7, {"sh", "-c", "echo second"}));
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(7).spawn_failed == 1; }));
  EXPECT_EQ(c.outcome(7).error_number, EEXIST);
  c.send(signal_cmd(7, SIGKILL));
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(7).exited == 1; }));
  // Still refused after the first one ended.
  c.send(spawn(7, {"sh", "-c", "echo third"}));
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(7).spawn_failed == 2; }));
  EXPECT_EQ(c.outcome(7).error_number, EEXIST);
  c.handshake(1);  // everything init sent about 7 has arrived by now
  EXPECT_EQ(c.outcome(7).started, 1);
  EXPECT_EQ(c.outcome(7).exited, 1);
  EXPECT_EQ(c.outcome(7).out, "");
}

TEST(init, environment_is_exactly_what_was_given) {
  init_client c;
  c.handshake(1);
  const env_list env = {{"PATH", "/usr/bin:/bin"}, {"FOO", "bar"}, {"SPACED", "a b  c"},
                        {"EMPTY", ""}, {"HOME", "/root"}};
  const exec_outcome o = c.run(1, {"env"}, env);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  std::vector<std::string> got;
  std::istringstream lines(o.out);
  for (std::string line; std::getline(lines, line);) got.push_back(line);
  std::vector<std::string> want;
  for (const auto& [k, v] : env) want.push_back(k + "=" + v);
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);

  // No environment at all, and an absolute argv[0].
  const exec_outcome bare = c.run(2, {"/usr/bin/env"}, {});
  EXPECT_EQ(bare.exit_code, 0);
  EXPECT_EQ(bare.out, "");
}

TEST(init, workdir_fds_and_signal_dispositions_are_fresh) {
  init_client c;
  c.handshake(1);
  EXPECT_EQ(c.run(1, {"pwd"}, default_env, "/tmp").out, "/tmp\n");
  EXPECT_EQ(c.run(2, {"pwd"}).out, "/\n");
  // Only 0, 1 and 2 are inherited (3 is ls's own directory fd).
  EXPECT_EQ(c.run(3, {"ls", "/proc/self/fd"}).out, "0\n1\n2\n3\n");
  // init ignores SIGTERM; its children must not.
  const exec_outcome o = c.run(4, {"sh", "-c", "kill -TERM $$; echo survived"});
  EXPECT_EQ(o.signal, SIGTERM);
  EXPECT_EQ(o.out, "");
  // Its own session and process group: fields 1, 5 and 6 of /proc/self/stat are equal.
  const exec_outcome stat = c.run(5, {"cat", "/proc/self/stat"});
  std::istringstream fields(stat.out.substr(stat.out.rfind(')') + 2));
  std::string state;
  long ppid = 0, pgid = 0, sid = 0;
  fields >> state >> ppid >> pgid >> sid;
  EXPECT_EQ(std::to_string(pgid) + " ", stat.out.substr(0, stat.out.find(' ') + 1));
  EXPECT_EQ(sid, pgid);
  EXPECT_EQ(ppid, c.process().pid());
}

TEST(init, its_fds_are_closed_to_processes_without_cap_sys_ptrace) {
  init_client c;
  c.handshake(1);
  const env_list env = {{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}};
  if (c.run(1, {"setpriv", "--version"}, env).exit_code != 0) GTEST_SKIP() << "no setpriv";
  // Root in the sandbox, but without CAP_SYS_PTRACE: init's stdout cannot be opened (no forged
  // events), nor its stdin (no stolen commands).
  const std::string fd_dir = "/proc/" + std::to_string(c.process().pid()) + "/fd/";
  const exec_outcome o = c.run(
      2, {"setpriv", "--bounding-set=-sys_ptrace", "sh", "-c",
          "echo forged > " + fd_dir + "1 || readlink " + fd_dir + "0 || exit 42"}, env);
  EXPECT_EQ(o.exit_code, 42) << o.out << o.err;
  EXPECT_EQ(o.out, "");
}

TEST(init, ten_mib_of_output_arrive_exactly_while_the_reader_is_slow) {
  init_client c;
  c.handshake(1);
  c.send(spawn(1, {"seq", "1", "1450000"}));
  // Slow at first: 4 KiB per read for the first 2 MiB.
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(1).out.size() >= (2u << 20) || c.outcome(1).ended(); }));
  while (c.outcome(1).out.size() < (2u << 20) && !c.outcome(1).ended()) {
    ASSERT_TRUE(c.read_events(deadline(), 4096));
  }
  ASSERT_TRUE(c.wait_ended(1));
  const exec_outcome& o = c.outcome(1);
  EXPECT_EQ(o.exit_code, 0);
  const std::string want = sequence_text(1, 1450000);
  ASSERT_GT(want.size(), 10u << 20);
  EXPECT_EQ(o.out.size(), want.size());
  EXPECT_TRUE(o.out == want) << "output differs";
}

TEST(init, back_pressure_pauses_children_and_loses_nothing) {
  init_client c({"--max-outbound-bytes=262144"});
  c.handshake(1);
  const std::string dir = make_temp_dir();
  const std::string script = "(head -c 5242880 /dev/urandom | tee " + dir + "/err >&2) & " +
                             "head -c 10485760 /dev/urandom | tee " + dir + "/out; wait";
  c.send(spawn(1, {"sh", "-c", script}));
  // Not reading at all until init says it stopped reading its children's pipes.
  ASSERT_TRUE(c.process().wait_for_log("back-pressure:", deadline()));
  EXPECT_LT(file_size(dir + "/out"), 10485760) << "the producer was not held back";
  // Then slowly: 4 KiB per read for the first MiB.
  while (c.outcome(1).out.size() < (1u << 20)) ASSERT_TRUE(c.read_events(deadline(), 4096));
  ASSERT_TRUE(c.wait_ended(1));
  const exec_outcome& o = c.outcome(1);
  EXPECT_EQ(o.exit_code, 0) << o.err.size();
  const bytes out = read_file(dir + "/out");
  const bytes err = read_file(dir + "/err");
  ASSERT_EQ(out.size(), 10485760u);
  ASSERT_EQ(err.size(), 5242880u);
  EXPECT_EQ(o.out.size(), out.size());
  EXPECT_EQ(o.err.size(), err.size());
  EXPECT_TRUE(o.out == as_string(out)) << "stdout differs";
  EXPECT_TRUE(o.err == as_string(err)) << "stderr differs";
  EXPECT_NE(c.process().log().find("back-pressure released"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(init, garbage_and_invalid_frames_are_skipped) {
  init_client c;
  const std::string junk = "this is not a frame\n\x01\x02\x03 CRF CRFX";
  c.send_raw(bytes(junk.begin(), junk.end()));
  // A frame whose length is over the cap: the reader resynchronises past it.
  c.send_raw(bytes{'C', 'R', 'F', 'M', 0xff, 0xff, 0xff, 0x7f, 'x'});
  // Frames whose payloads do not verify: random bytes, a truncated command, another root type.
  c.send(bytes{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  bytes truncated = spawn(1, {"echo", "never"});
  truncated.resize(truncated.size() / 2);
  c.send(truncated);
  bytes wrong_identifier = hello(5);
  wrong_identifier[4] = 'X';
  c.send(wrong_identifier);
  bytes empty;
  c.send(empty);
  // The next valid commands work.
  c.handshake(9);
  const exec_outcome o = c.run(2, {"echo", "fine"});
  EXPECT_EQ(o.out, "fine\n");
  EXPECT_EQ(c.outcome(1).started + c.outcome(1).spawn_failed, 0);
  EXPECT_TRUE(c.process().running());
  EXPECT_NE(c.process().log().find("not a valid InitCommand"), std::string::npos);
  EXPECT_NE(c.process().log().find("not frames"), std::string::npos);
}

TEST(init, commands_for_unknown_ids_are_ignored) {
  init_client c;
  c.handshake(1);
  c.send(stdin_data(999, "data", true));
  c.send(signal_cmd(999, SIGKILL));
  c.send(spawn(1, {"true"}));
  ASSERT_TRUE(c.wait_ended(1));
  c.send(stdin_data(1, "late", true));  // after its exit
  c.send(signal_cmd(1, 9999));          // an invalid signal
  c.handshake(1);
  EXPECT_TRUE(c.process().running());
}

TEST(init, new_session_kills_the_processes_of_older_sessions) {
  init_client c;
  c.handshake(1);
  c.send(spawn(1, {"sleep", "100"}));
  const exec_outcome done = c.run(2, {"sh", "-c", "sleep 100 & echo $!"});
  ASSERT_EQ(done.exit_code, 0);
  const pid_t daemon = std::stoi(done.out);
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(1).started == 1; }));
  // The same session again (a reconnect): nothing is killed.
  c.handshake(1);
  EXPECT_FALSE(c.outcome(1).ended());
  EXPECT_TRUE(process_alive(c.outcome(1).pid));
  EXPECT_TRUE(process_alive(daemon));
  // A new executor: the old session's processes die, and are reported.
  c.handshake(2);
  ASSERT_TRUE(c.wait_ended(1));
  EXPECT_EQ(c.outcome(1).signal, SIGKILL);
  EXPECT_TRUE(wait_process_exit(daemon, deadline()));
  EXPECT_TRUE(wait_reaped(c, daemon, 2));
  // The new session works, and its processes survive a repeated Hello of its own.
  c.send(spawn(3, {"sleep", "100"}));
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(3).started == 1; }));
  c.handshake(2);
  EXPECT_FALSE(c.outcome(3).ended());
  c.send(signal_cmd(3, SIGKILL));
  ASSERT_TRUE(c.wait_ended(3));
}

// A FIFO in a temporary directory of its own, removed with it.
struct temp_fifo {
  std::string dir = make_temp_dir();
  std::string path = dir + "/fifo";
  temp_fifo() { EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0); }
  ~temp_fifo() { std::filesystem::remove_all(dir); }
};

// A held process (the warm pool's pre-started command) is invisible until a Spawn asking for
// exactly it adopts it; then it is that Spawn's process, with everything it wrote before.
TEST(init, a_held_process_says_nothing_until_adopted_then_everything) {
  const temp_fifo f;
  const std::string& fifo = f.path;
  init_client c;
  c.handshake(1);
  const std::vector<std::string> argv = {
      "sh", "-c", "echo early; echo $$ > " + fifo + "; read line; echo got:$line"};
  c.send(spawn(1, argv, default_env, "", /*with_stdin=*/true, false, 0, 0, /*hold=*/true));
  // Process 2 ends once the held one has written "early" and its pid.
  const exec_outcome reader = c.run(2, {"cat", fifo});
  ASSERT_EQ(reader.exit_code, 0);
  const pid_t held_pid = std::stoi(reader.out);
  c.handshake(1);  // one more round trip: init has nothing of process 1 to say
  EXPECT_EQ(c.outcome(1).started, 0);
  EXPECT_TRUE(c.outcome(1).out.empty());
  EXPECT_FALSE(c.outcome(1).ended());
  EXPECT_TRUE(process_alive(held_pid));

  c.send(spawn(3, argv, default_env, "", true, false, 0, 0, false, /*adopt=*/1));
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(3).started == 1; }));
  EXPECT_EQ(c.outcome(3).pid, held_pid);
  c.send(stdin_data(3, "hello\n", true));
  ASSERT_TRUE(c.wait_ended(3));
  EXPECT_EQ(c.outcome(3).out, "early\ngot:hello\n");
  EXPECT_EQ(c.outcome(3).exit_code, 0);
  EXPECT_FALSE(c.outcome(3).output_before_start);
  EXPECT_EQ(c.outcome(1).started + c.outcome(1).exited + c.outcome(1).spawn_failed, 0);
}

// A Spawn that names a held process but asks for anything else, and a Signal to a held process,
// kill it and its group, and init reaps them; no event ever names it. (init reaps them before it
// reads its next command, which a test cannot tell from reaping them a moment later.)
TEST(init, a_held_process_is_discarded_by_a_different_spawn_and_by_a_signal) {
  const temp_fifo f;
  const std::string& fifo = f.path;
  init_client c;
  c.handshake(1);
  const std::vector<std::string> argv = {"sh", "-c", "sleep 100 & echo $$ $! > " + fifo + "; wait"};
  auto held_pids = [&](uint64_t id) {
    c.send(spawn(id, argv, default_env, "", true, false, 0, 0, /*hold=*/true));
    const exec_outcome reader = c.run(id + 100, {"cat", fifo});
    std::istringstream in(reader.out);
    std::pair<pid_t, pid_t> pids{0, 0};
    in >> pids.first >> pids.second;
    return pids;
  };

  const auto [leader, background] = held_pids(1);
  ASSERT_TRUE(process_alive(leader));
  ASSERT_TRUE(process_alive(background));
  // The same argv with a different environment is not the held process.
  c.send(spawn(2, argv, {{"PATH", "/usr/bin:/bin"}, {"X", "1"}}, "", true, false, 0, 0, false, 1));
  ASSERT_TRUE(c.wait_until([&] { return c.outcome(2).started == 1; }));
  EXPECT_NE(c.outcome(2).pid, leader);
  EXPECT_TRUE(wait_reaped(c, leader, 1));
  EXPECT_TRUE(wait_reaped(c, background, 1));
  c.send(signal_cmd(2, SIGKILL));
  ASSERT_TRUE(c.wait_ended(2));

  const auto [leader2, background2] = held_pids(3);
  ASSERT_TRUE(process_alive(leader2));
  c.send(signal_cmd(3, SIGTERM));
  EXPECT_TRUE(wait_reaped(c, leader2, 1));
  EXPECT_TRUE(wait_reaped(c, background2, 1));
  // Adopting what is gone starts a new process.
  const exec_outcome late = [&] {
    c.send(spawn(4, {"echo", "mine"}, default_env, "", false, false, 0, 0, false, 3));
    EXPECT_TRUE(c.wait_ended(4));
    return c.outcome(4);
  }();
  EXPECT_EQ(late.out, "mine\n");
  for (uint64_t id : {1, 3})
    EXPECT_EQ(c.outcome(id).started + c.outcome(id).exited + c.outcome(id).spawn_failed, 0) << id;
}

// A held process that ends on its own is forgotten: an adopting Spawn runs as if there were none
// (or, if it comes before init noticed the end, reports that end as its own).
TEST(init, a_held_process_that_ends_is_forgotten) {
  init_client c;
  c.handshake(1);
  const std::vector<std::string> argv = {"sh", "-c", "exit 3"};
  c.send(spawn(1, argv, default_env, "", false, false, 0, 0, /*hold=*/true));
  const exec_outcome other = c.run(2, {"true"});
  EXPECT_EQ(other.exit_code, 0);
  c.send(spawn(3, argv, default_env, "", false, false, 0, 0, false, /*adopt=*/1));
  ASSERT_TRUE(c.wait_ended(3));
  EXPECT_EQ(c.outcome(3).started, 1);
  EXPECT_EQ(c.outcome(3).exit_code, 3);
  EXPECT_EQ(c.outcome(1).started + c.outcome(1).exited + c.outcome(1).spawn_failed, 0);
}

TEST(init, many_processes_at_once) {
  init_client c;
  c.handshake(1);
  constexpr int n = 64;
  for (int i = 1; i <= n; ++i) {
    c.send(spawn(static_cast<uint64_t>(i),
                 {"sh", "-c", "seq 1 " + std::to_string(i * 100) + "; exit " + std::to_string(i % 7)}));
  }
  for (int i = 1; i <= n; ++i) {
    ASSERT_TRUE(c.wait_ended(static_cast<uint64_t>(i))) << i;
    const exec_outcome& o = c.outcome(static_cast<uint64_t>(i));
    EXPECT_EQ(o.exit_code, i % 7);
    EXPECT_TRUE(o.out == sequence_text(1, i * 100)) << i;
  }
}

TEST(init, keeps_running_after_stdin_eof) {
  init_client c;
  c.send(hello(1));
  c.send(spawn(1, {"sh", "-c", "echo last"}));
  c.process().close_stdin();
  ASSERT_TRUE(c.wait_hello_ack(1));
  ASSERT_TRUE(c.wait_ended(1));
  EXPECT_EQ(c.outcome(1).out, "last\n");
  ASSERT_TRUE(c.process().wait_for_log("stdin closed", deadline()));
  EXPECT_TRUE(c.process().running());
}

TEST(init, ignores_termination_signals) {
  init_client c;
  c.handshake(1);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) ASSERT_TRUE(c.process().send_signal(sig));
  c.handshake(1);
  EXPECT_TRUE(c.process().running());
  // What init was sent is not its children's: they start with nothing blocked, ignored or
  // pending.
  const exec_outcome o = c.run(1, {"grep", "-E", "^Sig(Pnd|Blk|Ign)", "/proc/self/status"});
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, "SigPnd:\t0000000000000000\nSigBlk:\t0000000000000000\n"
                   "SigIgn:\t0000000000000000\n");
}

TEST(init, stdin_over_its_cap_is_dropped_and_logged) {
  init_client c({"--max-stdin-buffer-bytes=100000"});
  c.handshake(1);
  c.send(spawn(1, {"sleep", "100"}, default_env, "", true));  // never reads its stdin
  const std::string chunk(60000, 'x');
  for (int i = 0; i < 4; ++i) c.send(stdin_data(1, chunk, false));
  ASSERT_TRUE(c.process().wait_for_log("bytes dropped", deadline()));
  c.send(signal_cmd(1, SIGKILL));
  ASSERT_TRUE(c.wait_ended(1));
  EXPECT_EQ(c.outcome(1).signal, SIGKILL);
}

TEST(init, survives_a_broken_stdout) {
  init_client c;
  c.handshake(1);
  c.process().close_stdout();
  c.send(spawn(1, {"sh", "-c", "echo into the void"}));
  ASSERT_TRUE(c.process().wait_for_log("stdout is broken", deadline()));
  c.send(hello(1));
  c.send(spawn(2, {"true"}));
  c.send(spawn(3, {}));
  ASSERT_TRUE(c.process().wait_for_log("spawn 3 rejected", deadline()));
  EXPECT_TRUE(c.process().running());
}

TEST(init, refuses_invalid_limits) {
  init_process bad({"--max-outbound-bytes=12"});
  const int status = bad.wait_exit(deadline());
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  init_process unknown({"--bogus"});
  EXPECT_EQ(WEXITSTATUS(unknown.wait_exit(deadline())), 2);
  init_process slow({"--started-delay-ms=1001"});
  EXPECT_EQ(WEXITSTATUS(slow.wait_exit(deadline())), 2);
}

}  // namespace
}  // namespace corral::init_test
