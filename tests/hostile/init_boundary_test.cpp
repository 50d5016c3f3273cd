// Root code inside a sandbox against corral-init (docs/protocol.md "corral-init's boundary"):
// it cannot open init's channel to the executor through /proc (at pid 1 or anywhere else),
// so it can neither forge an exec's output or exit status nor inject commands; it cannot kill
// init, whatever it sends to pid 1 (the sandbox keeps serving execs); it cannot ptrace or
// read init's memory; the files API acts with a user process's view, never init's; and
// another process's fds and memory need ptrace access (runsc patch 0010). Each attack runs as
// root in a real runsc sandbox, through the real executor and CLI.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "bus/connection.hpp"
#include "corral/wire/error_reply_generated.h"
#include "corral/wire/fs_reply_generated.h"
#include "corral/wire/fs_request_generated.h"
#include "corral/wire/init_command_generated.h"
#include "corral/wire/init_event_generated.h"
#include "schemas/codec.hpp"
#include "schemas/frame.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"

namespace corral {
namespace {

using namespace std::chrono_literals;
using test::background_process;
using test::bin;
using test::deployment;
using test::run_result;
using test::trim;

deployment::options boundary_options() {
  deployment::options o;
  o.node = "boundary-node";
  o.tenant = "boundary";
  o.executor_args = {"--max-sandboxes", "6", "--warm-pool", "0"};
  return o;
}

class InitBoundary : public test::deployment_test<boundary_options> {
 protected:
  run_result exec(const std::string& sb, std::vector<std::string> argv,
                  const std::string& input = {}) {
    argv.insert(argv.begin(), {"exec", sb, "--"});
    return d_->corral(argv, input);
  }
  run_result python(const std::string& sb, const std::string& script,
                    const std::string& input = {}) {
    return exec(sb, {"python3", "-c", script}, input);
  }
  // Waits (one exec per look, up to the deadline) until `ps` inside shows a process whose
  // command line contains needle.
  bool wait_process_shown(const std::string& sb, const std::string& needle) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto ps = exec(sb, {"ps", "-eo", "args"});
      if (ps.out.find(needle) != std::string::npos) return true;
    }
    return false;
  }
};

// Frames an attacker would like the executor or init to act on: for every exec handle a
// forged Output and Exited(42) (events), and two commands that would leave a file behind if
// init ran them (an FsCall write and a Spawn).
std::string forged_frames() {
  std::vector<uint8_t> out;
  flatbuffers::FlatBufferBuilder fbb;
  auto add = [&] {
    wire::append_frame(out, fbb.GetBufferPointer(), fbb.GetSize());
    fbb.Clear();
  };
  for (uint64_t handle = 0; handle <= 256; ++handle) {
    const std::string text = "FORGED-OUTPUT\n";
    auto data = fbb.CreateVector(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    auto output = wire::CreateOutput(fbb, handle, wire::Stream::stdout, data);
    wire::FinishInitEventBuffer(fbb, wire::CreateInitEvent(fbb, wire::Event::Output, output.Union()));
    add();
    auto exited = wire::CreateExited(fbb, handle, 42, 0);
    wire::FinishInitEventBuffer(fbb, wire::CreateInitEvent(fbb, wire::Event::Exited, exited.Union()));
    add();
  }
  {
    auto path = fbb.CreateString("/tmp/injected-by-fscall");
    const std::string text = "x";
    auto data = fbb.CreateVector(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    wire::FsCallBuilder b(fbb);
    b.add_call_id(900001);
    b.add_op(wire::FsOp::write);
    b.add_path(path);
    b.add_data(data);
    auto call = b.Finish();
    wire::FinishInitCommandBuffer(fbb,
                                  wire::CreateInitCommand(fbb, wire::Command::FsCall, call.Union()));
    add();
  }
  {
    std::vector<flatbuffers::Offset<flatbuffers::String>> argv = {
        fbb.CreateString("sh"), fbb.CreateString("-c"),
        fbb.CreateString("echo injected > /tmp/injected-by-spawn")};
    auto spawn = wire::CreateSpawn(fbb, 900002, fbb.CreateVector(argv));
    wire::FinishInitCommandBuffer(fbb,
                                  wire::CreateInitCommand(fbb, wire::Command::Spawn, spawn.Union()));
    add();
  }
  return std::string(out.begin(), out.end());
}

// Reads frames on stdin and writes them, one write each, into every fd of every other process
// that opens for writing through /proc (and /proc/1/fd/0 and 1 by name). Prints one line per
// path: "PATH OPENED" or "PATH denied ERRNO".
const char* channel_attacker = R"(
import errno, os, sys
data = sys.stdin.buffer.read()
frames, i = [], 0
while i < len(data):
    n = int.from_bytes(data[i + 4:i + 8], 'little')
    frames.append(data[i:i + 8 + n])
    i += 8 + n
me = str(os.getpid())
paths = {'/proc/1/fd/0', '/proc/1/fd/1', '/proc/1/fd/2'}
for pid in os.listdir('/proc'):
    if not pid.isdigit() or pid == me:
        continue
    dirs = ['/proc/%s/fd' % pid]
    try:
        dirs += ['/proc/%s/task/%s/fd' % (pid, t) for t in os.listdir('/proc/%s/task' % pid)]
    except OSError:
        pass
    for d in dirs:
        try:
            paths.update(d + '/' + fd for fd in os.listdir(d))
        except OSError:
            pass
for path in sorted(paths):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        print(path, 'denied', errno.errorcode.get(e.errno, e.errno))
        continue
    print(path, 'OPENED')
    for f in frames:
        try:
            os.write(fd, f)
        except OSError:
            pass
    os.close(fd)
)";

TEST_F(InitBoundary, RootCannotReachInitsChannelToForgeOutputExitsOrCommands) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  // The victim: no output of its own, exit 7 once told to.
  background_process victim;
  ASSERT_TRUE(victim.start(d_->cli(
      {"exec", sb, "--", "sh", "-c",
       "exec >/dev/null 2>&1 </dev/null; i=0; while [ ! -e /tmp/go ] && [ $i -lt 600 ]; do "
       "sleep 0.1; i=$((i+1)); done; exit 7"})));
  ASSERT_TRUE(wait_process_shown(sb, "while [ ! -e /tmp/go ]")) << victim.output();

  auto attack = python(sb, channel_attacker, forged_frames());
  EXPECT_EQ(attack.exit_code, 0) << attack.err;
  // The channel is out of reach: pid 1's fds do not open, by any path.
  for (const char* path : {"/proc/1/fd/0", "/proc/1/fd/1", "/proc/1/fd/2"}) {
    EXPECT_NE(attack.out.find(std::string(path) + " denied"), std::string::npos)
        << path << " opened:\n" << attack.out;
  }

  EXPECT_EQ(exec(sb, {"touch", "/tmp/go"}).exit_code, 0);
  EXPECT_EQ(victim.wait(60s), 7) << "the victim's exit status was forged:\n"
                                 << victim.output() << "\nattacker:\n" << attack.out;
  EXPECT_EQ(victim.output().find("FORGED"), std::string::npos) << victim.output();
  // No command was injected.
  auto injected = exec(sb, {"sh", "-c", "ls /tmp/injected-by-fscall /tmp/injected-by-spawn 2>&1"});
  EXPECT_NE(injected.exit_code, 0) << injected.out;
  EXPECT_NE(injected.out.find("cannot access '/tmp/injected-by-fscall'"), std::string::npos)
      << injected.out;
  EXPECT_NE(injected.out.find("cannot access '/tmp/injected-by-spawn'"), std::string::npos)
      << injected.out;
  // And the sandbox still answers truly.
  auto after = exec(sb, {"sh", "-c", "echo real; exit 3"});
  EXPECT_EQ(after.exit_code, 3);
  EXPECT_EQ(after.out, "real\n");
  d_->corral({"sandbox", "rm", sb});
}

TEST_F(InitBoundary, NoSignalToPid1KillsInitOrStopsTheSandbox) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  // A background process of another exec, to show what a SIGKILL of pid 1 takes with it.
  for (const char* sig : {"KILL", "QUIT", "USR1", "USR2", "ALRM", "TERM", "HUP", "INT", "SEGV",
                          "ABRT", "BUS", "TRAP", "STOP", "CONT", "PIPE", "XCPU"}) {
    SCOPED_TRACE(sig);
    auto k = exec(sb, {"sh", "-c", std::string("kill -") + sig + " 1; echo sent"});
    // SIGKILL of pid 1 ends every user process (the shell too): it exits 137 at most.
    if (std::string(sig) != "KILL") {
      EXPECT_EQ(k.exit_code, 0) << k.err;
      EXPECT_EQ(k.out, "sent\n");
    }
    auto next = exec(sb, {"echo", "alive"});
    EXPECT_EQ(next.exit_code, 0) << next.err;
    EXPECT_EQ(next.out, "alive\n");
    auto info = d_->corral({"sandbox", "info", sb});
    EXPECT_NE(info.out.find("running"), std::string::npos) << info.out << info.err;
    if (HasFailure()) break;
  }
  // Every process at once, as root: the sandbox goes on.
  exec(sb, {"sh", "-c", "kill -9 -1"});
  auto last = exec(sb, {"sh", "-c", "echo still; exit 5"});
  EXPECT_EQ(last.exit_code, 5) << last.err;
  EXPECT_EQ(last.out, "still\n");
  d_->corral({"sandbox", "rm", sb});
}

// ptrace, /proc/1/mem and process_vm_readv (absent from runsc 20221219: ENOSYS) on pid 1, at
// an address of its mappings, or of corral-init's static image when /proc/1/maps does not
// say. One line per attempt.
const char* memory_attacker = R"(
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def err():
    e = ctypes.get_errno()
    return errno.errorcode.get(e, str(e))
addr = 0x400000
try:
    first = open('/proc/1/maps').readline()
    if first:
        addr = int(first.split('-')[0], 16)
except OSError:
    pass
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
if libc.ptrace(PTRACE_ATTACH, 1, None, None) == 0:
    print('ptrace ATTACHED')
    libc.ptrace(PTRACE_DETACH, 1, None, None)
else:
    print('ptrace denied', err())
try:
    with open('/proc/1/mem', 'rb', buffering=0) as f:
        f.seek(addr)
        print('mem READ', len(f.read(16)))
except OSError as e:
    print('mem denied', errno.errorcode.get(e.errno, e.errno))
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
buf = ctypes.create_string_buffer(16)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 16)
remote = iovec(addr, 16)
libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong,
                                  ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
n = libc.process_vm_readv(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
print('process_vm_readv READ', n, buf.raw[:4]) if n > 0 else print('process_vm_readv denied', err())
)";

TEST_F(InitBoundary, RootCannotPtraceOrReadInitsMemory) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  auto r = python(sb, memory_attacker);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ptrace denied"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mem denied"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("process_vm_readv denied"), std::string::npos) << r.out;
  // pid 1 is not init at all: init is in no pid namespace the sandbox's processes see.
  auto cmdline = exec(sb, {"cat", "/proc/1/cmdline"});
  EXPECT_EQ(cmdline.out.find("/.corral/init"), std::string::npos) << cmdline.out;
  d_->corral({"sandbox", "rm", sb});
}

// Another process's fds need ptrace read access, as on Linux (runsc patch 0010): a
// non-dumpable process's are closed to root without CAP_SYS_PTRACE; a dumpable one's stay open
// to the same uid. (The child corral-init starts shares init's non-dumpable memory and holds
// copies of init's fds until it execs, visible in the user namespace meanwhile.) Its memory
// stays closed too.
TEST_F(InitBoundary, ANonDumpableProcessesFdsAndMemoryAreClosedToOtherRootProcesses) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  auto holder = [&](bool dumpable, background_process& p) {
    const std::string script = std::string(R"(
import ctypes, os, sys, time
if not )") + (dumpable ? "True" : "False") + R"(:
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
r, w = os.pipe()
buf = ctypes.create_string_buffer(b'HELD-SECRET', 16)
print('holder', os.getpid(), r, ctypes.addressof(buf), flush=True)
for _ in range(600):
    if os.path.exists('/tmp/release'):
        break
    time.sleep(0.1)
)";
    return p.start(d_->cli({"exec", sb, "--", "python3", "-c", script}));
  };
  background_process closed, open;
  ASSERT_TRUE(holder(false, closed));
  ASSERT_TRUE(holder(true, open));
  ASSERT_TRUE(closed.wait_for_output("holder ", 60s)) << closed.output();
  ASSERT_TRUE(open.wait_for_output("holder ", 60s)) << open.output();
  auto target_of = [](const std::string& output) {
    std::istringstream in(output.substr(output.find("holder ") + 7));
    long pid = 0, fd = 0, addr = 0;
    in >> pid >> fd >> addr;
    return std::to_string(pid) + " " + std::to_string(fd) + " " + std::to_string(addr);
  };
  const char* prober = R"(
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pid, fd, addr = (int(x) for x in sys.argv[1:4])
def name(e):
    return errno.errorcode.get(e, str(e))
path = '/proc/%d/fd/%d' % (pid, fd)
try:
    os.readlink(path); print('readlink ok')
except OSError as e:
    print('readlink', name(e.errno))
try:
    os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK)); print('open ok')
except OSError as e:
    print('open', name(e.errno))
try:
    open('/proc/%d/fdinfo/%d' % (pid, fd)).read(); print('fdinfo ok')
except OSError as e:
    print('fdinfo', name(e.errno))
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
buf = ctypes.create_string_buffer(16)
local, remote = iovec(ctypes.cast(buf, ctypes.c_void_p), 16), iovec(addr, 16)
libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong,
                                  ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
n = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
print('process_vm_readv ok' if n > 0 else 'process_vm_readv ' + name(ctypes.get_errno()))
)";
  auto probe = [&](const std::string& target) {
    std::istringstream in(target);
    std::string pid, fd, addr;
    in >> pid >> fd >> addr;
    return exec(sb, {"python3", "-c", prober, pid, fd, addr});
  };
  auto denied = probe(target_of(closed.output()));
  EXPECT_EQ(denied.exit_code, 0) << denied.err;
  EXPECT_NE(denied.out.find("readlink EACCES"), std::string::npos) << denied.out;
  EXPECT_NE(denied.out.find("open EACCES"), std::string::npos) << denied.out;
  EXPECT_NE(denied.out.find("fdinfo EACCES"), std::string::npos) << denied.out;
  // (runsc 20221219 has no process_vm_readv at all: ENOSYS, for every target.)
  EXPECT_EQ(denied.out.find("process_vm_readv ok"), std::string::npos) << denied.out;
  // Linux's rules, not a blanket ban: a dumpable process of the same uid and capabilities
  // keeps its fds visible (ls -l /proc/PID/fd works across execs).
  auto allowed = probe(target_of(open.output()));
  EXPECT_NE(allowed.out.find("readlink ok"), std::string::npos) << allowed.out;
  EXPECT_NE(allowed.out.find("open ok"), std::string::npos) << allowed.out;
  EXPECT_NE(allowed.out.find("fdinfo ok"), std::string::npos) << allowed.out;
  EXPECT_EQ(exec(sb, {"touch", "/tmp/release"}).exit_code, 0);
  EXPECT_EQ(closed.wait(60s), 0) << closed.output();
  EXPECT_EQ(open.wait(60s), 0) << open.output();
  d_->corral({"sandbox", "rm", sb});
}

// The files API (fs.*) is carried out by init, but with a user process's view: its /proc
// (where no pid is init's, and /proc/self names no process), its capabilities. It cannot read
// init's memory, through /proc/self or any pid.
TEST_F(InitBoundary, FilesApiActsWithAUserProcessesViewNeverInits) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  std::string error;
  bus::options o;
  o.urls = {d_->nats().url()};
  auto conn = bus::connection::connect(o, &error);
  ASSERT_NE(conn, nullptr) << error;
  // "ok:<bytes>" or the error code.
  auto fs_read = [&](const std::string& path, uint64_t offset, uint64_t length) {
    flatbuffers::FlatBufferBuilder fbb(256);
    auto p = fbb.CreateString(path);
    wire::FsRequestBuilder b(fbb);
    b.add_path(p);
    b.add_offset(offset);
    b.add_length(length);
    fbb.Finish(b.Finish(), wire::FsRequestIdentifier());
    auto payload = wire::release(fbb);
    auto r = conn->request(wire::subjects::sandbox_op(d_->tenant(), sb, "fs.read"),
                           payload.data(), payload.size(), 20000);
    if (!r) return std::string("bus:") + wire::to_string(r.error().code);
    if (const auto* e = wire::verify<wire::ErrorReply>(r.value().data.data(), r.value().data.size()))
      return std::string(wire::to_string(e->code()));
    const auto* reply = wire::verify<wire::FsReply>(r.value().data.data(), r.value().data.size());
    if (reply == nullptr) return std::string("malformed");
    std::string bytes;
    if (reply->data() != nullptr) bytes.assign(reply->data()->begin(), reply->data()->end());
    return "ok:" + bytes;
  };
  // Where init's memory would be: its mappings if /proc/self/maps says, else its static image.
  uint64_t address = 0x400000;
  const auto maps = fs_read("/proc/self/maps", 0, 4096);
  if (maps.rfind("ok:", 0) == 0) address = std::stoull(maps.substr(3), nullptr, 16);
  for (const char* path : {"/proc/self/mem", "/proc/1/mem"}) {
    const auto got = fs_read(path, address, 64);
    EXPECT_NE(got.rfind("ok:", 0), 0u) << path << " read through the files API: "
                                       << got.substr(0, 16);
  }
  EXPECT_NE(fs_read("/proc/self/status", 0, 4096).rfind("ok:", 0), 0u)
      << "/proc/self names a process for the files API";
  // What a user process sees of pid 1, the files API sees too.
  auto user_view = exec(sb, {"cat", "/proc/1/cmdline"});
  EXPECT_EQ(user_view.exit_code, 0) << user_view.err;
  EXPECT_EQ(fs_read("/proc/1/cmdline", 0, 4096), "ok:" + user_view.out);
  auto user_mem = python(sb, "f = open('/proc/1/mem', 'rb'); f.seek(" + std::to_string(address) +
                                 "); f.read(1)");
  EXPECT_NE(user_mem.exit_code, 0);
  d_->corral({"sandbox", "rm", sb});
}

// Every process the sandbox runs gets the user capability set (Docker's default without
// NET_RAW): corral-init's CAP_SYS_ADMIN is in no process's bounding, permitted or effective set.
TEST_F(InitBoundary, ProcessesGetTheUserCapabilitySetOnly) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  auto caps = exec(sb, {"sh", "-c", "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status; "
                                    "grep -E '^Cap(Prm|Eff|Bnd)' /proc/1/status"});
  EXPECT_EQ(caps.exit_code, 0) << caps.err;
  std::istringstream in(caps.out);
  std::string line;
  int lines = 0;
  for (; std::getline(in, line); ++lines) {
    const auto value = std::stoull(line.substr(line.find(':') + 1), nullptr, 16);
    EXPECT_EQ(value & (1ull << 21), 0u) << "CAP_SYS_ADMIN in " << line;
    EXPECT_EQ(value & (1ull << 19), 0u) << "CAP_SYS_PTRACE in " << line;
  }
  EXPECT_EQ(lines, 6) << caps.out;
  d_->corral({"sandbox", "rm", sb});
}

// A child of init that asks to be traced (PTRACE_TRACEME) and then stops for a signal is not
// an exit: init never reports a status the process did not end with.
TEST_F(InitBoundary, ATracemeStopIsNotReportedAsAnExit) {
  const auto sb = d_->create({"--timeout", "600"});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  auto r = python(sb, R"(
import ctypes, os, signal
signal.signal(signal.SIGUSR1, lambda *a: print('handled', flush=True))
ctypes.CDLL(None).ptrace(0, 0, 0, 0)  # PTRACE_TRACEME: init becomes the tracer
os.kill(os.getpid(), signal.SIGUSR1)   # a signal-delivery-stop for the tracer
print('resumed', flush=True)
os._exit(5)
)");
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  EXPECT_EQ(r.out, "handled\nresumed\n");
  d_->corral({"sandbox", "rm", sb});
}

}  // namespace
}  // namespace corral
