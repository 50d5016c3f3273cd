// Jobs against a real nats-server (JetStream), corral-executor and runsc:
//  - run requests (direct): results, outcomes, "completed", rejections;
//  - the fresh isolation level: jobs of one tenant share a recycled sandbox and nothing of one
//    job is observable by the next (files, processes, env, listening sockets, SysV IPC), and the
//    job user can write nowhere else;
//  - the strict level: a sandbox of its own per job;
//  - the JetStream queue: N published, N results, 0 duplicates; a job id published twice runs
//    once; executor kill -9 and nats-server kill -9 mid-batch lose nothing.
#include <signal.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bus/connection.hpp"
#include "bus/jetstream.hpp"
#include "schemas/codec.hpp"
#include "schemas/subjects.hpp"
#include "tests/support/deployment.hpp"

namespace corral {
namespace {

using namespace std::chrono_literals;
using test::deployment;

struct job_spec {
  std::string id, batch = "b1", language = "python", source;
  std::vector<std::string> argv;
  std::string stdin_data;
  std::vector<std::pair<std::string, std::string>> env, files;
  int64_t timeout_ms = 20'000;
  wire::Isolation isolation = wire::Isolation::fresh;
};

std::vector<uint8_t> job_bytes(const job_spec& j) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  auto id = fbb.CreateString(j.id);
  auto batch = fbb.CreateString(j.batch);
  auto lang = fbb.CreateString(j.language);
  auto src = fbb.CreateString(j.source);
  auto argv = fbb.CreateVectorOfStrings(j.argv);
  auto in = fbb.CreateVector(reinterpret_cast<const uint8_t*>(j.stdin_data.data()), j.stdin_data.size());
  std::vector<flatbuffers::Offset<wire::JobFile>> fs;
  for (const auto& [p, d] : j.files)
    fs.push_back(wire::CreateJobFile(fbb, fbb.CreateString(p),
                                     fbb.CreateVector(reinterpret_cast<const uint8_t*>(d.data()), d.size())));
  auto files = fbb.CreateVector(fs);
  auto env = wire::build_pairs(fbb, j.env);
  wire::JobBuilder b(fbb);
  b.add_job_id(id);
  b.add_batch_id(batch);
  b.add_language(lang);
  b.add_source(src);
  b.add_argv(argv);
  b.add_stdin(in);
  b.add_files(files);
  b.add_env(env);
  b.add_timeout_ms(j.timeout_ms);
  b.add_isolation(j.isolation);
  fbb.Finish(b.Finish(), wire::JobIdentifier());
  return wire::release(fbb);
}

struct result_view {
  std::string job_id, batch, out, err, message, node;
  wire::Outcome outcome = wire::Outcome::internal;
  int exit_code = -1;
  bool completed = false;
  uint32_t attempt = 0;
  wire::Isolation isolation = wire::Isolation::fresh;
};

std::optional<result_view> parse_result(const std::vector<uint8_t>& data) {
  const auto* r = wire::verify<wire::JobResult>(data.data(), data.size());
  if (r == nullptr) return std::nullopt;
  result_view v;
  v.job_id = std::string(wire::str(r->job_id()));
  v.batch = std::string(wire::str(r->batch_id()));
  if (r->stdout()) v.out.assign(r->stdout()->begin(), r->stdout()->end());
  if (r->stderr()) v.err.assign(r->stderr()->begin(), r->stderr()->end());
  if (r->status()) {
    v.outcome = r->status()->outcome();
    v.exit_code = r->status()->exit_code();
    v.message = std::string(wire::str(r->status()->message()));
  }
  v.completed = r->completed();
  v.attempt = r->attempt();
  v.node = std::string(wire::str(r->node()));
  v.isolation = r->isolation();
  return v;
}

std::unique_ptr<bus::connection> connect(const std::string& url) {
  bus::options o;
  o.urls = {url};
  std::string why;
  auto c = bus::connection::connect(o, &why);
  EXPECT_TRUE(c) << why;
  return c;
}

// One run request; the result, or a failure of the test.
result_view run_direct(bus::connection& c, const std::string& tenant, const job_spec& j) {
  auto payload = job_bytes(j);
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto r = c.request(wire::subjects::run(tenant, "default"), payload.data(), payload.size(),
                       j.timeout_ms + 90'000);
    if (!r) {
      ADD_FAILURE() << "run " << j.id << ": " << r.error().message;
      return {};
    }
    if (auto v = parse_result(r.value().data)) return *v;
    const auto* e = wire::verify<wire::ErrorReply>(r.value().data.data(), r.value().data.size());
    if (e != nullptr && (e->code() == wire::ErrorCode::resource_exhausted ||
                         e->code() == wire::ErrorCode::unavailable))
      continue;  // every slot busy: the protocol says retry
    ADD_FAILURE() << "run " << j.id << ": not a JobResult"
                  << (e ? std::string(": ") + std::string(wire::str(e->message())) : "");
    return {};
  }
  ADD_FAILURE() << "run " << j.id << ": no slot";
  return {};
}

deployment::options jobs_options() {
  deployment::options o;
  o.tenant = "jobs";
  o.executor_args = {"--job-slots", "2", "--max-sandboxes", "8"};
  return o;
}

class Jobs : public test::deployment_test<jobs_options> {
 protected:
  void SetUp() override {
    test::deployment_test<jobs_options>::SetUp();
    conn_ = connect(d_->nats().url());
    ASSERT_TRUE(conn_);
  }
  result_view run(const job_spec& j) { return run_direct(*conn_, d_->tenant(), j); }
  std::unique_ptr<bus::connection> conn_;
};

TEST_F(Jobs, PythonRunsAndReportsItsEnd) {
  auto r = run({.id = "py-ok", .source = "import sys\nx = input()\nprint(x[::-1])\nprint('e', file=sys.stderr)\n",
                .stdin_data = "hello\n"});
  EXPECT_EQ(r.job_id, "py-ok");
  EXPECT_EQ(r.outcome, wire::Outcome::exited) << r.message << r.err;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.completed);
  EXPECT_EQ(r.out, "olleh\n");
  EXPECT_EQ(r.err, "e\n");
  EXPECT_EQ(r.node, "test-node");
  EXPECT_EQ(r.attempt, 1u);

  // Exiting early, even with 0, is not "completed"; raising is exit 1 with the traceback.
  auto early = run({.id = "py-early", .source = "import sys\nsys.exit(0)\nassert False\n"});
  EXPECT_EQ(early.outcome, wire::Outcome::exited);
  EXPECT_EQ(early.exit_code, 0);
  EXPECT_FALSE(early.completed);
  auto raised = run({.id = "py-raise", .source = "def f():\n    raise ValueError('boom')\nf()\n"});
  EXPECT_EQ(raised.exit_code, 1);
  EXPECT_FALSE(raised.completed);
  EXPECT_NE(raised.err.find("ValueError: boom"), std::string::npos) << raised.err;
  EXPECT_NE(raised.err.find("raise ValueError('boom')"), std::string::npos)
      << "the traceback shows the program's line: " << raised.err;
  EXPECT_EQ(raised.err.find("run_python"), std::string::npos) << "harness frames leak: " << raised.err;

  auto slow = run({.id = "py-loop", .source = "while True:\n    pass\n", .timeout_ms = 1500});
  EXPECT_EQ(slow.outcome, wire::Outcome::timeout);
  EXPECT_EQ(slow.exit_code, 124);
  EXPECT_NE(slow.message.find("timed out after 1500 ms"), std::string::npos) << slow.message;
  EXPECT_FALSE(slow.completed);

  auto files = run({.id = "py-files", .source = "print(open('data/in.txt').read().upper())",
                    .files = {{"data/in.txt", "abc"}}});
  EXPECT_EQ(files.out, "ABC\n") << files.err;

  // Every job process is forked from one template, yet none repeats another's random numbers.
  const std::string draw = "import random, os\nprint(random.getrandbits(64), os.urandom(8).hex())\n";
  auto d1 = run({.id = "py-rand-1", .source = draw});
  auto d2 = run({.id = "py-rand-2", .source = draw});
  ASSERT_TRUE(d1.completed && d2.completed) << d1.err << d2.err;
  EXPECT_NE(d1.out.substr(0, d1.out.find(' ')), d2.out.substr(0, d2.out.find(' ')))
      << d1.out << d2.out;
}

// Stdin larger than a pipe holds reaches the program whole; a program that exits without
// reading its stdin ends normally, and the runner goes on to the next job (it used to die of
// SIGPIPE writing the rest).
TEST_F(Jobs, StdinLargerThanAPipe) {
  std::string big;
  for (int i = 0; i < 40'000; ++i) big += std::to_string(i % 97) + "\n";  // ~110 KiB
  long long sum = 0;
  for (int i = 0; i < 40'000; ++i) sum += i % 97;
  auto read_all = run({.id = "stdin-big", .source = "import sys\nprint(sum(int(l) for l in sys.stdin))\n",
                       .stdin_data = big});
  EXPECT_EQ(read_all.outcome, wire::Outcome::exited) << read_all.message << read_all.err;
  EXPECT_EQ(read_all.out, std::to_string(sum) + "\n") << read_all.err;
  EXPECT_TRUE(read_all.completed);
  for (int round = 0; round < 3; ++round) {
    auto unread = run({.id = "stdin-unread-" + std::to_string(round), .source = "print('early')\n",
                       .stdin_data = std::string(512 << 10, 'x')});
    EXPECT_EQ(unread.outcome, wire::Outcome::exited) << unread.message << unread.err;
    EXPECT_EQ(unread.out, "early\n");
    EXPECT_TRUE(unread.completed);
    auto next = run({.id = "stdin-next-" + std::to_string(round), .source = "print('next')\n"});
    EXPECT_EQ(next.out, "next\n") << next.message << next.err;
    EXPECT_TRUE(next.completed);
  }
}

TEST_F(Jobs, JavascriptAndArgv) {
  auto js = run({.id = "js-ok", .language = "javascript",
                 .source = "console.log([1, 2, 3].map(x => x * 2).join(','))"});
  EXPECT_EQ(js.out, "2,4,6\n") << js.err << js.message;
  EXPECT_TRUE(js.completed);
  auto early = run({.id = "js-early", .language = "javascript",
                    .source = "console.log('a'); process.exit(0); console.log('b')"});
  EXPECT_EQ(early.out, "a\n");
  EXPECT_EQ(early.exit_code, 0);
  EXPECT_FALSE(early.completed);
  auto argv = run({.id = "argv", .language = "", .argv = {"sh", "-c", "echo hi; exit 3"}});
  EXPECT_EQ(argv.outcome, wire::Outcome::exited);
  EXPECT_EQ(argv.exit_code, 3);
  EXPECT_EQ(argv.out, "hi\n");
  EXPECT_FALSE(argv.completed);
  auto missing = run({.id = "argv-missing", .language = "", .argv = {"no-such-program"}});
  EXPECT_EQ(missing.outcome, wire::Outcome::rejected);
  EXPECT_EQ(missing.exit_code, 127);
}

TEST_F(Jobs, BadJobsAreRejected) {
  auto bad_id = run({.id = "has/slash", .source = "pass"});
  EXPECT_EQ(bad_id.outcome, wire::Outcome::rejected);
  auto bad_lang = run({.id = "lang", .language = "cobol", .source = "x"});
  EXPECT_EQ(bad_lang.outcome, wire::Outcome::rejected);
  EXPECT_NE(bad_lang.message.find("language"), std::string::npos);
  auto bad_path = run({.id = "path", .source = "pass", .files = {{"../etc/x", "y"}}});
  EXPECT_EQ(bad_path.outcome, wire::Outcome::rejected);
  auto no_argv = run({.id = "noargv", .language = ""});
  EXPECT_EQ(no_argv.outcome, wire::Outcome::rejected);
  // Garbage on the run subject: an answer, not a crash.
  const std::string junk = "definitely not a flatbuffer";
  auto r = conn_->request(wire::subjects::run(d_->tenant(), "default"), junk.data(), junk.size(), 10'000);
  ASSERT_TRUE(r) << r.error().message;
  auto v = parse_result(r.value().data);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->outcome, wire::Outcome::rejected);
  EXPECT_EQ(run({.id = "after-junk", .source = "print(1)"}).out, "1\n");
}

// Fresh: one sandbox recycled, nothing of a job visible to the next.
TEST_F(Jobs, FreshJobsLeaveNothingBehind) {
  const std::string leave = R"(
import os, socket, subprocess, sys
open('/tmp/left-in-tmp', 'w').write('secret')
open('/var/tmp/left-in-var-tmp', 'w').write('secret')
open('/dev/shm/left-in-shm', 'w').write('secret')
open('left-in-workdir', 'w').write('secret')
os.environ['LEAKED'] = 'yes'
subprocess.Popen(['setsid', 'sleep', '1000'])
subprocess.Popen(['sh', '-c', 'sleep 1000 &'])
s = socket.socket(); s.bind(('127.0.0.1', 7777)); s.listen()
# SysV IPC through a child python3 (ctypes is denied to the job process itself: docs/jobs.md).
shm = subprocess.run([sys.executable, '-c', 'import ctypes; print(ctypes.CDLL(None).shmget(0x1234, 4096, 0o1666))'],
                     capture_output=True, text=True).stdout
print('left', int(shm) >= 0)
)";
  auto a = run({.id = "leave", .source = leave, .env = {{"FIRST_JOB_ENV", "1"}}});
  ASSERT_EQ(a.out, "left True\n") << a.err << a.message;

  const std::string look = R"(
import os, socket, subprocess, sys
found = []
for d in ('/tmp', '/var/tmp', '/dev/shm'):
    for n in os.listdir(d):
        if n.startswith('left'): found.append(d + '/' + n)
for root, dirs, files in os.walk('/tmp'):
    found += [f for f in files if f.startswith('left')]
ps = subprocess.run(['ps', '-eo', 'user,args'], capture_output=True, text=True).stdout
found += [l for l in ps.splitlines() if 'sleep 1000' in l]
found += [k for k in os.environ if k in ('LEAKED', 'FIRST_JOB_ENV')]
s = socket.socket()
if s.connect_ex(('127.0.0.1', 7777)) == 0: found.append('port 7777 answers')
shm = subprocess.run([sys.executable, '-c', 'import ctypes; print(ctypes.CDLL(None).shmget(0x1234, 0, 0))'],
                     capture_output=True, text=True).stdout
if int(shm) >= 0: found.append('shm segment')
print('found', found)
)";
  auto b = run({.id = "look", .source = look});
  EXPECT_EQ(b.out, "found []\n") << b.err << b.message;

  // The job user can write nowhere but its scratch places. /usr (most of the image) is a
  // read-only mount, checked here instead of walking it.
  auto w = run({.id = "writable", .language = "",
                .argv = {"sh", "-c",
                         "grep -q ' /usr [^ ]* ro[, ]' /proc/mounts || echo '/usr is not read-only'; "
                         "find / \\( -path /proc -o -path /sys -o -path /usr \\) -prune -o "
                         "-writable ! -type c ! -type l -print "
                         "2>/dev/null | grep -v -E '^(/tmp|/var/tmp|/dev/shm)(/|$)' | "
                         "grep -v -E '^/dev/(null|zero|full|random|urandom|tty|pts|ptmx)' ; true"}});
  EXPECT_EQ(w.outcome, wire::Outcome::exited) << w.message << w.err;
  EXPECT_EQ(w.out, "") << "writable by the job user outside its scratch places:\n" << w.out;

  // All of it ran in one recycled sandbox of this tenant.
  auto ls = d_->corral({"sandbox", "ls", "--tag", "corral.job-runner=fresh"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  int rows = 0;
  for (size_t p = 0; (p = ls.out.find("sb-", p)) != std::string::npos; ++p) ++rows;
  EXPECT_EQ(rows, 1) << ls.out;
}

TEST_F(Jobs, StrictJobsGetASandboxEach) {
  auto a = run({.id = "strict-a", .source = "open('/tmp/x','w').write('1'); print('a')",
                .isolation = wire::Isolation::strict});
  EXPECT_EQ(a.out, "a\n") << a.err << a.message;
  EXPECT_EQ(a.isolation, wire::Isolation::strict);
  auto b = run({.id = "strict-b", .source = "import os; print(os.path.exists('/tmp/x'))",
                .isolation = wire::Isolation::strict});
  EXPECT_EQ(b.out, "False\n") << b.err << b.message;
  // Each ended with its job.
  auto ls = d_->corral({"sandbox", "ls", "--all", "--tag", "corral.job-runner=strict"});
  int rows = 0;
  for (size_t p = 0; (p = ls.out.find("sb-", p)) != std::string::npos; ++p) ++rows;
  EXPECT_GE(rows, 2) << ls.out;
}

// -- the JetStream queue ------------------------------------------------------------------------

std::string job_msg_id(const std::string& tenant, const std::string& job) { return tenant + "." + job; }

void publish_jobs(bus::jetstream& js, const std::string& tenant, const std::vector<job_spec>& jobs) {
  for (const auto& j : jobs) {
    auto bytes = job_bytes(j);
    auto p = js.publish(wire::subjects::jobs(tenant, "default"), bytes.data(), bytes.size(),
                        job_msg_id(tenant, j.id), 10'000);
    ASSERT_TRUE(p) << p.error().message;
  }
}

// Reads the batch's results until `want` distinct job ids arrived (or the deadline).
std::map<std::string, std::vector<result_view>> collect(bus::jetstream& js, const std::string& tenant,
                                                        const std::string& batch, size_t want,
                                                        std::chrono::seconds within) {
  std::map<std::string, std::vector<result_view>> got;
  const auto deadline = std::chrono::steady_clock::now() + within;
  std::unique_ptr<bus::pull_consumer> reader;
  while (std::chrono::steady_clock::now() < deadline && got.size() < want) {
    if (!reader) {
      auto r = js.reader(wire::subjects::results_stream(tenant),
                         wire::subjects::results(tenant, batch));
      if (!r) continue;  // e.g. the server is restarting
      reader = std::move(r.value());
      got.clear();       // a new reader starts from the beginning
    }
    auto msgs = reader->fetch(64, 1000);
    if (!msgs) {
      if (msgs.error().code != bus::errc::timeout) reader.reset();
      continue;
    }
    for (auto& m : msgs.value())
      if (auto v = parse_result(m.data())) got[v->job_id].push_back(*v);
  }
  return got;
}

// A JetStream context; first, unless `setup` is false, the tenant's job streams set up by the
// executors (corral.v1.{t}.setup.jobs).
std::unique_ptr<bus::jetstream> open_js(bus::connection& c, const std::string& tenant,
                                        bool setup = true) {
  if (setup) {
    auto r = c.request(wire::subjects::jobs_setup(tenant), nullptr, 0, 30'000);
    EXPECT_TRUE(r) << r.error().message;
    if (r) {
      EXPECT_EQ(wire::verify<wire::ErrorReply>(r.value().data.data(), r.value().data.size()),
                nullptr);
    }
  }
  std::string why;
  auto js = bus::jetstream::open(c, &why);
  EXPECT_TRUE(js) << why;
  return js;
}

TEST_F(Jobs, QueueGivesEveryJobOneResultAndDeduplicates) {
  auto js = open_js(*conn_, d_->tenant());
  ASSERT_TRUE(js);
  std::vector<job_spec> jobs;
  for (int i = 0; i < 12; ++i)
    jobs.push_back({.id = "q-" + std::to_string(i), .batch = "qbatch",
                    .source = "print(" + std::to_string(i) + " * 2)"});
  publish_jobs(*js, d_->tenant(), jobs);
  // The same job id again, inside the window: stored once, run once.
  auto again = job_bytes(jobs[3]);
  auto dup = js->publish(wire::subjects::jobs(d_->tenant(), "default"), again.data(), again.size(),
                         job_msg_id(d_->tenant(), jobs[3].id), 10'000);
  ASSERT_TRUE(dup) << dup.error().message;
  EXPECT_TRUE(dup.value().duplicate);

  auto got = collect(*js, d_->tenant(), "qbatch", jobs.size(), 120s);
  ASSERT_EQ(got.size(), jobs.size());
  for (int i = 0; i < 12; ++i) {
    const auto& rs = got["q-" + std::to_string(i)];
    ASSERT_EQ(rs.size(), 1u) << "job q-" << i << " has " << rs.size() << " results";
    EXPECT_EQ(rs[0].out, std::to_string(i * 2) + "\n") << rs[0].err << rs[0].message;
    EXPECT_TRUE(rs[0].completed);
  }
}

// -- chaos: a deployment of its own ---------------------------------------------------------------

struct chaos_counts {
  size_t results = 0, duplicates = 0, lost = 0, ok = 0;
};

chaos_counts count(const std::map<std::string, std::vector<result_view>>& got) {
  chaos_counts c;
  for (const auto& [id, rs] : got) {
    c.results += rs.size();
    c.duplicates += rs.size() - 1;
    for (const auto& r : rs) {
      if (r.outcome == wire::Outcome::executor_lost) ++c.lost;
      else if (r.outcome == wire::Outcome::exited && r.completed) ++c.ok;
      else
        ADD_FAILURE() << id << ": " << wire::to_string(r.outcome) << " " << r.exit_code << " "
                      << r.message << " " << r.err;
    }
  }
  return c;
}

std::vector<job_spec> slow_batch(const std::string& batch, int n) {
  std::vector<job_spec> jobs;
  for (int i = 0; i < n; ++i)
    jobs.push_back({.id = batch + "-" + std::to_string(i), .batch = batch,
                    .source = "import time\ntime.sleep(0.3)\nprint('done', " + std::to_string(i) + ")"});
  return jobs;
}

TEST(JobsChaos, ExecutorKilledMidBatchLosesNothing) {
  deployment d({.node = "chaos-node", .tenant = "chaos",
                .executor_args = {"--job-slots", "2", "--job-ack-wait-ms", "3000"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  auto conn = connect(d.nats().url());
  ASSERT_TRUE(conn);
  auto js = open_js(*conn, d.tenant());
  ASSERT_TRUE(js);
  const int n = 24;
  auto jobs = slow_batch("kx", n);
  publish_jobs(*js, d.tenant(), jobs);
  // Some results in, then the executor dies with jobs running.
  auto some = collect(*js, d.tenant(), "kx", 4, 120s);
  ASSERT_GE(some.size(), 4u);
  d.executor().kill9();
  ASSERT_TRUE(d.start_executor(&why)) << why;
  auto got = collect(*js, d.tenant(), "kx", n, 180s);
  auto c = count(got);
  EXPECT_EQ(got.size(), static_cast<size_t>(n)) << "every job has a result";
  EXPECT_EQ(c.duplicates, 0u);
  EXPECT_EQ(c.ok + c.lost, static_cast<size_t>(n)) << "each ran to its end or was reported lost";
  for (const auto& [id, rs] : got)
    for (const auto& r : rs)
      if (r.outcome == wire::Outcome::exited) {
        EXPECT_NE(r.out.find("done"), std::string::npos) << id;
      }
}

TEST(JobsChaos, NatsServerKilledMidBatchLosesNothing) {
  deployment d({.node = "chaos-nats", .tenant = "chaos2",
                .executor_args = {"--job-slots", "2", "--job-ack-wait-ms", "3000"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  const int n = 24;
  {
    auto conn = connect(d.nats().url());
    ASSERT_TRUE(conn);
    auto js = open_js(*conn, d.tenant());
    ASSERT_TRUE(js);
    publish_jobs(*js, d.tenant(), slow_batch("nx", n));
    auto some = collect(*js, d.tenant(), "nx", 4, 120s);
    ASSERT_GE(some.size(), 4u);
  }
  d.nats().kill9();
  ASSERT_TRUE(d.nats().restart()) << d.nats().error();
  auto conn = connect(d.nats().url());
  ASSERT_TRUE(conn);
  auto js = open_js(*conn, d.tenant(), /*setup=*/false);  // the streams survived the restart
  ASSERT_TRUE(js);
  auto got = collect(*js, d.tenant(), "nx", n, 180s);
  auto c = count(got);
  EXPECT_EQ(got.size(), static_cast<size_t>(n)) << "every job has a result";
  EXPECT_EQ(c.duplicates, 0u);
  EXPECT_EQ(c.ok + c.lost, static_cast<size_t>(n));
}

}  // namespace
}  // namespace corral
