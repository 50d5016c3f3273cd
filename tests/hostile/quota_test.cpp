// A tenant that takes everything it can get (docs/security.md, "Fair share"): every sandbox
// slot, the host's memory, the store (output), the executor's time (execs per second), and
// exec ids the executor uses itself. Against a real executor, runsc and RocksDB.
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <fstream>
#include <string>
#include <vector>

#include "bus/connection.hpp"
#include "bus/jetstream.hpp"
#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"
#include "tests/support/deployment.hpp"

namespace corral {
namespace {

using namespace std::chrono_literals;
using test::deployment;
using test::run_result;
using test::trim;

uint64_t host_memory_mib() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  while (meminfo >> key) {
    if (key == "MemTotal:") {
      meminfo >> kib;
      break;
    }
    std::string rest;
    std::getline(meminfo, rest);
  }
  return kib / 1024;
}

std::unique_ptr<bus::connection> connect(const std::string& url) {
  bus::options o;
  o.urls = {url};
  o.delivery_pool_threads = 0;
  std::string why;
  auto c = bus::connection::connect(o, &why);
  EXPECT_TRUE(c) << why;
  return c;
}

std::vector<uint8_t> exec_request(const std::string& exec_id, const std::vector<std::string>& argv) {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString(exec_id);
  auto args = fbb.CreateVectorOfStrings(argv);
  wire::ExecRequestBuilder b(fbb);
  b.add_exec_id(id);
  b.add_argv(args);
  fbb.Finish(b.Finish(), wire::ExecRequestIdentifier());
  return wire::release(fbb);
}

std::vector<uint8_t> replay_request(const std::string& exec_id, uint64_t from) {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString(exec_id);
  fbb.Finish(wire::CreateReplayRequest(fbb, id, from), wire::ReplayRequestIdentifier());
  return wire::release(fbb);
}

const wire::ErrorReply* error_of(const bus::message& m) {
  return wire::verify<wire::ErrorReply>(m.data.data(), m.data.size());
}

TEST(HostileQuota, OneTenantCannotTakeEverySandboxSlot) {
  deployment d({.node = "quota-slots", .tenant = "greedy",
                .executor_args = {"--max-sandboxes", "4", "--warm-pool", "0"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  std::vector<std::string> held;
  int refused = 0;
  std::string refusal;
  for (int i = 0; i < 4; ++i) {
    auto r = d.corral({"sandbox", "create", "--timeout", "120"}, {}, 60s);
    if (r.exit_code == 0) {
      held.push_back(trim(r.out));
    } else {
      ++refused;
      refusal = r.err;
    }
  }
  EXPECT_EQ(held.size(), 3u) << "the greedy tenant holds every slot of the executor";
  EXPECT_EQ(refused, 1);
  EXPECT_NE(refusal.find("resource_exhausted"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("quota"), std::string::npos) << refusal;
  // Another tenant still gets a sandbox.
  auto other = d.corral({"sandbox", "create", "--timeout", "120"}, {}, 60s, "modest");
  EXPECT_EQ(other.exit_code, 0) << other.err;
  if (other.exit_code == 0) (void)d.corral({"sandbox", "rm", trim(other.out)}, {}, 60s, "modest");
  for (const auto& sb : held) (void)d.corral({"sandbox", "rm", sb});
}

TEST(HostileQuota, MemoryIsAdmittedOnlyWhenTheHostCanHoldIt) {
  deployment d({.node = "quota-memory", .tenant = "hungry",
                .executor_args = {"--warm-pool", "0"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  // Two sandboxes that each ask for (and are guaranteed) more than half of the host's memory.
  const uint64_t half = host_memory_mib() / 2 + 512;
  ASSERT_LE(half, 16384u) << "this host is too large for the node's per-sandbox maximum";
  const std::string mib = std::to_string(half);
  auto first = d.corral({"sandbox", "create", "--memory", mib, "--memory-request", mib}, {}, 60s);
  EXPECT_EQ(first.exit_code, 0) << first.err;
  auto second = d.corral({"sandbox", "create", "--memory", mib, "--memory-request", mib}, {}, 60s);
  EXPECT_NE(second.exit_code, 0) << "two sandboxes were promised more memory than the host has";
  EXPECT_NE(second.err.find("resource_exhausted"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("memory_request_mib"), std::string::npos) << second.err;
  for (const auto* r : {&first, &second})
    if (r->exit_code == 0) (void)d.corral({"sandbox", "rm", trim(r->out)});
}

// Memory requests are reservations: a tenant that reserves all it can with idle sandboxes
// (largest first, then smaller and smaller to fill what is left) must still leave room for
// another tenant's ordinary sandbox.
TEST(HostileQuota, OneTenantCannotReserveEveryMegabyteOfTheNode) {
  deployment d({.node = "quota-reserve", .tenant = "greedy",
                .executor_args = {"--warm-pool", "0", "--max-sandboxes", "64"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  std::vector<std::string> held;
  for (uint64_t mib = 16384; mib >= 64 && held.size() < 40;) {
    const std::string m = std::to_string(mib);
    auto r = d.corral({"sandbox", "create", "--memory", m, "--memory-request", m}, {}, 60s);
    if (r.exit_code == 0) {
      held.push_back(trim(r.out));
      continue;  // the same size again
    }
    ASSERT_NE(r.err.find("resource_exhausted"), std::string::npos) << r.err;
    mib /= 2;
  }
  ASSERT_FALSE(held.empty());
  auto other = d.corral({"sandbox", "create"}, {}, 60s, "bystander");
  EXPECT_EQ(other.exit_code, 0) << "one tenant's idle reservations locked another tenant out: "
                                << other.err;
  if (other.exit_code == 0) (void)d.corral({"sandbox", "rm", trim(other.out)}, {}, 60s, "bystander");
  for (const auto& sb : held) (void)d.corral({"sandbox", "rm", sb});
}

TEST(HostileQuota, TheTenantsFileOverridesQuotasWithoutARestart) {
  char tmpl[] = "/tmp/corral-tenants-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string file = std::string(tmpl) + "/tenants";
  { std::ofstream(file) << "# tenant key=value...\nlimited sandboxes=1 memory_mib=300\n"; }
  deployment d({.node = "quota-file", .tenant = "limited",
                .executor_args = {"--warm-pool", "0", "--tenants", file}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  auto a = d.corral({"sandbox", "create", "--memory-request", "200"}, {}, 60s);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = d.corral({"sandbox", "create", "--memory-request", "50"}, {}, 60s);
  EXPECT_NE(b.exit_code, 0) << "a second sandbox over the file's quota of 1";
  // The operator raises the quota; the executor sees it without a restart (it reads the file
  // again when it changes, at most once a second: a later create finds it).
  { std::ofstream(file) << "limited sandboxes=3 memory_mib=300\n"; }
  run_result c;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  do {
    c = d.corral({"sandbox", "create", "--memory-request", "50"}, {}, 60s);
  } while (c.exit_code != 0 && c.err.find("quota") != std::string::npos &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(c.exit_code, 0) << c.err << c.out;
  // Its memory quota still holds: 200 + 50 held, 100 more is over 300.
  auto e = d.corral({"sandbox", "create", "--memory-request", "100"}, {}, 60s);
  EXPECT_NE(e.exit_code, 0);
  EXPECT_NE(e.err.find("memory_request_mib"), std::string::npos) << e.err;
  for (const auto* r : {&a, &b, &c, &e})
    if (r->exit_code == 0) (void)d.corral({"sandbox", "rm", trim(r->out)});
  std::filesystem::remove_all(tmpl);
}

TEST(HostileQuota, StoredOutputIsCappedOldestFirstAndReplaysSayExpired) {
  deployment d({.node = "quota-output", .tenant = "chatty",
                .executor_args = {"--warm-pool", "0", "--sandbox-stored-output-mib", "1",
                                  "--tenant-stored-output-mib", "2"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  const auto sb = d.create({"--timeout", "300"});
  // 3 MiB of output from one exec: all of it streams live; only the last MiB stays stored.
  auto r = d.corral({"exec", "--id", "ex-flood", sb, "--", "python3", "-c",
                     "import sys\nfor i in range(3 * 1024):\n sys.stdout.write(('%07d ' % i) * 128)\n"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.size(), 3u * 1024 * 1024) << "live output was cut";
  auto conn = connect(d.nats().url());
  ASSERT_TRUE(conn);
  auto replay = replay_request("ex-flood", 0);
  auto first = conn->request(wire::subjects::sandbox_op(d.tenant(), sb, "replay"), replay.data(),
                             replay.size(), 10000);
  ASSERT_TRUE(first) << first.error().message;
  const auto* e = error_of(first.value());
  ASSERT_NE(e, nullptr) << "the whole 3 MiB is still stored (replay from 0 answered frames)";
  EXPECT_EQ(e->code(), wire::ErrorCode::expired) << wire::str(e->message());
  // A second sandbox of the tenant: the tenant's 2 MiB cap drops the first sandbox's oldest.
  const auto sb2 = d.create({"--timeout", "300"});
  auto r2 = d.corral({"exec", "--id", "ex-flood2", sb2, "--", "python3", "-c",
                      "import sys\nfor i in range(2 * 1024):\n sys.stdout.write(('%07d ' % i) * 128)\n"});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  // The newest output of the second sandbox is still replayable at its end.
  (void)d.corral({"sandbox", "rm", sb});
  (void)d.corral({"sandbox", "rm", sb2});
}

TEST(HostileQuota, NewExecsPerSecondAreLimitedPerSandbox) {
  deployment d({.node = "quota-rate", .tenant = "busy",
                .executor_args = {"--warm-pool", "0", "--tenant-execs-per-second", "2"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  const auto sb = d.create({"--timeout", "300"});
  auto conn = connect(d.nats().url());
  ASSERT_TRUE(conn);
  int accepted = 0, limited = 0;
  for (int i = 0; i < 20; ++i) {
    auto req = exec_request("ex-rate-" + std::to_string(i), {"true"});
    auto r = conn->request(wire::subjects::sandbox_op(d.tenant(), sb, "exec"), req.data(),
                           req.size(), 10000);
    ASSERT_TRUE(r) << r.error().message;
    if (const auto* e = error_of(r.value())) {
      EXPECT_EQ(e->code(), wire::ErrorCode::resource_exhausted) << wire::str(e->message());
      ++limited;
    } else {
      ++accepted;
    }
  }
  // A burst of 4 (twice the rate), plus what refilled while the 20 requests ran.
  EXPECT_GE(limited, 10) << accepted << " execs accepted at once from one sandbox";
  EXPECT_GE(accepted, 4);
  // A re-attach to an accepted exec is never limited.
  auto again = exec_request("ex-rate-0", {"true"});
  auto r = conn->request(wire::subjects::sandbox_op(d.tenant(), sb, "exec"), again.data(),
                         again.size(), 10000);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(error_of(r.value()), nullptr);
  (void)d.corral({"sandbox", "rm", sb});
}

TEST(HostileQuota, ExecRecordsAreCappedPerSandbox) {
  char tmpl[] = "/tmp/corral-tenants-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string file = std::string(tmpl) + "/tenants";
  { std::ofstream(file) << "hoarder sandbox_exec_record_mib=1\n"; }
  deployment d({.node = "quota-records", .tenant = "hoarder",
                .executor_args = {"--warm-pool", "0", "--tenants", file}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  const auto sb = d.create({"--timeout", "300"});
  auto conn = connect(d.nats().url());
  ASSERT_TRUE(conn);
  // Execs whose argv and env are ~120 KiB each: their records would be kept as long as the
  // sandbox's; a MiB of them is the quota.
  const std::string big(60 * 1024, 'x');
  int accepted = 0, refused = 0;
  for (int i = 0; i < 20 && refused == 0; ++i) {
    flatbuffers::FlatBufferBuilder fbb;
    auto id = fbb.CreateString("ex-record-" + std::to_string(i));
    auto args = fbb.CreateVectorOfStrings({"true", big});
    auto env = wire::build_pairs(fbb, {{"PAD", big}});
    wire::ExecRequestBuilder b(fbb);
    b.add_exec_id(id);
    b.add_argv(args);
    b.add_env(env);
    fbb.Finish(b.Finish(), wire::ExecRequestIdentifier());
    auto req = wire::release(fbb);
    auto r = conn->request(wire::subjects::sandbox_op(d.tenant(), sb, "exec"), req.data(),
                           req.size(), 10000);
    ASSERT_TRUE(r) << r.error().message;
    if (const auto* e = error_of(r.value())) {
      EXPECT_EQ(e->code(), wire::ErrorCode::resource_exhausted) << wire::str(e->message());
      ++refused;
    } else {
      ++accepted;
    }
  }
  EXPECT_EQ(refused, 1) << accepted << " execs of ~120 KiB records accepted in one sandbox";
  EXPECT_GE(accepted, 7);
  EXPECT_LE(accepted, 9);
  (void)d.corral({"sandbox", "rm", sb});
  std::filesystem::remove_all(tmpl);
}

TEST(HostileQuota, SandboxesTogetherAreLimitedToTheMemoryTheNodeAdmits) {
  deployment d({.node = "quota-parent", .tenant = "any", .executor_args = {"--warm-pool", "0"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  // Every sandbox's memory cgroup is below corral's: its limit is the host's memory less the
  // reserve, so that overcommitted limits can make the kernel kill a sandbox's process, never
  // the executor's, NATS's or the host's.
  std::ifstream limit("/sys/fs/cgroup/memory/corral/memory.limit_in_bytes");
  uint64_t bytes = 0;
  ASSERT_TRUE(limit >> bytes) << "no memory limit on the sandboxes' parent cgroup";
  const uint64_t host = host_memory_mib() << 20;
  EXPECT_LT(bytes, host) << "the sandboxes may take all of the host's memory";
  EXPECT_GE(bytes, host / 2);
}

TEST(HostileQuota, ARunningExecsDroppedOutputIsExpiredNotSkipped) {
  deployment d({.node = "quota-running", .tenant = "chatty2",
                .executor_args = {"--warm-pool", "0", "--sandbox-stored-output-mib", "1"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  const auto sb = d.create({"--timeout", "300"});
  auto conn = connect(d.nats().url());
  ASSERT_TRUE(conn);
  // 2 MiB written, then the exec waits (running) until its stdin closes.
  bool printed = false;
  std::mutex mu;
  std::condition_variable cv;
  uint64_t got = 0;
  auto sub = conn->subscribe(wire::subjects::output(d.tenant(), sb, "ex-running"), "",
                             [&](bus::message&& m) {
                               if (const auto* c = wire::verify<wire::OutputChunk>(m.data.data(), m.data.size())) {
                                 std::lock_guard<std::mutex> lock(mu);
                                 got += c->data() ? c->data()->size() : 0;
                                 printed = got >= 2u * 1024 * 1024;
                                 cv.notify_all();
                               }
                             });
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_TRUE(conn->flush(5000));
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString("ex-running");
  auto args = fbb.CreateVectorOfStrings(
      {"python3", "-c", "import sys\nsys.stdout.write('y' * (2 << 20)); sys.stdout.flush()\nsys.stdin.read()\n"});
  wire::ExecRequestBuilder b(fbb);
  b.add_exec_id(id);
  b.add_argv(args);
  b.add_stdin(true);
  fbb.Finish(b.Finish(), wire::ExecRequestIdentifier());
  auto req = wire::release(fbb);
  auto r = conn->request(wire::subjects::sandbox_op(d.tenant(), sb, "exec"), req.data(), req.size(), 10000);
  ASSERT_TRUE(r) << r.error().message;
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 60s, [&] { return printed; })) << got << " bytes arrived";
  }
  auto replay = replay_request("ex-running", 0);
  auto first = conn->request(wire::subjects::sandbox_op(d.tenant(), sb, "replay"), replay.data(),
                             replay.size(), 10000);
  ASSERT_TRUE(first) << first.error().message;
  const auto* e = error_of(first.value());
  ASSERT_NE(e, nullptr) << "a replay from 0 of a running exec whose start was dropped answered frames";
  EXPECT_EQ(e->code(), wire::ErrorCode::expired) << wire::str(e->message());
  (void)d.corral({"sandbox", "rm", sb});
}

// A job that finds no sandbox (the node full, or its tenant at its quota) waits for one: each
// try is not a delivery, so it is never ended executor_lost for another tenant's load.
TEST(HostileQuota, AJobWaitsForASandboxInsteadOfBeingReportedLost) {
  deployment d({.node = "quota-jobwait", .tenant = "holder",
                .executor_args = {"--max-sandboxes", "2", "--warm-pool", "0", "--tenant-sandboxes",
                                  "2", "--job-slots", "1", "--job-max-attempts", "2",
                                  "--job-ack-wait-ms", "3000"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  std::vector<std::string> held = {d.create({"--timeout", "300"}), d.create({"--timeout", "300"})};
  auto conn = connect(d.nats().url());
  ASSERT_TRUE(conn);
  auto setup = conn->request(wire::subjects::jobs_setup("waiter"), nullptr, 0, 30000);
  ASSERT_TRUE(setup) << setup.error().message;
  auto js = bus::jetstream::open(*conn, &why);
  ASSERT_TRUE(js) << why;
  flatbuffers::FlatBufferBuilder fbb;
  auto job_id = fbb.CreateString("j-wait");
  auto batch = fbb.CreateString("bw");
  auto lang = fbb.CreateString("python");
  auto src = fbb.CreateString("print('ran')");
  wire::JobBuilder jb(fbb);
  jb.add_job_id(job_id);
  jb.add_batch_id(batch);
  jb.add_language(lang);
  jb.add_source(src);
  jb.add_timeout_ms(30000);
  fbb.Finish(jb.Finish(), wire::JobIdentifier());
  auto bytes = wire::release(fbb);
  auto p = js->publish(wire::subjects::jobs("waiter", "default"), bytes.data(), bytes.size(), "waiter.j-wait");
  ASSERT_TRUE(p) << p.error().message;
  // More tries than --job-max-attempts while the node is full...
  ASSERT_TRUE(d.executor().wait_for_output_count("job j-wait of waiter waits for a sandbox", 3, 90s))
      << d.executor().output();
  // ... then room: the job runs.
  for (const auto& sb : held) (void)d.corral({"sandbox", "rm", sb});
  auto reader = js->reader(wire::subjects::results_stream("waiter"), wire::subjects::results("waiter", "bw"));
  ASSERT_TRUE(reader) << reader.error().message;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  std::vector<bus::js_message> got;
  while (got.empty() && std::chrono::steady_clock::now() < deadline) {
    auto m = reader.value()->fetch(1, 2000);
    ASSERT_TRUE(m || m.error().code == bus::errc::timeout) << m.error().message;
    if (m)
      for (auto& x : m.value()) got.push_back(std::move(x));
  }
  ASSERT_EQ(got.size(), 1u) << "no result for the waiting job";
  const auto* r = wire::verify<wire::JobResult>(got[0].data().data(), got[0].data().size());
  ASSERT_NE(r, nullptr);
  ASSERT_NE(r->status(), nullptr);
  EXPECT_EQ(r->status()->outcome(), wire::Outcome::exited)
      << wire::to_string(r->status()->outcome()) << ": " << wire::str(r->status()->message());
}

TEST(HostileQuota, ProbeExecIdsAreReserved) {
  deployment d({.node = "quota-probe", .tenant = "sneaky", .executor_args = {"--warm-pool", "0"}});
  std::string why;
  ASSERT_TRUE(d.start(&why)) << why;
  const auto sb = d.create({"--timeout", "300"});
  auto r = d.corral({"exec", "--id", "probe-1", sb, "--", "true"});
  EXPECT_NE(r.exit_code, 0) << "a client took a readiness probe's exec id";
  EXPECT_NE(r.err.find("reserved"), std::string::npos) << r.err;
  (void)d.corral({"sandbox", "rm", sb});
}

}  // namespace
}  // namespace corral
