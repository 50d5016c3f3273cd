// A program against its own verdict (docs/security.md, "A program vs. its own verdict"):
// whatever it prints, writes, signals or exits with, `completed` (and so `passed` in
// `corral sweep`) comes from the runner's own observation. Each program below tries to look
// finished without running its tests to their end; none may be completed, in fresh and strict,
// through a job result and through `corral sweep`. Honest programs still are.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/hostile/jobs_support.hpp"
#include "tests/support/deployment.hpp"

namespace corral {
namespace {

namespace fs = std::filesystem;
using hostile::job_spec;
using hostile::result_view;
using nlohmann::json;

test::deployment::options verdict_options() {
  test::deployment::options o;
  o.tenant = "hostile-verdict";
  o.node = "verdict-node";
  o.executor_args = {"--job-slots", "2", "--max-sandboxes", "8"};
  return o;
}

struct forgery {
  const char* id;
  const char* language;
  const char* source;  // each ends with a test that fails: only a forgery could complete it
};

const forgery forgeries[] = {
    // Writes what the old runner took for completion to every fd it may have, prints a pass
    // marker, and leaves before its tests.
    {"py-fd-spray", "python", R"PY(
import os
for fd in range(3, 256):
    for data in (b'C', b'C' * 16, bytes(16)):
        try:
            os.write(fd, data)
        except OSError:
            pass
print('PASSED: all tests passed')
os._exit(0)
assert False, 'the tests'
)PY"},
    // The same from a forked child, while the job process exits 0 at once.
    {"py-fork-spray", "python", R"PY(
import os, time
if os.fork() == 0:
    for fd in range(3, 256):
        try:
            os.write(fd, b'C')
        except OSError:
            pass
    os._exit(0)
os.wait()
os._exit(0)
assert False, 'the tests'
)PY"},
    // Native calls: write to the pipes and exit, below Python.
    {"py-ctypes", "python", R"PY(
import ctypes
libc = ctypes.CDLL(None)
for fd in range(3, 256):
    libc.write(fd, b'C', 1)
libc._exit(0)
assert False, 'the tests'
)PY"},
    // A trace function that swaps the tested function for a right one inside the test's frame
    // (trace functions may rewrite a frame's locals).
    {"py-settrace-locals", "python", R"PY(
import sys
def tracer(frame, event, arg):
    if event == 'line' and frame.f_code.co_name == 'check':
        frame.f_locals['c'] = lambda: 2
    return tracer
sys.settrace(tracer)
def check(c):
    assert c() == 2, 'the tests'
check(lambda: 1)
)PY"},
    // Signals: its parent, every process it may signal, then an early exit 0.
    {"py-signals", "python", R"PY(
import os, signal
for target in (os.getppid(), -1):
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1):
        try:
            os.kill(target, sig)
        except (OSError, ValueError):
            pass
os._exit(0)
)PY"},
    // JavaScript: the old completion byte, then an exit that skips process.exit's wrapper.
    {"js-fd-write", "javascript", R"JS(
const fs = require('fs');
for (let fd = 3; fd < 64; fd++) { try { fs.writeSync(fd, 'C'); } catch (e) {} }
process.reallyExit(0);
throw new Error('the tests');
)JS"},
    // JavaScript: a top-level return ends the module early without an exception.
    {"js-return", "javascript", R"JS(
console.log('all tests passed');
return;
throw new Error('the tests');
)JS"},
    // JavaScript: the exit event emitted by the program itself, then an exit under it.
    {"js-emit-exit", "javascript", R"JS(
process.emit('exit', 0);
process.reallyExit(0);
throw new Error('the tests');
)JS"},
    // JavaScript: the inspector on itself (it could read the harness's state).
    {"js-inspector", "javascript", R"JS(
const inspector = require('inspector');
const s = new inspector.Session();
s.connect();
process.reallyExit(0);
)JS"},
};

// The job process's memory (where the runner keeps what only it may say) and native code: a
// program that could read the one or run the other could say anything.
const char* const reach_memory = R"PY(
import os, subprocess, sys
got = []
try:
    with open('/proc/self/uid_map', 'w') as f:
        f.write('0 %d 1' % os.getuid())
    got.append('wrote uid_map')
except OSError:
    pass
try:
    with open('/proc/self/mem', 'rb') as f:
        got.append('read /proc/self/mem')
except OSError:
    pass
me = os.readlink('/proc/self')
child = r'''
import ctypes, sys
pid = int(sys.argv[1])
try:
    open('/proc/%d/mem' % pid, 'rb').close()
    print('child read the job memory')
except OSError:
    pass
libc = ctypes.CDLL(None, use_errno=True)
if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH
    print('child traced the job')
print('child done')
'''
out = subprocess.run([sys.executable, '-c', child, me], capture_output=True, text=True).stdout
got += out.splitlines()
print(got)
)PY";

class HostileVerdict : public test::deployment_test<verdict_options> {
 protected:
  void SetUp() override {
    test::deployment_test<verdict_options>::SetUp();
    conn_ = hostile::connect(d_->nats().url());
    ASSERT_TRUE(conn_);
  }
  result_view run(const job_spec& j) { return hostile::run_direct(*conn_, d_->tenant(), j); }

  void expect_no_forgery(wire::Isolation isolation) {
    const std::string suffix = isolation == wire::Isolation::strict ? "-strict" : "-fresh";
    for (const auto& f : forgeries) {
      auto r = run({.id = f.id + suffix, .language = f.language, .source = f.source,
                    .timeout_ms = 20'000, .isolation = isolation});
      EXPECT_FALSE(r.completed) << f.id << suffix << " forged its completion: exit " << r.exit_code
                                << "\nstdout: " << r.out << "\nstderr: " << r.err;
    }
    // Honest programs are completed, and the exit code stays the program's.
    auto py = run({.id = "py-honest" + suffix, .source = "import sys\nprint('ok')\nsys.stdout.flush()\n",
                   .isolation = isolation});
    EXPECT_TRUE(py.completed) << py.err << py.message;
    EXPECT_EQ(py.exit_code, 0);
    auto js = run({.id = "js-honest" + suffix, .language = "javascript",
                   .source = "const assert = require('assert'); assert.equal(1 + 1, 2); console.log('ok')",
                   .isolation = isolation});
    EXPECT_TRUE(js.completed) << js.err << js.message;
    auto early = run({.id = "py-exit-7" + suffix, .source = "import os\nos._exit(7)\n", .isolation = isolation});
    EXPECT_EQ(early.exit_code, 7);
    EXPECT_FALSE(early.completed);
  }

  std::unique_ptr<bus::connection> conn_;
};

TEST_F(HostileVerdict, JobMemoryAndNativeCodeAreOutOfReach) {
  auto r = run({.id = "py-memory", .source = reach_memory});
  EXPECT_EQ(r.out, "['child done']\n") << r.err << r.message;
  auto native = run({.id = "py-native", .source = R"PY(
denied = []
for name in ('ctypes', '_ctypes', '_testcapi', 'cffi'):
    try:
        __import__(name)
    except ImportError:
        denied.append(name)
import sys, types
for what, f in (('settrace', lambda: sys.settrace(None)), ('code', lambda: (lambda: 0).__code__.replace()),
                ('gc', lambda: __import__('gc').get_objects())):
    try:
        f()
    except Exception:
        denied.append(what)
print(denied)
)PY"});
  EXPECT_EQ(native.out, "['ctypes', '_ctypes', '_testcapi', 'cffi', 'settrace', 'code', 'gc']\n")
      << native.err << native.message;
  // Node's process, where the harness keeps the token: its memory, and node's debugging and
  // native entry points.
  auto js = run({.id = "js-memory", .language = "javascript", .source = R"JS(
const fs = require('fs');
const got = [];
try { fs.readSync(fs.openSync('/proc/self/mem', 'r'), Buffer.alloc(8), 0, 8, 4096); got.push('read /proc/self/mem'); } catch (e) {}
try { new (require('inspector').Session)().connect(); got.push('inspector session'); } catch (e) {}
try { new (require('worker_threads').Worker)('1', { eval: true }); got.push('worker'); } catch (e) {}
try { process.binding('fs'); got.push('process.binding'); } catch (e) {}
try { require('v8').getHeapSnapshot(); got.push('heap snapshot'); } catch (e) {}
try { fs.readSync(4, Buffer.alloc(16)); got.push('read fd 4'); } catch (e) {}
console.log(JSON.stringify(got));
)JS"});
  EXPECT_EQ(js.out, "[]\n") << js.err << js.message;
}

// What the audit hook leaves alone: ordinary programs (modules the template had not imported,
// from the standard library's .pyc files; logging and traceback, which read frames; threads,
// subprocesses, multiprocessing; the program's own modules, compiled from source) complete.
TEST_F(HostileVerdict, OrdinaryProgramsStillComplete) {
  auto r = run({.id = "py-ordinary", .source = R"PY(
import dataclasses, fractions, json, logging, multiprocessing, statistics, subprocess, sys
import threading, traceback
import helper
logging.basicConfig(level=logging.INFO, format='%(funcName)s:%(lineno)d %(message)s', stream=sys.stdout)
@dataclasses.dataclass
class P:
    x: int
def work(q):
    q.put(sum(range(10)))
q = multiprocessing.Queue()
p = multiprocessing.Process(target=work, args=(q,))
p.start()
got = q.get()
p.join()
t = threading.Thread(target=lambda: None)
t.start()
t.join()
out = subprocess.run(['python3', '-c', 'import ctypes; print(ctypes.sizeof(ctypes.c_int))'],
                     capture_output=True, text=True).stdout.strip()
logging.info('x')
traceback.extract_stack()
print(P(1).x, fractions.Fraction(1, 3) * 3, statistics.mean([1, 2, 3]), got, out, helper.VALUE,
      json.dumps({'a': 1}))
)PY",
                .files = {{"helper.py", "VALUE = 'helped'\n"}}});
  EXPECT_TRUE(r.completed) << r.err << r.message;
  EXPECT_EQ(r.out, "<module>:21 x\n1 1 2 45 4 helped {\"a\": 1}\n") << r.err;
}

TEST_F(HostileVerdict, NoProgramForgesItsCompletionFresh) { expect_no_forgery(wire::Isolation::fresh); }

TEST_F(HostileVerdict, NoProgramForgesItsCompletionStrict) { expect_no_forgery(wire::Isolation::strict); }

// Through `corral sweep`: every forgery with tests appended (a check that fails), not passed;
// an honest program with the same tests passes.
TEST_F(HostileVerdict, SweepPassesNoForgery) {
  char tmpl[] = "/tmp/corral-hostile-verdict-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string input = dir + "/forgeries.jsonl";
  {
    std::ofstream in(input, std::ios::binary);
    for (const auto& f : forgeries) {
      const bool js = std::string(f.language) == "javascript";
      json line = {{"id", f.id}, {"language", f.language},
                   {"source", std::string(js ? "function f() { return 1; }\n" : "def f():\n    return 1\n") + f.source},
                   {"tests", js ? "function check(c) { if (c() !== 2) throw new Error('wrong'); }"
                                : "def check(c):\n    assert c() == 2\n"},
                   {"entry_point", "f"}, {"timeout", 20}};
      in << line.dump() << "\n";
    }
    in << json{{"id", "py-honest"}, {"source", "def f():\n    return 2\n"},
               {"tests", "def check(c):\n    assert c() == 2\n"}, {"entry_point", "f"}}.dump()
       << "\n";
    in << json{{"id", "js-honest"}, {"language", "javascript"}, {"source", "function f() { return 2; }\n"},
               {"tests", "function check(c) { if (c() !== 2) throw new Error('wrong'); }"},
               {"entry_point", "f"}}.dump()
       << "\n";
  }
  for (const std::string isolation : {"fresh", "strict"}) {
    const std::string out = dir + "/results-" + isolation + ".jsonl";
    auto r = d_->corral({"sweep", input, "--out", out, "--isolation", isolation, "--concurrency", "2"},
                        {}, std::chrono::minutes(10));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ifstream text(out);
    std::map<std::string, json> got;
    for (std::string l; std::getline(text, l);) {
      auto j = json::parse(l, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << l;
      got[j.value("id", std::string())] = j;
    }
    for (const auto& f : forgeries) {
      ASSERT_EQ(got.count(f.id), 1u) << f.id;
      EXPECT_EQ(got[f.id]["passed"], false) << isolation << ": " << got[f.id].dump();
      EXPECT_EQ(got[f.id]["completed"], false) << isolation << ": " << got[f.id].dump();
    }
    EXPECT_EQ(got["py-honest"]["passed"], true) << got["py-honest"].dump();
    EXPECT_EQ(got["js-honest"]["passed"], true) << got["js-honest"].dump();
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace corral
