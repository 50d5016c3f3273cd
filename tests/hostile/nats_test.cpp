// A tenant with a raw NATS client against a real `corral up` (docs/security.md, "NATS
// identities"): nobody connects without credentials, and a tenant's credentials reach only its
// own subjects, inbox, job queue and results; only executors speak for sandboxes.
//
// Negative checks ("alice received nothing of bob's") wait for a barrier, never a sleep: a marker
// published by an executor identity after the event, on the same subject, reaches the same
// subscription after anything that event could have delivered there (the server delivers one
// subscription's messages in the order it processed them), and the server's own "Permissions
// Violation" error, reported to the client, is awaited as an event.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bus/connection.hpp"
#include "bus/jetstream.hpp"
#include "bus/nkey.hpp"
#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/nats_server.hpp"
#include "tests/support/up_deployment.hpp"

namespace corral {
namespace {

namespace fs = std::filesystem;
namespace subjects = wire::subjects;
using namespace std::chrono_literals;
using test::trim;
using test::up_deployment;

// What a connection was told asynchronously (permission violations), and what its subscriptions
// received, waited on with deadlines.
struct observer {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> errors;
  std::vector<std::string> received;  // subject + " " + payload size

  void error(const std::string& e) {
    std::lock_guard<std::mutex> lock(mu);
    errors.push_back(e);
    cv.notify_all();
  }
  bus::message_handler recorder(const std::string& tag) {
    return [this, tag](bus::message&& m) {
      std::lock_guard<std::mutex> lock(mu);
      received.push_back(tag + " " + m.subject);
      cv.notify_all();
    };
  }
  bool wait_error(const std::string& needle, std::chrono::milliseconds within = 10s) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, within, [&] {
      for (const auto& e : errors)
        if (e.find(needle) != std::string::npos) return true;
      return false;
    });
  }
  bool wait_received(const std::string& needle, std::chrono::milliseconds within = 20s) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, within, [&] {
      for (const auto& r : received)
        if (r.find(needle) != std::string::npos) return true;
      return false;
    });
  }
  std::string all_errors() {
    std::lock_guard<std::mutex> lock(mu);
    std::string out;
    for (const auto& e : errors) out += "\n  " + e;
    return out;
  }
  std::vector<std::string> received_with(const std::string& tag) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> out;
    for (const auto& r : received)
      if (r.rfind(tag + " ", 0) == 0) out.push_back(r);
    return out;
  }
};

std::unique_ptr<bus::connection> connect(const std::string& url, const std::string& seed,
                                         const std::string& inbox, observer* obs,
                                         std::string* why = nullptr) {
  bus::options o;
  o.urls = {url};
  o.name = "hostile";
  o.nkey_seed_file = seed;
  o.inbox_prefix = inbox;
  o.max_reconnect = 0;
  o.delivery_pool_threads = 0;
  if (obs != nullptr) o.on_async_error = [obs](const std::string& e) { obs->error(e); };
  std::string local;
  return bus::connection::connect(o, why != nullptr ? why : &local);
}

std::vector<uint8_t> forged_chunk(const std::string& exec, const std::string& text) {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString(exec);
  auto data = fbb.CreateVector(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  fbb.Finish(wire::CreateOutputChunk(fbb, id, 0, wire::Stream::stdout, 0, data),
             wire::OutputChunkIdentifier());
  return wire::release(fbb);
}

std::vector<uint8_t> forged_exit(const std::string& exec) {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString(exec);
  auto status = wire::CreateExitStatus(fbb, wire::Outcome::exited, 0, 0);
  fbb.Finish(wire::CreateExecExit(fbb, id, 1, status), wire::ExecExitIdentifier());
  return wire::release(fbb);
}

class HostileNats : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(geteuid(), 0u) << "runsc needs root";
    up_ = new up_deployment();
    std::string why;
    if (!up_->start(&why)) {
      delete up_;
      up_ = nullptr;
      FAIL() << why;
    }
    alice_seed_ = up_->add_tenant("alice");
    bob_seed_ = up_->add_tenant("bob");
  }
  static void TearDownTestSuite() {
    delete up_;
    up_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(up_, nullptr) << "corral up did not start"; }
  // Tests that act as the tenants need their credentials from `corral token create`.
  static bool have_tenants() {
    return !alice_seed_.empty() && fs::exists(alice_seed_) && fs::exists(bob_seed_);
  }
  std::unique_ptr<bus::connection> alice(observer* obs) {
    std::string why;
    auto c = connect(up_->nats_url(), alice_seed_, subjects::tenant_inbox_prefix("alice"), obs, &why);
    EXPECT_TRUE(c) << why;
    return c;
  }
  std::unique_ptr<bus::connection> bob(observer* obs) {
    std::string why;
    auto c = connect(up_->nats_url(), bob_seed_, subjects::tenant_inbox_prefix("bob"), obs, &why);
    EXPECT_TRUE(c) << why;
    return c;
  }
  // corral up's executor identity: publishes what only executors may (markers for barriers).
  std::unique_ptr<bus::connection> executor() {
    std::string why;
    auto c = connect(up_->nats_url(), up_->seed_of("executor", "local"), "_INBOX_EX", nullptr, &why);
    EXPECT_TRUE(c) << why;
    return c;
  }
  std::string create(const std::string& tenant) {
    auto r = up_->corral(tenant, {"sandbox", "create", "--timeout", "300"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return trim(r.out);
  }
  static inline up_deployment* up_ = nullptr;
  static inline std::string alice_seed_, bob_seed_;
};

TEST_F(HostileNats, AClientWithoutCredentialsIsRefused) {
  std::string why;
  EXPECT_EQ(connect(up_->nats_url(), "", "", nullptr, &why), nullptr)
      << "an anonymous client was let in";
  EXPECT_NE(why.find("Authorization"), std::string::npos) << why;
  // A well-formed key the server does not know is refused too.
  const std::string stranger = up_->data() + "/stranger.nk";
  auto key = bus::generate_user_nkey(&why);
  ASSERT_TRUE(key) << why;
  ASSERT_TRUE(bus::write_user_nkey_file(stranger, *key, &why)) << why;
  EXPECT_EQ(connect(up_->nats_url(), stranger, "", nullptr, &why), nullptr);
}

// Every connect signs the server's nonce: it must work every time. (nats.c 3.4 mangles a
// signature whose first byte is 0, one in 256: 1500 connects would all pass without the
// workaround one time in 400.)
TEST_F(HostileNats, EveryConnectWithValidCredentialsIsAccepted) {
  ASSERT_TRUE(have_tenants()) << "corral token create made no NATS credentials";
  int refused = 0;
  std::string last;
  for (int i = 0; i < 1500; ++i) {
    std::string why;
    if (!connect(up_->nats_url(), alice_seed_, subjects::tenant_inbox_prefix("alice"), nullptr, &why)) {
      ++refused;
      last = why;
    }
  }
  EXPECT_EQ(refused, 0) << last;
}

TEST_F(HostileNats, TheDataDirectoryAndEveryCredentialArePrivate) {
  ASSERT_TRUE(have_tenants()) << "corral token create made no NATS credentials";
  struct stat st {};
  ASSERT_EQ(::stat(up_->data().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u) << "the data directory";
  for (const auto& sub : {"auth", "nats", "executor"}) {
    ASSERT_EQ(::stat((up_->data() + "/" + sub).c_str(), &st), 0) << sub;
    EXPECT_EQ(st.st_mode & 077, 0u) << sub;
  }
  int seeds = 0;
  for (const auto& e : fs::directory_iterator(up_->data() + "/auth")) {
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u) << e.path() << " may be read by others";
    if (e.path().extension() == ".nk") ++seeds;
  }
  EXPECT_GE(seeds, 5) << "executor, gateway, operator, default, alice, bob";
  // The executor's store (every tenant's argv, env and output) and the JetStream store.
  int files = 0;
  for (const auto& dir : {up_->data() + "/executor/db", up_->data() + "/nats"}) {
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
      if (S_ISREG(st.st_mode)) ++files;
      EXPECT_EQ(st.st_mode & 077, 0u) << e.path() << " may be read by others";
    }
  }
  EXPECT_GT(files, 5);
}

TEST_F(HostileNats, ATenantSubscribesToNothingButItsOwn) {
  ASSERT_TRUE(have_tenants()) << "corral token create made no NATS credentials";
  observer a;
  auto conn = alice(&a);
  ASSERT_TRUE(conn);
  std::vector<std::unique_ptr<bus::subscription>> subs;
  for (const auto& subject : {std::string(">"), std::string("corral.v1.bob.>"),
                              std::string("corral.v1.*.sbx.*.out.>"), std::string("$JS.>")}) {
    auto s = conn->subscribe(subject, "", a.recorder("sniff"));
    ASSERT_TRUE(s) << s.error().message;
    subs.push_back(std::move(s.value()));
    EXPECT_TRUE(a.wait_error("Permissions Violation for Subscription to \"" + subject + "\""))
        << "the server took alice's subscription to " << subject;
  }
  // Inboxes are any client's own (in its tenant's account): alice may subscribe to one that
  // bob's client would use in his, and must receive nothing of his.
  auto inbox = conn->subscribe("_INBOX.bob.>", "", a.recorder("sniff"));
  ASSERT_TRUE(inbox) << inbox.error().message;
  subs.push_back(std::move(inbox.value()));
  auto own = conn->subscribe("corral.v1.alice.sbx.*.out.>", "", a.recorder("own"));
  ASSERT_TRUE(own) << own.error().message;
  ASSERT_TRUE(conn->flush(5000));

  // Bob's traffic: a sandbox, an exec with output, his replies.
  const auto sb = create("bob");
  auto r = up_->corral("bob", {"exec", sb, "--", "sh", "-c", "echo bob-secret"});
  EXPECT_EQ(r.out, "bob-secret\n") << r.err;
  // Barrier: an executor's marker on alice's own subject comes after all of that.
  auto ex = executor();
  ASSERT_TRUE(ex);
  ASSERT_TRUE(ex->publish("corral.v1.alice.sbx.sb-marker.out.ex-marker", "m", 1));
  ASSERT_TRUE(ex->flush(5000));
  ASSERT_TRUE(a.wait_received("own corral.v1.alice.sbx.sb-marker.out.ex-marker"));
  const auto sniffed = a.received_with("sniff");
  EXPECT_TRUE(sniffed.empty()) << "alice saw " << sniffed.size() << " messages, the first: "
                               << sniffed.front();
  (void)up_->corral("bob", {"sandbox", "rm", sb});
}

TEST_F(HostileNats, ATenantCannotActOnAnotherTenantsSandbox) {
  ASSERT_TRUE(have_tenants()) << "corral token create made no NATS credentials";
  const auto sb = create("bob");
  observer a;
  auto conn = alice(&a);
  ASSERT_TRUE(conn);
  // Alice knows bob's sandbox id. A file write and an exec on bob's subjects:
  std::vector<uint8_t> empty;
  for (const auto& op : {"exec", "fs.write", "terminate", "info"}) {
    auto r = conn->request(subjects::sandbox_op("bob", sb, op), nullptr, 0, 2000);
    EXPECT_FALSE(r) << op << " on bob's sandbox was answered";
    EXPECT_TRUE(a.wait_error("Permissions Violation for Publish to \"corral.v1.bob.sbx." + sb +
                             "." + op + "\""))
        << op;
  }
  // Through the CLI, claiming to be bob with alice's credentials:
  auto as_bob = test::run({test::bin("corral"), "--nats", up_->nats_url(), "--tenant", "bob",
                           "--nats-creds", alice_seed_, "exec", sb, "--", "touch", "/tmp/pwned"},
                          {}, 60s);
  EXPECT_NE(as_bob.exit_code, 0) << "alice ran a process in bob's sandbox";
  auto check = up_->corral("bob", {"exec", sb, "--", "sh", "-c", "test -e /tmp/pwned && echo pwned || echo clean"});
  EXPECT_EQ(check.out, "clean\n") << check.err;
  auto info = up_->corral("bob", {"sandbox", "info", sb});
  EXPECT_NE(info.out.find("running"), std::string::npos) << info.out << info.err;
  (void)up_->corral("bob", {"sandbox", "rm", sb});
}

TEST_F(HostileNats, OnlyExecutorsPublishOutputExitsAndResults) {
  ASSERT_TRUE(have_tenants()) << "corral token create made no NATS credentials";
  observer a, b;
  auto conn = alice(&a);
  auto listener = bob(&b);
  ASSERT_TRUE(conn && listener);
  const std::string bob_out = subjects::output("bob", "sb-victim", "ex-victim");
  auto watch = listener->subscribe(bob_out, "", b.recorder("bob"));
  ASSERT_TRUE(watch) << watch.error().message;
  ASSERT_TRUE(listener->flush(5000));
  const std::string own_out = subjects::output("alice", "sb-mine", "ex-mine");
  auto chunk = forged_chunk("ex-victim", "forged bytes");
  auto exit = forged_exit("ex-victim");
  for (const auto& subject : {bob_out, own_out}) {
    ASSERT_TRUE(conn->publish(subject, chunk.data(), chunk.size()));
    ASSERT_TRUE(conn->publish(subject, exit.data(), exit.size()));
    EXPECT_TRUE(a.wait_error("Permissions Violation for Publish to \"" + subject + "\""))
        << "alice published on " << subject;
  }
  for (const auto& subject : {subjects::results("alice", "b1"), subjects::results("bob", "b1"),
                              subjects::heartbeat("node-x")}) {
    ASSERT_TRUE(conn->publish(subject, chunk.data(), chunk.size()));
    EXPECT_TRUE(a.wait_error("Permissions Violation for Publish to \"" + subject + "\""))
        << "alice published on " << subject;
  }
  ASSERT_TRUE(conn->flush(5000));
  auto ex = executor();
  ASSERT_TRUE(ex);
  ASSERT_TRUE(ex->publish(bob_out, "m", 1));
  ASSERT_TRUE(ex->flush(5000));
  ASSERT_TRUE(b.wait_received("bob " + bob_out));
  EXPECT_EQ(b.received_with("bob").size(), 1u) << "bob's output subject got alice's forgeries";
}

TEST_F(HostileNats, ATenantCannotJoinTheExecutorsQueueGroups) {
  ASSERT_TRUE(have_tenants()) << "corral token create made no NATS credentials";
  observer a;
  auto conn = alice(&a);
  ASSERT_TRUE(conn);
  // One at a time: nats.c keeps only the server's last error text. (The server's words go on:
  // ' using queue "..."'.)
  auto steal = conn->subscribe(subjects::create_any_tenant("default"),
                               subjects::create_queue_group("default"), a.recorder("steal"));
  ASSERT_TRUE(steal) << steal.error().message;
  EXPECT_TRUE(a.wait_error("Permissions Violation for Subscription to \"" +
                           subjects::create_any_tenant("default") + "\""))
      << a.all_errors();
  auto run = conn->subscribe(subjects::run_any_tenant("default"),
                             subjects::run_queue_group("default"), a.recorder("steal"));
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_TRUE(a.wait_error("Permissions Violation for Subscription to \"" +
                           subjects::run_any_tenant("default") + "\""))
      << a.all_errors();
  // Bob's creates all reach an executor (a queue member of alice's would take its share).
  std::vector<std::string> made;
  for (int i = 0; i < 4; ++i) {
    auto r = up_->corral("bob", {"sandbox", "create", "--timeout", "120"}, {}, 60s);
    EXPECT_EQ(r.exit_code, 0) << "create " << i << ": " << r.err;
    if (r.exit_code == 0) made.push_back(trim(r.out));
  }
  EXPECT_TRUE(a.received_with("steal").empty()) << "alice received bob's create requests";
  for (const auto& sb : made) (void)up_->corral("bob", {"sandbox", "rm", sb});
}

TEST_F(HostileNats, ATenantHasNoJetStreamApiAndReadsItsResultsThroughTheExecutors) {
  ASSERT_TRUE(have_tenants()) << "corral token create made no NATS credentials";
  // Bob's streams exist once he has set them up.
  observer a, b;
  auto conn_b = bob(&b);
  ASSERT_TRUE(conn_b);
  auto setup = conn_b->request(subjects::jobs_setup("bob"), nullptr, 0, 30000);
  ASSERT_TRUE(setup) << setup.error().message;
  auto conn = alice(&a);
  ASSERT_TRUE(conn);
  for (const auto& subject :
       {std::string("$JS.API.INFO"), std::string("$JS.API.STREAM.NAMES"),
        std::string("$JS.API.STREAM.LIST"), "$JS.API.STREAM.PURGE." + subjects::jobs_stream("bob"),
        "$JS.API.STREAM.DELETE." + subjects::results_stream("bob"),
        "$JS.API.STREAM.DELETE." + subjects::jobs_stream("alice"),
        "$JS.API.CONSUMER.CREATE." + subjects::results_stream("bob"),
        "$JS.API.CONSUMER.NAMES." + subjects::jobs_stream("bob"),
        // Not even on its own results: a consumer's deliver subject would be the tenant's to
        // choose, in the executors' account.
        "$JS.API.CONSUMER.CREATE." + subjects::results_stream("alice"),
        "$JS.API.CONSUMER.DURABLE.CREATE." + subjects::results_stream("alice") + ".d",
        "$JS.API.STREAM.INFO." + subjects::results_stream("alice")}) {
    auto r = conn->request(subject, "{}", 2, 2000);
    EXPECT_FALSE(r) << subject << " was answered";
    EXPECT_TRUE(a.wait_error("Permissions Violation for Publish to \"" + subject + "\""))
        << subject;
  }
  // Alice's own queue works end to end (setup, publish, read her results).
  const std::string problems = up_->data() + "/alice-problems.jsonl";
  {
    std::ofstream out(problems);
    out << R"({"id": "p1", "language": "python", "source": "def f(x): return x + 1", "tests": "assert f(1) == 2"})"
        << "\n";
  }
  auto sweep = up_->corral("alice", {"sweep", problems, "--out", up_->data() + "/alice.jsonl", "--queue"});
  EXPECT_EQ(sweep.exit_code, 0) << sweep.err;
  // Bob's streams are untouched.
  auto ex = executor();
  ASSERT_TRUE(ex);
  std::string why;
  auto js = bus::jetstream::open(*ex, &why);
  ASSERT_TRUE(js) << why;
  EXPECT_TRUE(js->stream_info(subjects::jobs_stream("bob")));
  EXPECT_TRUE(js->stream_info(subjects::results_stream("bob")));
}

// A batch's stored results, read as its tenant (one ResultsRead, up to its first page).
std::vector<std::vector<uint8_t>> read_results(bus::connection& c, const std::string& tenant,
                                               const std::string& batch) {
  flatbuffers::FlatBufferBuilder fbb;
  auto bid = fbb.CreateString(batch);
  fbb.Finish(wire::CreateResultsRead(fbb, bid, 1, 0), wire::ResultsReadIdentifier());
  auto req = wire::release(fbb);
  auto replies = c.request_many(subjects::results_read(tenant), req.data(), req.size(), 5000, 10000);
  std::vector<std::vector<uint8_t>> out;
  for (auto& m : replies.value()) {
    if (wire::verify<wire::Ack>(m.data.data(), m.data.size()) != nullptr) break;
    if (wire::verify<wire::JobResult>(m.data.data(), m.data.size()) != nullptr)
      out.push_back(std::move(m.data));
  }
  return out;
}

std::vector<uint8_t> job(const std::string& id, const std::string& batch, const std::string& src) {
  flatbuffers::FlatBufferBuilder fbb;
  auto job_id = fbb.CreateString(id);
  auto batch_id = fbb.CreateString(batch);
  auto lang = fbb.CreateString("python");
  auto source = fbb.CreateString(src);
  wire::JobBuilder b(fbb);
  b.add_job_id(job_id);
  b.add_batch_id(batch_id);
  b.add_language(lang);
  b.add_source(source);
  b.add_timeout_ms(30000);
  fbb.Finish(b.Finish(), wire::JobIdentifier());
  return wire::release(fbb);
}

TEST_F(HostileNats, ATenantCannotPreemptAnotherTenantsJobIds) {
  ASSERT_TRUE(have_tenants()) << "corral token create made no NATS credentials";
  observer a, b;
  auto conn_a = alice(&a);
  auto conn_b = bob(&b);
  ASSERT_TRUE(conn_a && conn_b);
  for (auto* c : {conn_a.get(), conn_b.get()}) {
    const std::string tenant = c == conn_a.get() ? "alice" : "bob";
    auto setup = c->request(subjects::jobs_setup(tenant), nullptr, 0, 30000);
    ASSERT_TRUE(setup) << setup.error().message;
  }
  std::string why;
  auto js_a = bus::jetstream::publisher(*conn_a, &why);
  ASSERT_TRUE(js_a) << why;
  auto js_b = bus::jetstream::publisher(*conn_b, &why);
  ASSERT_TRUE(js_b) << why;
  // Alice queues a job of hers under the id bob's next job will have.
  auto mine = job("j-victim", "ba", "print('alice')");
  auto pa = js_a->publish(subjects::jobs("alice", "default"), mine.data(), mine.size(), "bob.j-victim");
  ASSERT_TRUE(pa) << pa.error().message;
  auto theirs = job("j-victim", "bb", "print('bob')");
  auto pb = js_b->publish(subjects::jobs("bob", "default"), theirs.data(), theirs.size(), "bob.j-victim");
  ASSERT_TRUE(pb) << pb.error().message;
  EXPECT_FALSE(pb.value().duplicate) << "bob's job was dropped as a duplicate of alice's";
  // And it runs: bob reads its result back (through the executors: corral.v1.bob.read.results).
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  bool got = false;
  while (!got && std::chrono::steady_clock::now() < deadline) {
    got = !read_results(*conn_b, "bob", "bb").empty();
  }
  EXPECT_TRUE(got) << "bob's job never produced a result";
}

// Whatever answers a request publishes onto the reply subject the requester chose, and NATS
// permissions never check it: the server's own answers (a JetStream publish ack, "no responders")
// aimed at another tenant's result or job subjects were stored in that tenant's streams. In a
// tenant's own account they reach nothing of anyone else.
TEST_F(HostileNats, TheServersAnswersStayInTheTenantsOwnAccount) {
  ASSERT_TRUE(have_tenants()) << "corral token create made no NATS credentials";
  observer a, b;
  auto conn_a = alice(&a);
  auto conn_b = bob(&b);
  ASSERT_TRUE(conn_a && conn_b);
  for (const auto& [c, t] : {std::pair{conn_a.get(), "alice"}, std::pair{conn_b.get(), "bob"}}) {
    auto setup = c->request(subjects::jobs_setup(t), nullptr, 0, 30000);
    ASSERT_TRUE(setup) << setup.error().message;
  }
  const std::string victim_results = subjects::results("bob", "victim");
  const std::string victim_jobs = subjects::jobs("bob", "default");
  auto watch = conn_b->subscribe(victim_results, "", b.recorder("bob"));
  ASSERT_TRUE(watch) << watch.error().message;
  ASSERT_TRUE(conn_b->flush(5000));
  auto ex = executor();
  ASSERT_TRUE(ex);
  std::string why;
  auto js = bus::jetstream::open(*ex, &why);
  ASSERT_TRUE(js) << why;
  auto before_results = js->stream_info(subjects::results_stream("bob"));
  auto before_jobs = js->stream_info(subjects::jobs_stream("bob"));
  ASSERT_TRUE(before_results && before_jobs);
  // Alice's job published with bob's result subject as its reply (the stream's ack goes there),
  // and a request nobody answers with bob's job queue as its reply (the server's no-responders).
  auto mine = job("j-reflect", "ra", "print('alice')");
  ASSERT_TRUE(conn_a->publish(subjects::jobs("alice", "default"), victim_results, mine.data(), mine.size()));
  ASSERT_TRUE(conn_a->publish(subjects::sandbox_op("alice", "sb-nobody", "info"), victim_jobs, "x", 1));
  // Barrier: an ack alice waits for comes after the first one; then an executor's result for
  // bob, stored and delivered after anything the reflections could have put there.
  auto js_a = bus::jetstream::publisher(*conn_a, &why);
  ASSERT_TRUE(js_a) << why;
  auto second = js_a->publish(subjects::jobs("alice", "default"), mine.data(), mine.size(), "alice.second");
  ASSERT_TRUE(second) << second.error().message;
  ASSERT_TRUE(conn_a->flush(5000));
  auto marker = js->publish(victim_results, "m", 1, "bob.marker");
  ASSERT_TRUE(marker) << marker.error().message;
  ASSERT_TRUE(b.wait_received("bob " + victim_results));
  EXPECT_EQ(b.received_with("bob").size(), 1u) << "the server published alice's answers on bob's subject";
  auto after_results = js->stream_info(subjects::results_stream("bob"));
  auto after_jobs = js->stream_info(subjects::jobs_stream("bob"));
  ASSERT_TRUE(after_results && after_jobs);
  EXPECT_EQ(after_results.value().messages, before_results.value().messages + 1)
      << "bob's results stream stored something of alice's";
  EXPECT_EQ(after_jobs.value().last_seq, before_jobs.value().last_seq)
      << "bob's job queue stored something of alice's";
}

TEST_F(HostileNats, ExecutorsAnswerOnlyToInboxes) {
  ASSERT_TRUE(have_tenants()) << "corral token create made no NATS credentials";
  // Alice has output of her own stored; she asks the executor to replay it onto bob's output
  // subject (the reply subject of a request is the requester's to choose).
  const auto sb = create("alice");
  auto r = up_->corral("alice", {"exec", "--id", "ex-replayed", sb, "--", "echo", "forged via replay"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  observer a, b;
  auto conn = alice(&a);
  auto listener = bob(&b);
  ASSERT_TRUE(conn && listener);
  const std::string bob_out = subjects::output("bob", "sb-victim", "ex-victim");
  auto watch = listener->subscribe(bob_out, "", b.recorder("bob"));
  ASSERT_TRUE(watch) << watch.error().message;
  ASSERT_TRUE(listener->flush(5000));
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString("ex-replayed");
  fbb.Finish(wire::CreateReplayRequest(fbb, id, 0), wire::ReplayRequestIdentifier());
  auto replay = wire::release(fbb);
  ASSERT_TRUE(conn->publish(subjects::sandbox_op("alice", sb, "replay"), bob_out, replay.data(),
                            replay.size()));
  // Barrier: the sandbox answers alice's next request after handling the replay.
  auto info = conn->request(subjects::sandbox_op("alice", sb, "info"), nullptr, 0, 10000);
  ASSERT_TRUE(info) << info.error().message;
  auto ex = executor();
  ASSERT_TRUE(ex);
  ASSERT_TRUE(ex->publish(bob_out, "m", 1));
  ASSERT_TRUE(ex->flush(5000));
  ASSERT_TRUE(b.wait_received("bob " + bob_out));
  EXPECT_EQ(b.received_with("bob").size(), 1u)
      << "the executor replayed alice's output onto bob's output subject";
  (void)up_->corral("alice", {"sandbox", "rm", sb});
}

// nats-server keeps a reply mapping for each request that crosses an import until it is
// answered (singleton) or its threshold passes (streamed). A request nobody answers must not pin
// the server's memory: 200,000 of them, publishes to the tenant's job subject before it has a
// stream (the executors used to listen there without answering) and requests about a sandbox
// that does not exist, leave the server's memory about where it was. (With one 15-minute
// streamed export for everything, each held about 0.7 KB for 15 minutes: some 130 MB here.)
TEST_F(HostileNats, UnansweredRequestsDoNotPinTheServersMemory) {
  ASSERT_TRUE(have_tenants()) << "corral token create made no NATS credentials";
  observer a;
  auto conn = alice(&a);
  ASSERT_TRUE(conn);
  std::ifstream pid_file(up_->data() + "/nats/nats-server.pid");
  long pid = 0;
  ASSERT_TRUE(pid_file >> pid) << "no nats-server pid file";
  auto rss_kib = [pid] {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return 0L;
  };
  // A first round lets the server's allocator reach its working size.
  const std::string unknown_sandbox = subjects::sandbox_op("alice", wire::new_id("sb-"), "info");
  auto flood = [&](int n) {
    const std::string body = "x";
    for (int i = 0; i < n; ++i) {
      const std::string reply = "_INBOX.alice.flood." + std::to_string(i);
      const std::string& subject = i % 2 == 0 ? subjects::jobs("alice", "default") : unknown_sandbox;
      ASSERT_TRUE(conn->publish(subject, reply, body.data(), body.size()));
      if (i % 5000 == 4999) {
        ASSERT_TRUE(conn->flush(30000));
      }
    }
    ASSERT_TRUE(conn->flush(30000));
  };
  flood(20000);
  const long before = rss_kib();
  ASSERT_GT(before, 0);
  flood(200000);
  const long after = rss_kib();
  EXPECT_LT(after - before, 40L * 1024) << "nats-server grew from " << before << " to " << after
                                        << " KiB holding reply mappings nobody answers";
}

TEST_F(HostileNats, ARevokedTenantIsShutOut) {
  const std::string seed = up_->add_tenant("dave");
  ASSERT_FALSE(seed.empty());
  // dave's key, kept by dave (the deployment's copy goes with the revocation).
  const std::string kept = up_->data() + "/dave-kept.nk";
  fs::copy_file(seed, kept);
  ASSERT_EQ(::chmod(kept.c_str(), 0600), 0);
  std::mutex mu;
  std::condition_variable cv;
  bool closed = false;
  bus::options o;
  o.urls = {up_->nats_url()};
  o.nkey_seed_file = kept;
  o.max_reconnect = 0;
  o.delivery_pool_threads = 0;
  o.on_closed = [&] {
    std::lock_guard<std::mutex> lock(mu);
    closed = true;
    cv.notify_all();
  };
  std::string why;
  auto live = bus::connection::connect(o, &why);
  ASSERT_TRUE(live) << why;
  auto r = test::run({test::bin("corral"), "--nats", up_->nats_url(), "token", "revoke", "--tenant",
                      "dave", "--data", up_->data()},
                     {}, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(seed)) << "the revoked seed file is still in the deployment";
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, 30s, [&] { return closed; }))
        << "the revoked tenant's connection stayed open";
  }
  auto again = connect(up_->nats_url(), kept, "", nullptr, &why);
  EXPECT_EQ(again, nullptr) << "a revoked key still connects";
  std::ifstream tokens(up_->data() + "/tokens");
  std::string all((std::istreambuf_iterator<char>(tokens)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all.find(" dave"), std::string::npos) << "dave's gateway token is still there";
}

// A data directory someone else made (e.g. under /tmp, before the operator) is refused: its
// owner could otherwise add identities, read seeds, or swap files under corral's feet.
TEST(HostileNatsSetup, ADataDirectoryAnotherUserPreparedIsRefused) {
  char tmpl[] = "/tmp/corral-prepared-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  ASSERT_EQ(::chmod(tmpl, 01777), 0);  // a shared, sticky directory, as /tmp is
  const std::string data = std::string(tmpl) + "/var";
  std::string why;
  auto key = bus::generate_user_nkey(&why);
  ASSERT_TRUE(key) << why;
  // As nobody: the data directory, and a registry that makes the attacker an admin.
  auto made = test::run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
                         "mkdir -p '" + data + "/auth' && echo 'admin evil " + key->public_key +
                             "' > '" + data + "/auth/identities'"},
                        {}, 30s);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto r = test::run({test::bin("corral"), "token", "create", "--tenant", "carol", "--data", data},
                     {}, 60s);
  EXPECT_NE(r.exit_code, 0) << "corral used a data directory that another user owns";
  EXPECT_NE(r.err.find("another user"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(data + "/auth/auth.conf")) << "rendered the attacker's registry";
  auto up = test::run({test::bin("corral"), "up", "--data", data, "--port",
                       std::to_string(test::free_port()), "--gateway-port", "0"},
                      {}, 60s);
  EXPECT_NE(up.exit_code, 0) << "corral up started on another user's data directory";
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

// -- the keys themselves ---------------------------------------------------------------------

TEST(NKeys, SeedsRoundTripAndCorruptionIsRefused) {
  std::string why;
  auto k = bus::generate_user_nkey(&why);
  ASSERT_TRUE(k) << why;
  EXPECT_EQ(k->seed.substr(0, 2), "SU");
  EXPECT_EQ(k->public_key.substr(0, 1), "U");
  EXPECT_EQ(k->seed.size(), 58u);
  EXPECT_EQ(k->public_key.size(), 56u);
  auto again = bus::user_nkey_from_seed(k->seed, &why);
  ASSERT_TRUE(again) << why;
  EXPECT_EQ(again->public_key, k->public_key);
  std::string bad = k->seed;
  bad[10] = bad[10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(bus::user_nkey_from_seed(bad, &why)) << "a corrupted seed was taken";
  EXPECT_FALSE(bus::valid_user_public_key(bad));
  EXPECT_TRUE(bus::valid_user_public_key(k->public_key));
}

// A fresh user nkey written to <a new temporary directory>/k.nk.
struct temp_key {
  std::string dir, path;
  std::optional<bus::user_nkey> key;
  temp_key() {
    char tmpl[] = "/tmp/corral-nkey-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir = tmpl;
    path = dir + "/k.nk";
    std::string why;
    key = bus::generate_user_nkey(&why);
    if (key && !bus::write_user_nkey_file(path, *key, &why)) key.reset();
  }
  ~temp_key() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

TEST(NKeys, ASeedFileOthersMayReadIsRefused) {
  temp_key t;
  ASSERT_TRUE(t.key) << "cannot make a key file";
  const std::string& path = t.path;
  auto& k = t.key;
  std::string why;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(bus::read_user_nkey_file(path, &why)) << why;
  EXPECT_FALSE(bus::write_user_nkey_file(path, *k, &why)) << "an existing key was replaced";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_FALSE(bus::read_user_nkey_file(path, &why));
  EXPECT_NE(why.find("read by others"), std::string::npos) << why;
}

// A client with an identity that reaches a server asking for none (a misconfigured or an
// impostor server: it sends no nonce) refuses it, saying why, instead of crashing on the
// missing nonce.
TEST(NKeys, AServerThatAsksForNoCredentialsIsRefused) {
  temp_key t;
  ASSERT_TRUE(t.key) << "cannot make a key file";
  const std::string& path = t.path;
  std::string why;
  test::nats_server_process open_server;
  ASSERT_TRUE(open_server.start()) << open_server.error();
  bus::options o;
  o.urls = {open_server.url()};
  o.nkey_seed_file = path;
  o.max_reconnect = 0;
  o.delivery_pool_threads = 0;
  EXPECT_EQ(bus::connection::connect(o, &why), nullptr) << "connected to a server without auth";
  EXPECT_NE(why.find("asks for no credentials"), std::string::npos) << why;
}

}  // namespace
}  // namespace corral
