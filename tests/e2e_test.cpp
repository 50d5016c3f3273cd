// The user story of the spine, end to end through the real path: corral CLI -> NATS (a real
// nats-server) -> corral-executor (CAF actors, RocksDB) -> runsc sandbox -> corral-init ->
// process, and output back. Also exit codes, 10 MiB byte-exact, isolation, bad input, and an
// executor killed with -9 mid-exec.
#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "bus/connection.hpp"
#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/nats_server.hpp"

namespace corral {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::background_process;
using test::run_result;

using test::bin;
using test::deployment;
using test::trim;

deployment::options e2e_options() {
  deployment::options o;
  o.node = "e2e-node";
  o.tenant = "e2e";
  o.executor_args = {"--max-sandboxes", "8", "--max-output-mib", "16"};
  return o;
}

class E2E : public test::deployment_test<e2e_options> {};

TEST_F(E2E, UserStory) {
  auto run = d_->corral({"run", "--", "python3", "-c", "import sys; print(6*7); sys.exit(3)"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_EQ(run.out, "42\n");

  const auto sb = d_->create({"--name", "demo", "--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  auto both = d_->corral({"exec", sb, "--", "sh", "-c", "echo out; echo err >&2"});
  EXPECT_EQ(both.exit_code, 0);
  EXPECT_EQ(both.out, "out\n");
  EXPECT_EQ(both.err, "err\n");
  auto w = d_->corral({"exec", sb, "--", "python3", "-c", "open('/tmp/x','w').write('kept')"});
  EXPECT_EQ(w.exit_code, 0) << w.err;
  auto c = d_->corral({"exec", sb, "--", "cat", "/tmp/x"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out, "kept");

  auto by_name = d_->corral({"sandbox", "info", "--name", "demo"});
  EXPECT_NE(by_name.out.find(sb), std::string::npos) << by_name.out << by_name.err;
  auto ls = d_->corral({"sandbox", "ls"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find(sb), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("demo"), std::string::npos);
  EXPECT_NE(ls.out.find("running"), std::string::npos);
  EXPECT_NE(ls.out.find("e2e-node"), std::string::npos);

  auto rm = d_->corral({"sandbox", "rm", sb});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_NE(rm.out.find("terminated"), std::string::npos);
  auto all = d_->corral({"sandbox", "ls", "--all"});
  std::string line;
  for (std::istringstream in(all.out); std::getline(in, line);)
    if (line.find(sb) != std::string::npos) {
      EXPECT_NE(line.find("terminated"), std::string::npos) << line;
    }
  auto live = d_->corral({"sandbox", "ls"});
  EXPECT_EQ(live.out.find(sb), std::string::npos);
}

TEST_F(E2E, LsAndStatWorkInsideTheSandbox) {
  auto r = d_->corral({"run", "--", "sh", "-c", "ls -l / && stat / && ls /usr/bin | head -1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("usr"), std::string::npos);
  EXPECT_EQ(r.err.find("Invalid argument"), std::string::npos) << r.err;
}

TEST_F(E2E, ExitCodes) {
  const auto sb = d_->create();
  EXPECT_EQ(d_->corral({"exec", sb, "--", "true"}).exit_code, 0);
  EXPECT_EQ(d_->corral({"exec", sb, "--", "sh", "-c", "exit 3"}).exit_code, 3);
  EXPECT_EQ(d_->corral({"exec", sb, "--", "sh", "-c", "kill -TERM $$"}).exit_code, 128 + SIGTERM);
  EXPECT_EQ(d_->corral({"exec", sb, "--", "sh", "-c", "kill -KILL $$"}).exit_code, 128 + SIGKILL);
  auto nf = d_->corral({"exec", sb, "--", "no-such-program-xyz"});
  EXPECT_EQ(nf.exit_code, 127);
  EXPECT_NE(nf.err.find("not found"), std::string::npos) << nf.err;
  auto slow = d_->corral({"exec", "--timeout", "1", sb, "--", "sleep", "30"});
  EXPECT_EQ(slow.exit_code, 124) << slow.err;

  // 137: the sandbox is terminated under a running exec.
  background_process exec;
  ASSERT_TRUE(exec.start({bin("corral"), "--nats", d_->nats().url(), "--tenant", d_->tenant(),
                          "exec", sb, "--", "sh", "-c", "echo started; sleep 60"}));
  ASSERT_TRUE(exec.wait_for_output("started", 30s));
  EXPECT_EQ(d_->corral({"sandbox", "rm", sb}).exit_code, 0);
  EXPECT_EQ(exec.wait(30s), 137) << exec.output();

  // 124: the sandbox's lifetime ends under a running exec.
  const auto short_lived = d_->create({"--timeout", "2"});
  auto lt = d_->corral({"exec", short_lived, "--", "sleep", "60"});
  EXPECT_EQ(lt.exit_code, 124) << lt.err;
  auto info = d_->corral({"sandbox", "info", short_lived});
  EXPECT_NE(info.out.find("timed_out"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("returncode:  124"), std::string::npos) << info.out;
}

TEST_F(E2E, TenMebibytesArriveByteExactAndInOrder) {
  const auto sb = d_->create();
  const std::size_t n = 10 * 1024 * 1024;
  auto r = d_->corral({"exec", sb, "--", "python3", "-c",
                       "import sys\nb=bytes(range(256))*4096\nfor i in range(10):\n"
                       " sys.stdout.buffer.write(bytes([i])+b[1:])\nsys.stdout.flush()"},
                      {}, 300s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out.size(), n);
  for (std::size_t i = 0; i < 10; ++i) {
    const std::size_t base = i * (1 << 20);
    ASSERT_EQ(static_cast<uint8_t>(r.out[base]), i) << "block " << i << " out of order";
    for (std::size_t j = 1; j < (1 << 20); ++j)
      ASSERT_EQ(static_cast<uint8_t>(r.out[base + j]), j % 256) << "byte " << base + j;
  }
  d_->corral({"sandbox", "rm", sb});
}

TEST_F(E2E, StdinIsForwardedWhenNotATerminal) {
  const auto sb = d_->create();
  std::string input;
  for (int i = 0; i < 20000; ++i) input += "line " + std::to_string(i) + "\n";
  auto r = d_->corral({"exec", sb, "--", "sh", "-c", "cat | wc -l"}, input);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(trim(r.out), "20000");
  auto echo = d_->corral({"exec", sb, "--", "python3", "-c", "print(input()[::-1])"}, "hello\n");
  EXPECT_EQ(echo.out, "olleh\n");
  d_->corral({"sandbox", "rm", sb});
}

TEST_F(E2E, TwoSandboxesCannotSeeEachOthersFilesOrProcesses) {
  const auto a = d_->create();
  const auto b = d_->create();
  ASSERT_EQ(d_->corral({"exec", a, "--", "sh", "-c", "echo secret-a > /tmp/mine"}).exit_code, 0);
  background_process sleeper;
  ASSERT_TRUE(sleeper.start({bin("corral"), "--nats", d_->nats().url(), "--tenant", d_->tenant(),
                             "exec", a, "--", "sh", "-c", "echo up; exec sleep 1234"}));
  ASSERT_TRUE(sleeper.wait_for_output("up", 30s));
  auto files = d_->corral({"exec", b, "--", "cat", "/tmp/mine"});
  EXPECT_NE(files.exit_code, 0);
  EXPECT_EQ(files.out.find("secret-a"), std::string::npos);
  auto procs = d_->corral({"exec", b, "--", "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"});
  EXPECT_EQ(procs.out.find("1234"), std::string::npos) << procs.out;
  auto own = d_->corral({"exec", a, "--", "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"});
  EXPECT_NE(own.out.find("sleep 1234"), std::string::npos) << own.out;
  d_->corral({"sandbox", "rm", a});
  EXPECT_EQ(sleeper.wait(30s), 137);
  d_->corral({"sandbox", "rm", b});
}

TEST_F(E2E, BadInputGetsClearErrorsAndNeverCrashesTheExecutor) {
  const auto sb = d_->create();
  // Unknown sandbox id: NOT_FOUND.
  auto unknown = d_->corral({"sandbox", "info", wire::new_id("sb-")});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("not_found"), std::string::npos) << unknown.err;
  // Another tenant's valid id answers exactly like an unknown one (docs/promises.md P8).
  auto other = test::run({bin("corral"), "--nats", d_->nats().url(), "--tenant", "intruder",
                          "sandbox", "info", sb});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("not_found"), std::string::npos) << other.err;

  std::string error;
  bus::options o;
  o.urls = {d_->nats().url()};
  auto conn = bus::connection::connect(o, &error);
  ASSERT_NE(conn, nullptr) << error;
  auto error_code = [&](const std::string& subject, const std::vector<uint8_t>& payload) {
    auto r = conn->request(subject, payload.data(), payload.size(), 10000);
    if (!r) return std::string("bus:") + wire::to_string(r.error().code);
    const auto* e = wire::verify<wire::ErrorReply>(r.value().data.data(), r.value().data.size());
    return e ? std::string(wire::to_string(e->code())) : std::string("ok");
  };
  // Garbage and truncated bytes on every subject the executor listens to.
  std::vector<std::vector<uint8_t>> garbage = {
      {}, {0}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, std::vector<uint8_t>(4096, 0xff),
      {'C', 'R', 'E', 'X', 0, 0, 0, 0, 0, 0, 0, 0}};
  const auto t = d_->tenant();
  for (const auto& g : garbage) {
    if (!g.empty()) {
      EXPECT_EQ(error_code(wire::subjects::create(t, "default"), g), "malformed");
      EXPECT_EQ(error_code(wire::subjects::list(t), g), "malformed");
    }
    for (const char* op : {"exec", "stdin", "signal", "replay"})
      EXPECT_EQ(error_code(wire::subjects::sandbox_op(t, sb, op), g), "malformed") << op;
  }
  EXPECT_EQ(error_code(wire::subjects::sandbox_op(t, sb, "bogus"), {}), "invalid_argument");
  auto exec_req = [](std::vector<std::string> argv, std::vector<std::pair<std::string, std::string>> env = {}) {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<flatbuffers::String>> a;
    for (const auto& s : argv) a.push_back(fbb.CreateString(s));
    std::vector<flatbuffers::Offset<wire::KeyValue>> e;
    for (const auto& [k, v] : env) e.push_back(wire::CreateKeyValue(fbb, fbb.CreateString(k), fbb.CreateString(v)));
    auto av = fbb.CreateVector(a);
    auto ev = fbb.CreateVector(e);
    fbb.Finish(wire::CreateExecRequest(fbb, 0, av, ev), wire::ExecRequestIdentifier());
    return wire::release(fbb);
  };
  const auto exec = wire::subjects::sandbox_op(t, sb, "exec");
  EXPECT_EQ(error_code(exec, exec_req({})), "invalid_argument");
  EXPECT_EQ(error_code(exec, exec_req({"echo", std::string(100 * 1024, 'a')})), "too_large");
  EXPECT_EQ(error_code(exec, exec_req({"env"}, {{"BIG", std::string(100 * 1024, 'b')}})), "too_large");
  EXPECT_EQ(error_code(exec, exec_req({"env"}, {{"A=B", "c"}})), "invalid_argument");
  // Over NATS's max payload: refused by the client or the server, never reaching the executor.
  EXPECT_NE(error_code(exec, std::vector<uint8_t>(2 * 1024 * 1024, 1)), "ok");
  // Exec on a terminated sandbox.
  d_->corral({"sandbox", "rm", sb});
  EXPECT_EQ(error_code(exec, exec_req({"true"})), "failed_precondition");
  // The executor is alive and well.
  auto r = d_->corral({"run", "--", "echo", "still here"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "still here\n");
  EXPECT_TRUE(d_->executor().running());
}

TEST_F(E2E, EntrypointEndsTheSandboxWithItsExitCodeAndKeepsItsOutput) {
  const auto sb = d_->create({"--env", "GREETING=hi", "--", "sh", "-c", "echo $GREETING; exit 5"});
  auto w = d_->corral({"sandbox", "wait", sb, "--timeout", "30"});
  EXPECT_EQ(w.exit_code, 0) << w.err;
  EXPECT_NE(w.out.find("exited"), std::string::npos) << w.out;
  EXPECT_NE(w.out.find("returncode:  5"), std::string::npos) << w.out;
  // Its output stays readable after the end (replayed from the store), with its exit code.
  auto logs = d_->corral({"sandbox", "logs", sb});
  EXPECT_EQ(logs.out, "hi\n");
  EXPECT_EQ(logs.exit_code, 5);
  // Execs see the sandbox's environment too.
  const auto sb2 = d_->create({"--env", "GREETING=hello"});
  auto e = d_->corral({"exec", sb2, "--", "sh", "-c", "echo $GREETING"});
  EXPECT_EQ(e.out, "hello\n");
  d_->corral({"sandbox", "rm", sb2});
}

TEST_F(E2E, ReadinessProbeOnATcpPortAndTags) {
  const auto sb = d_->create({"--probe-port", "8123", "--tag", "run=1", "--", "python3", "-m",
                              "http.server", "8123", "--bind", "127.0.0.1"});
  auto w = d_->corral({"sandbox", "wait", sb, "--ready", "--timeout", "60"});
  EXPECT_EQ(w.exit_code, 0) << w.err;
  EXPECT_NE(w.out.find("ready:       yes"), std::string::npos) << w.out;
  EXPECT_NE(w.out.find("running"), std::string::npos) << w.out;
  auto t = d_->corral({"sandbox", "tags", sb, "run=2", "owner=me"});
  EXPECT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(t.out, "owner=me\nrun=2\n");
  auto ls = d_->corral({"sandbox", "ls", "--tag", "run=2"});
  EXPECT_NE(ls.out.find(sb), std::string::npos) << ls.out;
  auto none = d_->corral({"sandbox", "ls", "--tag", "run=1"});
  EXPECT_EQ(none.out.find(sb), std::string::npos) << none.out;
  d_->corral({"sandbox", "rm", sb});
}

TEST_F(E2E, IdleTimeoutEndsAnIdleSandbox) {
  const auto sb = d_->create({"--idle-timeout", "1"});
  EXPECT_EQ(d_->corral({"exec", sb, "--", "sleep", "1.5"}).exit_code, 0);  // busy is not idle
  auto w = d_->corral({"sandbox", "wait", sb, "--timeout", "30"});
  EXPECT_NE(w.out.find("timed_out"), std::string::npos) << w.out;
  EXPECT_NE(w.out.find("idle"), std::string::npos) << w.out;
}

TEST_F(E2E, OutputPastTheCapEndsAsOutputLimitAtExactlyTheCap) {
  const auto sb = d_->create();
  auto r = d_->corral({"exec", sb, "--", "sh", "-c", "yes corral | head -c 50000000"}, {}, 300s);
  EXPECT_EQ(r.out.size(), 16u * 1024 * 1024);
  EXPECT_NE(r.err.find("output_limit"), std::string::npos) << r.err;
  EXPECT_NE(r.exit_code, 0);
  d_->corral({"sandbox", "rm", sb});
}

TEST_F(E2E, PtyMergesStderrAndHasATerminalSize) {
  const auto sb = d_->create();
  auto r = d_->corral({"exec", "-t", sb, "--", "sh", "-c",
                       "tty; echo err >&2; stty size; python3 -c 'import sys; print(sys.stdin.isatty())'; exit 4"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.out.find("/dev/pts/"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("err"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("24 80"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("True"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");
  // Without -t there is no terminal.
  auto plain = d_->corral({"exec", sb, "--", "sh", "-c", "tty || true"});
  EXPECT_NE(plain.out.find("not a tty"), std::string::npos) << plain.out;
  d_->corral({"sandbox", "rm", sb});
}

TEST_F(E2E, CreateOptionsAreValidatedNamingTheField) {
  auto bad = [&](std::vector<std::string> args, const std::string& field) {
    std::vector<std::string> a = {"sandbox", "create"};
    a.insert(a.end(), args.begin(), args.end());
    auto r = d_->corral(a);
    EXPECT_EQ(r.exit_code, 1) << field;
    EXPECT_NE(r.err.find(field), std::string::npos) << r.err;
  };
  bad({"--name", "no spaces allowed"}, "name");
  bad({"--timeout", "100000"}, "timeout_ms");
  bad({"--workdir", "relative/dir"}, "workdir");
  bad({"--cpu", "100000"}, "cpu_millis");
  bad({"--cpu", "2"}, "cpu_millis");  // millicores: 2 would be 0.2% of a core
  bad({"--memory", "10000000"}, "memory_mib");
  bad({"--cpu", "500", "--cpu-request", "1000"}, "cpu_request_millis");
  bad({"--idle-timeout", "100000"}, "idle_timeout_ms");
}

// A separate deployment: the executor is killed with -9 in the middle of an exec.
TEST(E2ECrash, ExecutorKill9MidExecThenRestartEndsEverythingInATerminalStatus) {
  deployment d(e2e_options());
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  const auto keep = d.create({"--name", "keep"});
  const auto victim = d.create();
  background_process exec;
  ASSERT_TRUE(exec.start({bin("corral"), "--nats", d.nats().url(), "--tenant", d.tenant(), "exec",
                          keep, "--", "sh", "-c", "echo begun; sleep 300"}));
  ASSERT_TRUE(exec.wait_for_output("begun", 30s));
  d.executor().kill9();
  // While the executor is down, one sandbox dies on its own (its runsc container is killed).
  auto killed = test::run({bin("corral-runsc"), "--root", d.dir() + "/executor/runtime/runsc",
                           "kill", victim, "KILL"});
  EXPECT_EQ(killed.exit_code, 0) << killed.err;
  ASSERT_TRUE(d.start_executor(&why)) << why;
  // The exec in flight ends as executor_lost (never "running" forever); the CLI notices by
  // re-attaching with the same exec id.
  EXPECT_EQ(exec.wait(60s), 255) << exec.output() << "\nexecutor:\n" << d.executor().output();
  EXPECT_NE(exec.output().find("executor_lost"), std::string::npos) << exec.output();
  // The live sandbox was re-adopted and works; the dead one ended as failed.
  auto again = d.corral({"exec", keep, "--", "echo", "adopted"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "adopted\n");
  auto info = d.corral({"sandbox", "info", victim});
  EXPECT_NE(info.out.find("failed"), std::string::npos) << info.out << info.err;
  auto ls = d.corral({"sandbox", "ls", "--all"});
  EXPECT_EQ(ls.out.find("starting"), std::string::npos) << ls.out;
  EXPECT_EQ(ls.out.find("pending"), std::string::npos) << ls.out;
  EXPECT_EQ(d.corral({"sandbox", "rm", keep}).exit_code, 0);
  // Nothing of either sandbox is left on the host: no sandbox dir (teardown runs off the
  // request path: wait for the directories' removal, an inotify event), no runsc container.
  const auto sandboxes = d.dir() + "/executor/runtime/sandboxes";
  EXPECT_TRUE(test::wait_path_gone(sandboxes + "/" + keep, 30s));
  EXPECT_TRUE(test::wait_path_gone(sandboxes + "/" + victim, 30s));
  auto left = test::run({bin("corral-runsc"), "--root", d.dir() + "/executor/runtime/runsc", "list", "-quiet"});
  EXPECT_EQ(left.exit_code, 0) << "runsc list failed, so it proves nothing: " << left.err;
  EXPECT_EQ(left.out.find(keep), std::string::npos) << left.out;
  EXPECT_EQ(left.out.find(victim), std::string::npos) << left.out;
  // SIGTERM drains and exits cleanly within its bound (docs/promises.md P11).
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(d.executor().stop(20s), 0) << d.executor().output();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
}

}  // namespace
}  // namespace corral
