// bus/jetstream: streams, deduplicated publishes, durable pull consumers and readers, against a
// real nats-server with JetStream (tests/support/nats_server.hpp).
// Nothing here sleeps to wait for an event: every wait is a fetch (or a call) with a deadline.
// Redelivery tests use ack waits of a few hundred milliseconds and assert with deadlines.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bus/connection.hpp"
#include "bus/jetstream.hpp"
#include "tests/support/nats_server.hpp"

namespace {

using namespace std::chrono_literals;
namespace errc = corral::bus::errc;
using corral::bus::connection;
using corral::bus::consumer_options;
using corral::bus::jetstream;
using corral::bus::js_message;
using corral::bus::pull_consumer;
using corral::bus::stream_config;
using corral::test::nats_server_process;
using steady = std::chrono::steady_clock;

// Longest any single event may take to show up before a test gives up.
constexpr auto event_deadline = 10s;

std::string text(const js_message& m) { return std::string(m.data().begin(), m.data().end()); }

int64_t ms_left(steady::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
}

// Fetches until `n` messages arrived or the deadline passed; returns what arrived.
std::vector<js_message> fetch_n(pull_consumer& c, std::size_t n,
                                std::chrono::milliseconds within = event_deadline) {
  std::vector<js_message> got;
  const auto deadline = steady::now() + within;
  while (got.size() < n) {
    int64_t left = ms_left(deadline);
    if (left <= 0) break;
    auto r = c.fetch(static_cast<int>(n - got.size()), std::min<int64_t>(left, 1000));
    EXPECT_TRUE(r) << r.error().message;
    if (!r) break;
    for (auto& m : r.value()) got.push_back(std::move(m));
  }
  return got;
}

// Everything that arrives during `window` (fetching with short waits): for "nothing comes".
std::vector<js_message> fetch_during(pull_consumer& c, std::chrono::milliseconds window,
                                     int64_t fetch_wait_ms = 200) {
  std::vector<js_message> got;
  const auto deadline = steady::now() + window;
  while (true) {
    int64_t left = ms_left(deadline);
    if (left <= 0) break;
    auto r = c.fetch(8, std::min<int64_t>(left, fetch_wait_ms));
    EXPECT_TRUE(r) << r.error().message;
    if (!r) break;
    for (auto& m : r.value()) got.push_back(std::move(m));
  }
  return got;
}

class bus_jetstream : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.start()) << server_.error(); }

  corral::bus::options base_options() {
    corral::bus::options o;
    o.urls = {server_.url()};
    o.name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    return o;
  }

  std::unique_ptr<connection> connect(corral::bus::options o) {
    std::string error;
    auto c = connection::connect(o, &error);
    EXPECT_NE(c, nullptr) << error;
    return c;
  }
  std::unique_ptr<connection> connect() { return connect(base_options()); }

  std::unique_ptr<jetstream> open(connection& c) {
    std::string error;
    auto js = jetstream::open(c, &error);
    EXPECT_NE(js, nullptr) << error;
    return js;
  }

  static stream_config work_queue(const std::string& name, const std::string& subject) {
    stream_config cfg;
    cfg.name = name;
    cfg.subjects = {subject};
    cfg.work_queue = true;
    return cfg;
  }

  static consumer_options ack_wait(int64_t ms) {
    consumer_options o;
    o.ack_wait_ms = ms;
    return o;
  }

  // Publishes "<prefix>-<i>" with msg id "<prefix>-<i>" on subject; returns the sequences.
  static std::vector<uint64_t> publish_n(jetstream& js, const std::string& subject,
                                         const std::string& prefix, int n) {
    std::vector<uint64_t> seqs;
    for (int i = 0; i < n; ++i) {
      std::string body = prefix + "-" + std::to_string(i);
      auto a = js.publish(subject, body.data(), body.size(), body);
      EXPECT_TRUE(a) << a.error().message;
      if (!a) break;
      EXPECT_FALSE(a.value().duplicate);
      seqs.push_back(a.value().sequence);
    }
    return seqs;
  }

  nats_server_process server_;
};

TEST_F(bus_jetstream, EnsureStreamCreatesUpdatesAndIsIdempotent) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);

  auto missing = js->stream_info("ENS");
  EXPECT_EQ(missing.error().code, errc::invalid) << missing.error().message;
  EXPECT_NE(missing.error().message.find("10059"), std::string::npos) << missing.error().message;

  stream_config cfg;
  cfg.name = "ENS";
  cfg.subjects = {"ens.a.>"};
  ASSERT_TRUE(js->ensure_stream(cfg)) << "create";
  auto s = js->ensure_stream(cfg);
  ASSERT_TRUE(s) << "again, unchanged: " << s.error().message;
  auto info = js->stream_info("ENS");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info.value().messages, 0u);

  // Not yet held: nobody answers a publish on ens.b.
  auto before = js->publish("ens.b.1", "x", 1, "");
  EXPECT_EQ(before.error().code, errc::no_responders) << before.error().message;

  // An update: a second subject, a message cap.
  cfg.subjects = {"ens.a.>", "ens.b.>"};
  cfg.max_msgs = 2;
  s = js->ensure_stream(cfg);
  ASSERT_TRUE(s) << "update: " << s.error().message;
  auto after = js->publish("ens.b.1", "x", 1, "");
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after.value().stream, "ENS");
  ASSERT_TRUE(js->publish("ens.a.1", "y", 1, ""));
  ASSERT_TRUE(js->publish("ens.a.2", "z", 1, ""));
  info = js->stream_info("ENS");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info.value().messages, 2u) << "max_msgs of the update applies";
  EXPECT_EQ(info.value().last_seq, 3u);
  EXPECT_EQ(info.value().first_seq, 2u);
  s = js->ensure_stream(cfg);
  EXPECT_TRUE(s) << "again after the update: " << s.error().message;

  ASSERT_TRUE(js->delete_stream("ENS"));
  EXPECT_EQ(js->stream_info("ENS").error().code, errc::invalid);
  EXPECT_EQ(js->delete_stream("ENS").error().code, errc::invalid);
}

TEST_F(bus_jetstream, EnsureStreamRefusesAChangeTheServerCannotMake) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  stream_config limits;
  limits.name = "RET";
  limits.subjects = {"ret.>"};
  ASSERT_TRUE(js->ensure_stream(limits));
  ASSERT_TRUE(js->publish("ret.1", "kept", 4, "k1"));

  stream_config wq = limits;
  wq.work_queue = true;
  auto s = js->ensure_stream(wq);
  EXPECT_EQ(s.error().code, errc::invalid) << s.error().message;
  EXPECT_NE(s.error().message.find("cannot be changed"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("RET"), std::string::npos) << s.error().message;

  stream_config memory = limits;
  memory.file_storage = false;
  s = js->ensure_stream(memory);
  EXPECT_EQ(s.error().code, errc::invalid) << s.error().message;

  // Left as it was.
  auto info = js->stream_info("RET");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info.value().messages, 1u);
  EXPECT_TRUE(js->ensure_stream(limits));

  // Another stream may not take subjects this one holds.
  stream_config overlap;
  overlap.name = "RET2";
  overlap.subjects = {"ret.x"};
  s = js->ensure_stream(overlap);
  EXPECT_EQ(s.error().code, errc::invalid) << s.error().message;
}

TEST_F(bus_jetstream, ConcurrentEnsureStreamFromTwoConnectionsAllSucceed) {
  auto c1 = connect();
  auto c2 = connect();
  ASSERT_NE(c1, nullptr);
  ASSERT_NE(c2, nullptr);
  auto js1 = open(*c1);
  auto js2 = open(*c2);
  ASSERT_NE(js1, nullptr);
  ASSERT_NE(js2, nullptr);

  // Rounds of executors starting at once: the first creates, the others find it (same
  // configuration) or update it (a different, compatible one).
  for (int round = 0; round < 3; ++round) {
    stream_config cfg =
        work_queue("CONC" + std::to_string(round), "conc" + std::to_string(round) + ".>");
    cfg.duplicate_window_ms = 60000;
    std::promise<void> go;
    std::shared_future<void> start = go.get_future().share();
    std::vector<std::future<corral::bus::status>> calls;
    for (int t = 0; t < 8; ++t) {
      jetstream* js = t % 2 == 0 ? js1.get() : js2.get();
      stream_config mine = cfg;
      if (t % 4 == 3) mine.max_msgs = 1000000;  // some differ: they update
      calls.push_back(std::async(std::launch::async, [js, mine, start] {
        start.wait();
        return js->ensure_stream(mine);
      }));
    }
    go.set_value();
    for (auto& f : calls) {
      auto s = f.get();
      EXPECT_TRUE(s) << "round " << round << ": " << s.error().message;
    }
    auto a = js1->publish("conc" + std::to_string(round) + ".x", "x", 1, "only");
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a.value().stream, cfg.name);
    EXPECT_EQ(a.value().sequence, 1u);
  }
}

TEST_F(bus_jetstream, PublishAcksWithStreamAndSequence) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  ASSERT_TRUE(js->ensure_stream(work_queue("PUB", "pub.>")));
  for (uint64_t i = 1; i <= 3; ++i) {
    std::string body = "m" + std::to_string(i);
    auto a = js->publish("pub.x", body.data(), body.size(), "");
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a.value().stream, "PUB");
    EXPECT_EQ(a.value().sequence, i);
    EXPECT_FALSE(a.value().duplicate);
  }
  auto empty = js->publish("pub.empty", nullptr, 0, "");
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_EQ(empty.value().sequence, 4u);
  auto info = js->stream_info("PUB");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info.value().messages, 4u);
  EXPECT_EQ(info.value().first_seq, 1u);
  EXPECT_EQ(info.value().last_seq, 4u);
  EXPECT_GT(info.value().bytes, 0u);
}

TEST_F(bus_jetstream, DuplicateMsgIdInsideTheWindowIsStoredOnce) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  stream_config cfg;
  cfg.name = "DUP";
  cfg.subjects = {"dup.>"};
  ASSERT_TRUE(js->ensure_stream(cfg));

  auto first = js->publish("dup.x", "one", 3, "job-1");
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_FALSE(first.value().duplicate);
  auto again = js->publish("dup.x", "two", 3, "job-1");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again.value().duplicate);
  EXPECT_EQ(again.value().sequence, first.value().sequence) << "the first copy's sequence";
  auto other = js->publish("dup.x", "three", 5, "job-2");
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_FALSE(other.value().duplicate);
  EXPECT_EQ(other.value().sequence, first.value().sequence + 1);

  auto info = js->stream_info("DUP");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info.value().messages, 2u);

  auto r = js->reader("DUP", "");
  ASSERT_TRUE(r) << r.error().message;
  auto got = fetch_n(*r.value(), 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(text(got[0]), "one") << "the first copy is the one stored";
  EXPECT_EQ(got[0].msg_id(), "job-1");
  EXPECT_EQ(text(got[1]), "three");
  EXPECT_EQ(got[1].msg_id(), "job-2");
}

TEST_F(bus_jetstream, WorkQueueSharesMessagesBetweenConsumersOfOneDurable) {
  auto c1 = connect();
  auto c2 = connect();
  ASSERT_NE(c1, nullptr);
  ASSERT_NE(c2, nullptr);
  auto js1 = open(*c1);
  auto js2 = open(*c2);
  ASSERT_NE(js1, nullptr);
  ASSERT_NE(js2, nullptr);
  ASSERT_TRUE(js1->ensure_stream(work_queue("WQ", "wq.>")));
  auto a = js1->pull("WQ", "workers", "wq.>", {});
  ASSERT_TRUE(a) << a.error().message;
  auto b = js2->pull("WQ", "workers", "wq.>", {});
  ASSERT_TRUE(b) << b.error().message;

  constexpr int n = 60;
  auto seqs = publish_n(*js1, "wq.job", "job", n);
  ASSERT_EQ(seqs.size(), static_cast<std::size_t>(n));

  // A message held (unacked) by one consumer is not given to the other.
  auto held = fetch_n(*a.value(), 1);
  ASSERT_EQ(held.size(), 1u);
  auto other = fetch_n(*b.value(), 1);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_NE(held[0].stream_sequence(), other[0].stream_sequence());

  std::mutex mu;
  std::map<uint64_t, int> deliveries;  // stream sequence -> times delivered
  std::map<std::string, int> per_consumer;
  auto record = [&](const char* who, js_message& m) {
    ASSERT_TRUE(m.ack()) << "ack";
    std::lock_guard<std::mutex> lock(mu);
    ++deliveries[m.stream_sequence()];
    ++per_consumer[who];
    EXPECT_EQ(m.num_delivered(), 1u);
  };
  record("a", held[0]);
  record("b", other[0]);

  auto work = [&](const char* who, pull_consumer& c) {
    const auto deadline = steady::now() + event_deadline;
    while (ms_left(deadline) > 0) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (deliveries.size() >= static_cast<std::size_t>(n)) return;
      }
      auto r = c.fetch(4, 200);
      ASSERT_TRUE(r) << r.error().message;
      for (auto& m : r.value()) record(who, m);
    }
  };
  std::thread ta(work, "a", std::ref(*a.value()));
  std::thread tb(work, "b", std::ref(*b.value()));
  ta.join();
  tb.join();

  ASSERT_EQ(deliveries.size(), static_cast<std::size_t>(n));
  for (auto& [seq, times] : deliveries) EXPECT_EQ(times, 1) << "sequence " << seq;
  EXPECT_GE(per_consumer["a"], 1);
  EXPECT_GE(per_consumer["b"], 1);
  // Acked work-queue messages are gone.
  auto info = js1->stream_info("WQ");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info.value().messages, 0u);
  auto p = a.value()->pending(5000);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p.value().first, 0u);
  EXPECT_EQ(p.value().second, 0u);
}

TEST_F(bus_jetstream, UnackedMessageIsRedeliveredAfterTheAckWait) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  ASSERT_TRUE(js->ensure_stream(work_queue("RED", "red.>")));
  auto pc = js->pull("RED", "w", "", ack_wait(400));
  ASSERT_TRUE(pc) << pc.error().message;
  auto a = js->publish("red.1", "payload", 7, "red-1");
  ASSERT_TRUE(a) << a.error().message;

  auto first = fetch_n(*pc.value(), 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].subject(), "red.1");
  EXPECT_EQ(text(first[0]), "payload");
  EXPECT_EQ(first[0].msg_id(), "red-1");
  EXPECT_EQ(first[0].stream_sequence(), a.value().sequence);
  EXPECT_EQ(first[0].num_delivered(), 1u);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  EXPECT_LE(std::abs(first[0].timestamp_ms() - now_ms), 60000) << "stored-at time, unix ms";
  auto p = pc.value()->pending(5000);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p.value().first, 0u);
  EXPECT_EQ(p.value().second, 1u);

  // Not acked: it comes again once the ack wait has passed.
  auto second = fetch_n(*pc.value(), 1);
  ASSERT_EQ(second.size(), 1u) << "not redelivered after the ack wait";
  EXPECT_EQ(second[0].stream_sequence(), a.value().sequence);
  EXPECT_EQ(second[0].num_delivered(), 2u);
  EXPECT_EQ(text(second[0]), "payload");
  ASSERT_TRUE(second[0].ack());
  EXPECT_TRUE(second[0].ack()) << "a second ack is a no-op";
  auto later = fetch_during(*pc.value(), 1200ms);
  EXPECT_TRUE(later.empty()) << "redelivered after the ack";
  auto info = js->stream_info("RED");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info.value().messages, 0u);
}

TEST_F(bus_jetstream, InProgressKeepsAMessageFromBeingRedelivered) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  ASSERT_TRUE(js->ensure_stream(work_queue("PRG", "prg.>")));
  constexpr int64_t wait_ms = 1000;
  auto pc = js->pull("PRG", "w", "", ack_wait(wait_ms));
  ASSERT_TRUE(pc) << pc.error().message;
  ASSERT_TRUE(js->publish("prg.1", "long job", 8, ""));
  auto got = fetch_n(*pc.value(), 1);
  ASSERT_EQ(got.size(), 1u);

  // For three ack waits, in_progress() about every 100 ms: never redelivered.
  const auto until = steady::now() + std::chrono::milliseconds(3 * wait_ms);
  while (steady::now() < until) {
    ASSERT_TRUE(got[0].in_progress());
    auto r = pc.value()->fetch(1, 100);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_TRUE(r.value().empty()) << "redelivered although in progress (delivery "
                                 << r.value()[0].num_delivered() << ")";
  }
  // Without it, the ack wait runs out and the message comes again (the control).
  auto again = fetch_n(*pc.value(), 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].stream_sequence(), got[0].stream_sequence());
  EXPECT_EQ(again[0].num_delivered(), 2u);
  EXPECT_TRUE(again[0].ack());
}

TEST_F(bus_jetstream, NakRedeliversAndSettlesTheMessage) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  ASSERT_TRUE(js->ensure_stream(work_queue("NAK", "nak.>")));
  auto pc = js->pull("NAK", "w", "", ack_wait(60000));  // only a nak can bring it back in time
  ASSERT_TRUE(pc) << pc.error().message;
  ASSERT_TRUE(js->publish("nak.1", "n", 1, ""));
  auto got = fetch_n(*pc.value(), 1);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].nak());
  EXPECT_TRUE(got[0].nak()) << "the same settling again is a no-op";
  auto ack_after_nak = got[0].ack();
  EXPECT_EQ(ack_after_nak.error().code, errc::invalid) << ack_after_nak.error().message;
  EXPECT_EQ(got[0].in_progress().error().code, errc::invalid);

  auto again = fetch_n(*pc.value(), 1);
  ASSERT_EQ(again.size(), 1u) << "not redelivered after nak()";
  EXPECT_EQ(again[0].stream_sequence(), got[0].stream_sequence());
  EXPECT_EQ(again[0].num_delivered(), 2u);

  // With a delay: not at once, but after it.
  ASSERT_TRUE(again[0].nak(2000));
  auto early = pc.value()->fetch(1, 300);
  ASSERT_TRUE(early) << early.error().message;
  EXPECT_TRUE(early.value().empty()) << "redelivered before the nak delay";
  auto third = fetch_n(*pc.value(), 1);
  ASSERT_EQ(third.size(), 1u) << "not redelivered after the nak delay";
  EXPECT_EQ(third[0].num_delivered(), 3u);
  EXPECT_TRUE(third[0].ack());
}

TEST_F(bus_jetstream, TermedMessageIsNeverRedelivered) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  ASSERT_TRUE(js->ensure_stream(work_queue("TRM", "trm.>")));
  constexpr int64_t wait_ms = 400;
  auto pc = js->pull("TRM", "w", "", ack_wait(wait_ms));
  ASSERT_TRUE(pc) << pc.error().message;
  auto seqs = publish_n(*js, "trm.x", "t", 2);
  ASSERT_EQ(seqs.size(), 2u);
  auto got = fetch_n(*pc.value(), 2);
  ASSERT_EQ(got.size(), 2u);
  js_message& termed = got[0].stream_sequence() == seqs[0] ? got[0] : got[1];
  ASSERT_EQ(termed.stream_sequence(), seqs[0]);
  ASSERT_TRUE(termed.term());
  EXPECT_EQ(termed.ack().error().code, errc::invalid);

  // The other one, left unacked, comes back after the ack wait (the control); the termed one
  // never does, not during three more ack waits either.
  bool control_back = false;
  const auto deadline = steady::now() + event_deadline;
  while (!control_back && ms_left(deadline) > 0) {
    auto r = pc.value()->fetch(2, 200);
    ASSERT_TRUE(r) << r.error().message;
    for (auto& m : r.value()) {
      ASSERT_NE(m.stream_sequence(), seqs[0]) << "the termed message was redelivered";
      EXPECT_EQ(m.stream_sequence(), seqs[1]);
      control_back = true;
      ASSERT_TRUE(m.ack());
    }
  }
  ASSERT_TRUE(control_back) << "the unacked message was not redelivered";
  auto later = fetch_during(*pc.value(), std::chrono::milliseconds(3 * wait_ms));
  for (auto& m : later) ADD_FAILURE() << "redelivered: sequence " << m.stream_sequence();
  auto p = pc.value()->pending(5000);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p.value().second, 0u) << "nothing awaits an ack";
}

// A work queue with a durable: 4 jobs published, 2 fetched and acked, 2 never fetched; then
// the server goes down (SIGTERM, or kill -9) and comes back on the same port and store.
struct restart_outcome {
  std::set<uint64_t> acked;    // acked before the restart
  std::set<uint64_t> unacked;  // published, never fetched before the restart
  uint64_t stored_after = 0;   // stream messages right after the restart
  int64_t consumers_after = 0;
  std::set<uint64_t> delivered_after;  // everything fetched after it, until quiet
};

restart_outcome run_restart_scenario(nats_server_process& server, const corral::bus::options& o0,
                                     bool crash) {
  restart_outcome out;
  auto o = o0;
  std::mutex mu;
  std::condition_variable cv;
  int reconnects = 0;
  o.on_reconnected = [&] {
    std::lock_guard<std::mutex> lock(mu);
    ++reconnects;
    cv.notify_all();
  };
  std::string error;
  auto c = connection::connect(o, &error);
  EXPECT_NE(c, nullptr) << error;
  if (c == nullptr) return out;
  auto js = jetstream::open(*c, &error);
  EXPECT_NE(js, nullptr) << error;
  if (js == nullptr) return out;
  stream_config cfg;
  cfg.name = "DUR";
  cfg.subjects = {"dur.>"};
  cfg.work_queue = true;
  EXPECT_TRUE(js->ensure_stream(cfg));
  consumer_options co;
  co.ack_wait_ms = 500;
  auto pc = js->pull("DUR", "w", "", co);
  EXPECT_TRUE(pc) << pc.error().message;
  if (!pc) return out;
  std::vector<uint64_t> seqs;
  for (int i = 0; i < 4; ++i) {
    std::string body = "d-" + std::to_string(i);
    auto a = js->publish("dur.job", body.data(), body.size(), body);
    EXPECT_TRUE(a) << a.error().message;
    if (!a) return out;
    seqs.push_back(a.value().sequence);
  }
  auto got = fetch_n(*pc.value(), 2);
  EXPECT_EQ(got.size(), 2u);
  for (auto& m : got) {
    EXPECT_TRUE(m.ack());
    out.acked.insert(m.stream_sequence());
  }
  for (uint64_t s : seqs) {
    if (out.acked.count(s) == 0) out.unacked.insert(s);
  }
  got.clear();

  if (crash) {
    server.kill9();
  } else {
    EXPECT_TRUE(server.stop()) << server.error();
  }
  EXPECT_TRUE(server.restart()) << server.error();
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, event_deadline, [&] { return reconnects >= 1; }))
        << "no reconnect";
  }
  auto info = js->stream_info("DUR");
  EXPECT_TRUE(info) << info.error().message;
  out.stored_after = info.value().messages;
  out.consumers_after = info.value().consumers;

  // Fetch (and ack) until every unacked job came and then nothing more for three ack waits.
  const auto deadline = steady::now() + event_deadline;
  auto all_unacked_seen = [&] {
    for (uint64_t s : out.unacked) {
      if (out.delivered_after.count(s) == 0) return false;
    }
    return true;
  };
  while (!all_unacked_seen() && ms_left(deadline) > 0) {
    auto r = pc.value()->fetch(4, std::min<int64_t>(ms_left(deadline), 500));
    EXPECT_TRUE(r) << r.error().message;
    if (!r) break;
    for (auto& m : r.value()) {
      out.delivered_after.insert(m.stream_sequence());
      EXPECT_TRUE(m.ack());
    }
  }
  for (auto& m : fetch_during(*pc.value(), 1500ms)) {
    out.delivered_after.insert(m.stream_sequence());
    EXPECT_TRUE(m.ack());
  }
  return out;
}

TEST_F(bus_jetstream, AcksAndUnackedMessagesSurviveACleanServerRestart) {
  restart_outcome r = run_restart_scenario(server_, base_options(), /*crash=*/false);
  ASSERT_EQ(r.acked.size(), 2u);
  EXPECT_EQ(r.consumers_after, 1) << "the durable is gone";
  EXPECT_EQ(r.stored_after, 2u) << "acked messages came back, or unacked ones were lost";
  EXPECT_EQ(r.delivered_after, r.unacked) << "exactly the unacked ones are delivered";
}

// What a crash keeps with nats-server 2.9.10: the stream, the durable, every message that was
// not acked. Acks, though, are persisted lazily (within ~5 s here): an ack followed at once by
// kill -9 may be forgotten, and the acked message delivered again (at least once) or left in
// the stream undelivered. Jobs must therefore be idempotent by their msg id (the job runner's
// results are deduplicated by it). A server that persists acks at once would keep acked
// messages gone; 2.9.10 does not, so that is not asserted here.
TEST_F(bus_jetstream, StreamDurableAndUnackedMessagesSurviveAServerKill9) {
  restart_outcome r = run_restart_scenario(server_, base_options(), /*crash=*/true);
  ASSERT_EQ(r.acked.size(), 2u);
  EXPECT_EQ(r.consumers_after, 1) << "the durable is gone";
  EXPECT_GE(r.stored_after, r.unacked.size()) << "unacked messages were lost";
  EXPECT_LE(r.stored_after, r.acked.size() + r.unacked.size());
  for (uint64_t s : r.unacked)
    EXPECT_EQ(r.delivered_after.count(s), 1u) << "unacked sequence " << s << " never came back";
  int resurrected = 0;
  for (uint64_t s : r.acked) resurrected += static_cast<int>(r.delivered_after.count(s));
  RecordProperty("acked_messages_redelivered_after_kill9", resurrected);
}

TEST_F(bus_jetstream, ReaderReadsEveryMessageOfAFilterFromTheStart) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  stream_config cfg;
  cfg.name = "RES";
  cfg.subjects = {"res.>"};
  ASSERT_TRUE(js->ensure_stream(cfg));
  std::vector<uint64_t> b1;
  for (int i = 0; i < 30; ++i) {
    std::string subject = (i % 3 == 2 ? "res.b2." : "res.b1.") + std::to_string(i);
    std::string body = "r" + std::to_string(i);
    auto a = js->publish(subject, body.data(), body.size(), body);
    ASSERT_TRUE(a) << a.error().message;
    if (i % 3 != 2) b1.push_back(a.value().sequence);
  }

  auto r = js->reader("RES", "res.b1.>");
  ASSERT_TRUE(r) << r.error().message;
  auto p = r.value()->pending(5000);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p.value().first, b1.size());
  std::vector<js_message> got = fetch_n(*r.value(), b1.size());
  ASSERT_EQ(got.size(), b1.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k].stream_sequence(), b1[k]) << "in stream order";
    EXPECT_EQ(got[k].subject().rfind("res.b1.", 0), 0u) << got[k].subject();
    EXPECT_EQ(got[k].msg_id(), text(got[k]));
    EXPECT_EQ(got[k].num_delivered(), 1u);
    EXPECT_TRUE(got[k].ack()) << "a reader's messages need no ack; it is a no-op";
  }
  auto none = r.value()->fetch(10, 300);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none.value().empty()) << "read past the end";
  p = r.value()->pending(5000);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p.value().first, 0u);
  EXPECT_EQ(p.value().second, 0u);

  // Reading removed nothing: another reader, unfiltered, reads the whole stream.
  auto all = js->reader("RES", "");
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(fetch_n(*all.value(), 30).size(), 30u);
  auto info = js->stream_info("RES");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info.value().messages, 30u);
  EXPECT_EQ(info.value().consumers, 2);

  // Destroyed readers delete their consumers.
  r.value().reset();
  all.value().reset();
  const auto deadline = steady::now() + event_deadline;
  int64_t consumers = -1;
  while (ms_left(deadline) > 0) {
    info = js->stream_info("RES", std::max<int64_t>(1, std::min<int64_t>(ms_left(deadline), 5000)));
    ASSERT_TRUE(info) << info.error().message;
    consumers = info.value().consumers;
    if (consumers == 0) break;
    ASSERT_TRUE(c->flush(1000));  // one round trip between two looks
  }
  EXPECT_EQ(consumers, 0) << "a destroyed reader left its consumer";
}

TEST_F(bus_jetstream, AnIdleReaderIsDeletedByTheServerAndFetchThenFails) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  stream_config cfg;
  cfg.name = "IDLE";
  cfg.subjects = {"idle.>"};
  ASSERT_TRUE(js->ensure_stream(cfg));
  ASSERT_TRUE(js->publish("idle.1", "x", 1, ""));
  auto r = js->reader("IDLE", "", 5000, /*inactive_threshold_ms=*/1000);
  ASSERT_TRUE(r) << r.error().message;
  // Never fetched from: the server deletes it after the threshold (what a crashed reader
  // leaves behind is cleaned up the same way).
  const auto deadline = steady::now() + event_deadline;
  int64_t consumers = -1;
  while (ms_left(deadline) > 0) {
    auto info = js->stream_info("IDLE");
    ASSERT_TRUE(info) << info.error().message;
    consumers = info.value().consumers;
    if (consumers == 0) break;
    ASSERT_TRUE(c->flush(1000));
  }
  ASSERT_EQ(consumers, 0) << "the idle reader's consumer is still there";
  auto f = r.value()->fetch(1, 1000);
  EXPECT_EQ(f.error().code, errc::invalid)
      << "fetch from a deleted consumer must not look like \"nothing now\": " << f.error().message;
  EXPECT_NE(f.error().message.find("no longer exists"), std::string::npos) << f.error().message;
}

TEST_F(bus_jetstream, FetchFailsOnceTheDurableIsGone) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  ASSERT_TRUE(js->ensure_stream(work_queue("GONE", "gone.>")));
  consumer_options o;
  o.existence_check_ms = 300;
  auto pc = js->pull("GONE", "w", "", o);
  ASSERT_TRUE(pc) << pc.error().message;
  auto empty = pc.value()->fetch(1, 100);
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_TRUE(empty.value().empty());
  ASSERT_TRUE(js->delete_stream("GONE"));  // takes its consumers along

  const auto deadline = steady::now() + event_deadline;
  auto f = pc.value()->fetch(1, 200);
  while (f && ms_left(deadline) > 0) {
    ASSERT_TRUE(f.value().empty());
    f = pc.value()->fetch(1, 200);
  }
  EXPECT_EQ(f.error().code, errc::invalid) << "fetch kept saying \"nothing now\"";
  EXPECT_NE(f.error().message.find("no longer exists"), std::string::npos) << f.error().message;
}

TEST_F(bus_jetstream, DestroyingAPullConsumerKeepsTheDurableAndItsMessages) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  ASSERT_TRUE(js->ensure_stream(work_queue("KEEP", "keep.>")));
  auto first = js->pull("KEEP", "w", "keep.>", ack_wait(300));
  ASSERT_TRUE(first) << first.error().message;
  auto seqs = publish_n(*js, "keep.x", "k", 2);
  ASSERT_EQ(seqs.size(), 2u);
  auto got = fetch_n(*first.value(), 2);
  ASSERT_EQ(got.size(), 2u);
  first.value().reset();  // the messages outlive their consumer

  auto info = js->stream_info("KEEP");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info.value().consumers, 1) << "destroying the pull consumer deleted the durable";
  ASSERT_TRUE(got[0].ack()) << "ack after the consumer was destroyed";
  uint64_t unacked = got[1].stream_sequence();
  got.clear();

  // Bound again, with other settings (where it starts is kept, the ack wait is updated).
  consumer_options o = ack_wait(400);
  o.deliver = consumer_options::start::new_only;
  auto again = js->pull("KEEP", "w", "keep.>", o);
  ASSERT_TRUE(again) << again.error().message;
  auto back = fetch_n(*again.value(), 1);
  ASSERT_EQ(back.size(), 1u) << "the unacked message did not come back";
  EXPECT_EQ(back[0].stream_sequence(), unacked);
  EXPECT_EQ(back[0].num_delivered(), 2u);
  EXPECT_TRUE(back[0].ack());
  info = js->stream_info("KEEP");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info.value().messages, 0u);

  // A work queue takes one consumer per subject: a second durable on it is refused.
  auto second = js->pull("KEEP", "other", "keep.>", {});
  EXPECT_EQ(second.error().code, errc::invalid) << second.error().message;
}

TEST_F(bus_jetstream, PublishOnASubjectNoStreamHoldsIsNoResponders) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  const auto t0 = steady::now();
  auto a = js->publish("nobody.holds.this", "x", 1, "id", 5000);
  EXPECT_EQ(a.error().code, errc::no_responders) << a.error().message;
  EXPECT_LT(steady::now() - t0, 4s) << "should come back at once, not at the timeout";
}

TEST_F(bus_jetstream, GarbageArgumentsAreInvalid) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto js = open(*c);
  ASSERT_NE(js, nullptr);
  ASSERT_TRUE(js->ensure_stream(work_queue("OK", "ok.>")));
  auto invalid = [](const corral::bus::status& s) { return s.error().code == errc::invalid; };

  stream_config bad = work_queue("OK", "ok.>");
  for (const std::string& name :
       std::vector<std::string>{"", "a.b", "a b", "a*", ">", "a/b", std::string(200, 'x')}) {
    bad.name = name;
    EXPECT_TRUE(invalid(js->ensure_stream(bad))) << "stream name " << name;
  }
  bad = work_queue("BAD", "ok.>");
  bad.subjects = {};
  EXPECT_TRUE(invalid(js->ensure_stream(bad)));
  bad.subjects = {"a..b"};
  EXPECT_TRUE(invalid(js->ensure_stream(bad)));
  bad.subjects = {"a b"};
  EXPECT_TRUE(invalid(js->ensure_stream(bad)));
  bad = work_queue("BAD", "bad.>");
  bad.duplicate_window_ms = 0;
  EXPECT_TRUE(invalid(js->ensure_stream(bad)));
  bad.duplicate_window_ms = -5;
  EXPECT_TRUE(invalid(js->ensure_stream(bad)));
  bad = work_queue("BAD", "bad.>");
  bad.max_age_ms = 1000;  // shorter than the duplicate window
  EXPECT_TRUE(invalid(js->ensure_stream(bad)));
  bad = work_queue("BAD", "bad.>");
  bad.max_msgs = 0;
  EXPECT_TRUE(invalid(js->ensure_stream(bad)));
  bad = work_queue("BAD", "bad.>");
  bad.replicas = 0;
  EXPECT_TRUE(invalid(js->ensure_stream(bad)));
  EXPECT_TRUE(invalid(js->ensure_stream(work_queue("BAD", "bad.>"), 0)));
  EXPECT_EQ(js->stream_info("BAD").error().code, errc::invalid) << "nothing was created";

  EXPECT_EQ(js->stream_info("no.dots").error().code, errc::invalid);
  EXPECT_TRUE(invalid(js->delete_stream("")));

  auto pub = [&](const std::string& subject, const std::string& id, int64_t timeout = 5000) {
    auto r = js->publish(subject, "x", 1, id, timeout);
    return r.error().code;
  };
  EXPECT_EQ(pub("ok.*", ""), errc::invalid);
  EXPECT_EQ(pub("ok.>", ""), errc::invalid);
  EXPECT_EQ(pub("", ""), errc::invalid);
  EXPECT_EQ(pub("ok. x", ""), errc::invalid);
  EXPECT_EQ(pub("ok.x", "id\r\nNats-Expected-Stream: X"), errc::invalid);
  EXPECT_EQ(pub("ok.x", std::string(corral::bus::max_msg_id_bytes + 1, 'i')), errc::invalid);
  EXPECT_EQ(pub("ok.x", "", 0), errc::invalid);
  EXPECT_EQ(js->publish("ok.x", nullptr, 3, "").error().code, errc::invalid);
  std::string huge(static_cast<std::size_t>(c->max_payload()) + 1, 'h');
  EXPECT_EQ(js->publish("ok.x", huge.data(), huge.size(), "").error().code, errc::invalid);
  auto info = js->stream_info("OK");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info.value().messages, 0u) << "a refused publish was stored";

  EXPECT_EQ(js->pull("OK", "a.b", "", {}).error().code, errc::invalid);
  auto pull_error = [&](const std::string& stream, const std::string& durable,
                        const std::string& filter, consumer_options o) {
    auto r = js->pull(stream, durable, filter, o);
    return r.error().code;
  };
  EXPECT_EQ(pull_error("OK", "", "", {}), errc::invalid);
  EXPECT_EQ(pull_error("OK", "w*", "", {}), errc::invalid);
  EXPECT_EQ(pull_error("", "w", "", {}), errc::invalid);
  EXPECT_EQ(pull_error("OK", "w", "ok..x", {}), errc::invalid);
  EXPECT_EQ(pull_error("OK", "w", "", ack_wait(0)), errc::invalid);
  consumer_options o;
  o.max_deliver = 0;
  EXPECT_EQ(pull_error("OK", "w", "", o), errc::invalid);
  o = {};
  o.max_ack_pending = -7;
  EXPECT_EQ(pull_error("OK", "w", "", o), errc::invalid);
  o = {};
  o.deliver = consumer_options::start::by_sequence;
  EXPECT_EQ(pull_error("OK", "w", "", o), errc::invalid);
  o = {};
  o.existence_check_ms = 0;
  EXPECT_EQ(pull_error("OK", "w", "", o), errc::invalid);
  EXPECT_EQ(pull_error("NOSUCH", "w", "", {}), errc::invalid);
  EXPECT_EQ(js->reader("NOSUCH", "").error().code, errc::invalid);
  EXPECT_EQ(js->reader("OK", "a b").error().code, errc::invalid);
  EXPECT_EQ(js->reader("OK", "", 5000, 0).error().code, errc::invalid);
  auto reader_on_work_queue = js->reader("OK", "");
  EXPECT_EQ(reader_on_work_queue.error().code, errc::invalid) << reader_on_work_queue.error().message;

  auto pc = js->pull("OK", "w", "", {});
  ASSERT_TRUE(pc) << pc.error().message;
  EXPECT_EQ(pc.value()->fetch(0, 100).error().code, errc::invalid);
  EXPECT_EQ(pc.value()->fetch(corral::bus::max_fetch_batch + 1, 100).error().code, errc::invalid);
  EXPECT_EQ(pc.value()->fetch(1, 0).error().code, errc::invalid);
  EXPECT_EQ(pc.value()->pending(-1).error().code, errc::invalid);

  js_message empty;
  EXPECT_TRUE(empty.subject().empty());
  EXPECT_TRUE(empty.data().empty());
  EXPECT_EQ(empty.stream_sequence(), 0u);
  EXPECT_EQ(empty.ack().error().code, errc::invalid);
  EXPECT_EQ(empty.nak().error().code, errc::invalid);
  EXPECT_EQ(empty.in_progress().error().code, errc::invalid);
  EXPECT_EQ(empty.term().error().code, errc::invalid);

  ASSERT_TRUE(js->publish("ok.x", "x", 1, ""));
  auto got = fetch_n(*pc.value(), 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].ack(0).error().code, errc::invalid);
  EXPECT_EQ(got[0].nak(-1).error().code, errc::invalid);
  js_message moved = std::move(got[0]);
  EXPECT_EQ(got[0].ack().error().code, errc::invalid) << "moved-from is empty";
  EXPECT_TRUE(moved.ack());
}

TEST(bus_jetstream_open, FailsWhenTheServerHasNoJetStream) {
  nats_server_process::options so;
  so.jetstream = false;
  nats_server_process server(so);
  ASSERT_TRUE(server.start()) << server.error();
  corral::bus::options o;
  o.urls = {server.url()};
  std::string error;
  auto c = connection::connect(o, &error);
  ASSERT_NE(c, nullptr) << error;
  error.clear();
  auto js = jetstream::open(*c, &error, 2000);
  EXPECT_EQ(js, nullptr);
  EXPECT_FALSE(error.empty());
  EXPECT_NE(error.find("JetStream"), std::string::npos) << error;
}

}  // namespace
