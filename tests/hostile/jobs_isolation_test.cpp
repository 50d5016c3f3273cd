// A fresh job against the next job of the same lease (docs/security.md, "A job vs. the next
// job"). Each attack is a job whose processes try to outlive it and plant a module in the next
// job's directory (the first entry of its sys.path); the next job then looks for any process
// of a job uid but its own and tries, for a while, to import the planted module:
//  - a thread that outlives its process's main thread, which left with the raw exit system
//    call (the process then looks like a zombie: the runner's kill scan used to skip it);
//  - the same inside a setsid daemon;
//  - the same in a double-forked grandchild (an orphan, reparented away from the job).
// One executor with one job slot, so that every job here runs on the same lease.
#include <gtest/gtest.h>

#include "tests/hostile/jobs_support.hpp"
#include "tests/support/deployment.hpp"

namespace corral {
namespace {

using hostile::job_spec;
using hostile::result_view;

test::deployment::options isolation_options() {
  test::deployment::options o;
  o.tenant = "hostile-jobs";
  o.node = "hostile-node";
  o.executor_args = {"--job-slots", "1", "--max-sandboxes", "4"};
  return o;
}

// The survivor: a python3 of its own (ctypes works there: it is not the job process). Its
// planting thread tries the next job directories of every naming the runner ever used (the
// old runner's job-1, job-2, ... next to its own) and every writable entry of sys.path; then
// its main thread ends with the raw exit system call, leaving the thread alone in the process.
const char* const survivor = R"PY(
import ctypes, os, sys, threading, time
mine = sys.argv[1]
jobs = os.path.dirname(mine)
def plant():
    end = time.time() + 45
    while time.time() < end:
        targets = [os.path.join(jobs, 'job-%d' % n) for n in range(1, 64)]
        targets += [p for p in sys.path if p]
        for d in targets:
            if d == mine:
                continue
            try:
                with open(os.path.join(d, 'planted_probe.py'), 'w') as f:
                    f.write("FOUND = 'imported a module planted by an earlier job'\n")
            except OSError:
                pass
        time.sleep(0.01)
threading.Thread(target=plant).start()
time.sleep(0.3)
ctypes.CDLL(None).syscall(60, 0)  # SYS_exit: this thread only
)PY";

// A job that starts the survivor in the given shape and waits until its main thread is gone.
std::string attack(const std::string& shape) {
  return std::string("SURVIVOR = r'''") + survivor + "'''\n" + R"PY(
import os, subprocess, sys, time
shape = ')PY" + shape + R"PY('
argv = [sys.executable, '-c', SURVIVOR, os.getcwd()]
if shape == 'thread':
    subprocess.Popen(argv)
elif shape == 'setsid':
    subprocess.Popen(['setsid'] + argv)
elif shape == 'double-fork':
    if os.fork() == 0:
        if os.fork() == 0:
            os.setsid()
            os.execv(argv[0], argv)
        os._exit(0)
    os.wait()
time.sleep(1.0)
print('attack started')
)PY";
}

// The next job: every process of a job uid that is not this job's, and the planted module if it
// shows up within a few seconds.
const char* const look = R"PY(
import os, subprocess, time
me = int(os.readlink('/proc/self'))  # this process's pid as /proc (and ps) show it
found = []
ps = subprocess.run(['ps', '-eo', 'pid,uid,stat,args'], capture_output=True, text=True).stdout
for line in ps.splitlines()[1:]:
    pid, uid, stat, args = (line.split(None, 3) + [''])[:4]
    if int(pid) == me or args.startswith('ps -eo') or int(uid) < 30000:
        continue
    found.append('process: ' + line.strip()[:100])
end = time.time() + 3
while time.time() < end and not any(f.startswith('planted') for f in found):
    try:
        import planted_probe
        found.append('planted: ' + getattr(planted_probe, 'FOUND', 'imported (while being written)'))
    except ImportError:
        time.sleep(0.05)
print('found', found)
)PY";

class HostileJobs : public test::deployment_test<isolation_options> {
 protected:
  void SetUp() override {
    test::deployment_test<isolation_options>::SetUp();
    conn_ = hostile::connect(d_->nats().url());
    ASSERT_TRUE(conn_);
  }
  result_view run(const job_spec& j) { return hostile::run_direct(*conn_, d_->tenant(), j); }

  void expect_nothing_left(const std::string& shape) {
    auto a = run({.id = "attack-" + shape, .source = attack(shape)});
    ASSERT_EQ(a.out, "attack started\n") << a.err << a.message;
    auto b = run({.id = "look-after-" + shape, .source = look});
    EXPECT_EQ(b.out, "found []\n") << "after the " << shape << " attack:\n" << b.err << b.message;
    EXPECT_TRUE(b.completed) << b.err;
    // And the job after that still runs normally on this lease.
    auto c = run({.id = "after-" + shape, .source = "print('ok')"});
    EXPECT_EQ(c.out, "ok\n") << c.err << c.message;
  }

  std::unique_ptr<bus::connection> conn_;
};

TEST_F(HostileJobs, ThreadOutlivingItsMainThreadsRawExitLeavesNothing) { expect_nothing_left("thread"); }

TEST_F(HostileJobs, SetsidDaemonLeavesNothing) { expect_nothing_left("setsid"); }

TEST_F(HostileJobs, DoubleForkedOrphanLeavesNothing) { expect_nothing_left("double-fork"); }

// Each job gets a directory of its own that no other job can reach, and a uid of its own.
TEST_F(HostileJobs, EachJobHasItsOwnUidAndAnUnguessableDirectory) {
  const std::string who = "import os\nprint(os.getuid(), os.getcwd())\n";
  auto a = run({.id = "who-1", .source = who});
  auto b = run({.id = "who-2", .source = who});
  ASSERT_TRUE(a.completed && b.completed) << a.err << b.err;
  const auto uid_a = a.out.substr(0, a.out.find(' ')), uid_b = b.out.substr(0, b.out.find(' '));
  const auto dir_a = a.out.substr(a.out.find(' ') + 1), dir_b = b.out.substr(b.out.find(' ') + 1);
  EXPECT_NE(uid_a, uid_b);
  EXPECT_NE(dir_a, dir_b);
  EXPECT_EQ(dir_a.find("job-"), std::string::npos) << "a predictable name: " << dir_a;
  // The parent of job directories cannot be listed by a job.
  auto ls = run({.id = "list-jobs", .source = "import os\ntry:\n    print(os.listdir(os.path.dirname(os.getcwd())))\n"
                                               "except PermissionError:\n    print('denied')\n"});
  EXPECT_EQ(ls.out, "denied\n") << ls.err;
}

}  // namespace
}  // namespace corral
