// bus/: the NATS client, against a real nats-server (tests/support/nats_server.hpp).
// Nothing here sleeps to wait for an event: every wait is on the event, with a deadline.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bus/connection.hpp"
#include "tests/support/nats_server.hpp"

namespace {

using namespace std::chrono_literals;
namespace errc = corral::bus::errc;
using corral::bus::connection;
using corral::bus::message;
using corral::bus::subscription;
using corral::test::nats_server_process;
using steady = std::chrono::steady_clock;

// Longest any single event may take to show up before a test gives up.
constexpr auto event_deadline = 10s;

std::string text(const message& m) { return std::string(m.data.begin(), m.data.end()); }

// Messages delivered to a handler (on a delivery thread), awaited on the test's thread.
class collector {
 public:
  corral::bus::message_handler handler() {
    return [this](message&& m) {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back(std::move(m));
      cv_.notify_all();
    };
  }
  [[nodiscard]] bool wait_for(std::size_t n, std::chrono::milliseconds d = event_deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, d, [&] { return messages_.size() >= n; });
  }
  std::vector<message> messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<message> messages_;
};

// Counts events raised on some other thread.
class event_counter {
 public:
  void add() {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  [[nodiscard]] bool wait_at_least(int n, std::chrono::milliseconds d = event_deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, d, [&] { return count_ >= n; });
  }
  int count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

class bus_connection : public ::testing::Test {
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

  nats_server_process server_;
};

TEST_F(bus_connection, PublishSubscribeRoundTrip) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->is_connected());
  collector exact, wild;
  auto s1 = c->subscribe("t.round.trip", "", exact.handler());
  ASSERT_TRUE(s1) << s1.error().message;
  auto s2 = c->subscribe("t.*.trip", "", wild.handler());
  ASSERT_TRUE(s2) << s2.error().message;
  EXPECT_EQ(s1.value()->subject(), "t.round.trip");
  EXPECT_EQ(s1.value()->queue_group(), "");

  ASSERT_TRUE(c->publish("t.round.trip", "hello", 5));
  ASSERT_TRUE(c->publish("t.round.trip", nullptr, 0));  // empty payloads are fine
  ASSERT_TRUE(c->publish("t.round.trip", "reply.here", "x", 1));
  ASSERT_TRUE(exact.wait_for(3));
  ASSERT_TRUE(wild.wait_for(3));
  auto got = exact.messages();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].subject, "t.round.trip");
  EXPECT_EQ(text(got[0]), "hello");
  EXPECT_EQ(got[0].reply, "");
  EXPECT_TRUE(got[1].data.empty());
  EXPECT_EQ(got[2].reply, "reply.here");
  EXPECT_EQ(s1.value()->dropped(), 0);
}

TEST_F(bus_connection, PublishFromAnotherConnectionAfterFlush) {
  auto sub_conn = connect();
  auto pub_conn = connect();
  ASSERT_NE(sub_conn, nullptr);
  ASSERT_NE(pub_conn, nullptr);
  collector got;
  auto sub = sub_conn->subscribe("t.cross.>", "", got.handler());
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_TRUE(sub_conn->flush(5000));  // interest is on the server now
  for (int i = 0; i < 100; ++i) {
    std::string body = std::to_string(i);
    ASSERT_TRUE(pub_conn->publish("t.cross.a.b", body.data(), body.size()));
  }
  ASSERT_TRUE(got.wait_for(100));
  auto msgs = got.messages();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(text(msgs[i]), std::to_string(i));  // order kept
}

TEST_F(bus_connection, RequestReply) {
  auto server_side = connect();
  auto client = connect();
  ASSERT_NE(server_side, nullptr);
  ASSERT_NE(client, nullptr);
  connection* responder = server_side.get();
  auto sub = server_side->subscribe("svc.echo", "", [responder](message&& m) {
    std::string body = "echo:" + text(m);
    (void)responder->respond(m, body.data(), body.size());
  });
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_TRUE(server_side->flush(5000));

  auto r = client->request("svc.echo", "ping", 4, 5000);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(text(r.value()), "echo:ping");
  // A respond() to a message without a reply subject sends nothing and succeeds.
  EXPECT_TRUE(client->respond(message{"x", "", {}}, "y", 1));
}

TEST_F(bus_connection, NoRespondersReturnsAtOnce) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  constexpr int64_t timeout_ms = 5000;
  auto start = steady::now();
  auto r = c->request("nobody.listens.here", "x", 1, timeout_ms);
  auto elapsed = steady::now() - start;
  EXPECT_EQ(r.error().code, errc::no_responders) << r.error().message;
  EXPECT_FALSE(r);
  EXPECT_LT(elapsed, 1000ms) << "no_responders must not wait for the timeout";
}

TEST_F(bus_connection, RequestTimesOutWhenTheResponderIsSilent) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  event_counter seen;
  auto sub = c->subscribe("svc.silent", "", [&seen](message&&) { seen.add(); });
  ASSERT_TRUE(sub) << sub.error().message;
  auto start = steady::now();
  auto r = c->request("svc.silent", "x", 1, 200);
  EXPECT_EQ(r.error().code, errc::timeout) << r.error().message;
  EXPECT_GE(steady::now() - start, 150ms);
  EXPECT_TRUE(seen.wait_at_least(1));
}

TEST_F(bus_connection, QueueGroupDeliversEachMessageToExactlyOneMember) {
  auto members_a = connect();
  auto members_b = connect();
  auto publisher = connect();
  ASSERT_NE(members_a, nullptr);
  ASSERT_NE(members_b, nullptr);
  ASSERT_NE(publisher, nullptr);

  constexpr int n = 300;
  std::mutex mu;
  std::condition_variable cv;
  std::multiset<std::string> ids;
  int per_member[3] = {0, 0, 0};
  auto member = [&](int index) {
    return [&, index](message&& m) {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(text(m));
      ++per_member[index];
      cv.notify_all();
    };
  };
  auto m0 = members_a->subscribe("jobs.q", "workers", member(0));
  auto m1 = members_a->subscribe("jobs.q", "workers", member(1));
  auto m2 = members_b->subscribe("jobs.q", "workers", member(2));
  ASSERT_TRUE(m0 && m1 && m2) << m0.error().message << m1.error().message << m2.error().message;
  EXPECT_EQ(m2.value()->queue_group(), "workers");
  collector everyone;  // not in the group: sees every message
  auto plain = members_b->subscribe("jobs.q", "", everyone.handler());
  ASSERT_TRUE(plain) << plain.error().message;
  ASSERT_TRUE(members_a->flush(5000));
  ASSERT_TRUE(members_b->flush(5000));

  for (int i = 0; i < n; ++i) {
    std::string id = std::to_string(i);
    ASSERT_TRUE(publisher->publish("jobs.q", id.data(), id.size()));
  }
  ASSERT_TRUE(publisher->flush(5000));
  ASSERT_TRUE(everyone.wait_for(n));
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, event_deadline, [&] { return ids.size() >= n; }));
  }
  // Anything delivered twice would have been sent before these round trips completed.
  ASSERT_TRUE(members_a->flush(5000));
  ASSERT_TRUE(members_b->flush(5000));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), static_cast<std::size_t>(n));
  EXPECT_EQ(per_member[0] + per_member[1] + per_member[2], n);
  for (int count : per_member) EXPECT_GT(count, 0);  // random choice: 3 * (2/3)^300 odds
}

TEST_F(bus_connection, RequestManyGathersFromEveryResponder) {
  std::vector<std::unique_ptr<connection>> responders;
  std::vector<std::unique_ptr<subscription>> subs;
  for (int i = 0; i < 3; ++i) {
    responders.push_back(connect());
    ASSERT_NE(responders.back(), nullptr);
    connection* self = responders.back().get();
    auto sub = self->subscribe("svc.list", "", [self, i](message&& m) {
      std::string body = "node-" + std::to_string(i) + ":" + text(m);
      (void)self->respond(m, body.data(), body.size());
    });
    ASSERT_TRUE(sub) << sub.error().message;
    subs.push_back(std::move(sub.value()));
    ASSERT_TRUE(self->flush(5000));
  }
  auto client = connect();
  ASSERT_NE(client, nullptr);

  // Until the gather timeout: all three.
  auto all = client->request_many("svc.list", "q", 1, 500, 100);
  ASSERT_TRUE(all) << all.error().message;
  std::set<std::string> bodies;
  for (const auto& m : all.value()) bodies.insert(text(m));
  EXPECT_EQ(bodies, (std::set<std::string>{"node-0:q", "node-1:q", "node-2:q"}));

  // max_replies reached: returns without waiting for the gather timeout.
  auto start = steady::now();
  auto two = client->request_many("svc.list", "q", 1, 5000, 2);
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_EQ(two.value().size(), 2u);
  EXPECT_LT(steady::now() - start, 2000ms);

  // Nobody there: at once.
  start = steady::now();
  auto none = client->request_many("svc.nobody", "q", 1, 5000, 10);
  EXPECT_EQ(none.error().code, errc::no_responders) << none.error().message;
  EXPECT_LT(steady::now() - start, 1000ms);

  auto bad = client->request_many("svc.list", "q", 1, 500, 0);
  EXPECT_EQ(bad.error().code, errc::invalid);
}

TEST_F(bus_connection, DestructorWaitsForTheHandlerInProgress) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> first{true};
  std::atomic<bool> handler_returned{false};
  auto sub = c->subscribe("t.block", "", [&, released](message&&) {
    if (!first.exchange(false)) return;
    entered.set_value();
    released.wait();
    handler_returned = true;
  });
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_TRUE(c->publish("t.block", "x", 1));
  ASSERT_EQ(entered.get_future().wait_for(event_deadline), std::future_status::ready);

  auto destroyer = std::async(std::launch::async, [&] { sub.value().reset(); });
  // Must not return while the handler runs. (Waiting for something that must not happen can
  // only be bounded by a deadline.)
  EXPECT_EQ(destroyer.wait_for(100ms), std::future_status::timeout);
  EXPECT_FALSE(handler_returned);
  release.set_value();
  ASSERT_EQ(destroyer.wait_for(event_deadline), std::future_status::ready);
  EXPECT_TRUE(handler_returned);
}

TEST_F(bus_connection, NoHandlerCallAfterTheSubscriptionIsDestroyed) {
  auto c = connect();
  auto publisher = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_NE(publisher, nullptr);

  std::atomic<bool> destroyed{false};
  std::atomic<int> late_calls{0};
  event_counter calls;
  auto canary = std::make_shared<int>(42);
  std::weak_ptr<int> canary_watch = canary;
  auto sub = c->subscribe("t.flood", "", [&, canary](message&&) {
    if (destroyed) ++late_calls;
    calls.add();
  });
  canary.reset();
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_TRUE(c->flush(5000));

  std::atomic<bool> stop{false};
  std::thread flood([&] {
    while (!stop) {
      if (!publisher->publish("t.flood", "x", 1)) break;
    }
  });
  ASSERT_TRUE(calls.wait_at_least(50));
  sub.value().reset();
  destroyed = true;
  EXPECT_TRUE(canary_watch.expired()) << "the handler must be destroyed with the subscription";

  // Messages keep flowing on the subject: a second subscription sees plenty of them.
  collector after;
  auto witness = c->subscribe("t.flood", "", after.handler());
  ASSERT_TRUE(witness) << witness.error().message;
  ASSERT_TRUE(after.wait_for(200));
  stop = true;
  flood.join();
  ASSERT_TRUE(publisher->flush(5000));
  ASSERT_TRUE(c->flush(5000));
  EXPECT_EQ(late_calls.load(), 0);
}

TEST_F(bus_connection, UnsubscribeFromInsideTheHandler) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  std::atomic<subscription*> self{nullptr};
  event_counter calls;
  auto sub = c->subscribe("t.once", "", [&](message&&) {
    calls.add();
    if (subscription* s = self.load()) s->unsubscribe();  // must not deadlock
  });
  ASSERT_TRUE(sub) << sub.error().message;
  self = sub.value().get();
  collector witness;
  auto w = c->subscribe("t.once", "", witness.handler());
  ASSERT_TRUE(w) << w.error().message;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c->publish("t.once", "x", 1));
  ASSERT_TRUE(witness.wait_for(20));
  ASSERT_TRUE(calls.wait_at_least(1));
  ASSERT_TRUE(c->flush(5000));
  EXPECT_EQ(calls.count(), 1);
  sub.value().reset();  // after the handler's own unsubscribe: fine
}

TEST_F(bus_connection, ReconnectsAfterServerKill9AndRestart) {
  event_counter disconnected, reconnected, closed;
  auto o = base_options();
  o.on_disconnected = [&] { disconnected.add(); };
  o.on_reconnected = [&] { reconnected.add(); };
  o.on_closed = [&] { closed.add(); };
  auto c = connect(o);
  ASSERT_NE(c, nullptr);
  collector got, buffered;
  auto sub = c->subscribe("r.after.restart", "", got.handler());
  ASSERT_TRUE(sub) << sub.error().message;
  auto sub_buffered = c->subscribe("r.buffered", "", buffered.handler());
  ASSERT_TRUE(sub_buffered) << sub_buffered.error().message;
  ASSERT_TRUE(c->flush(5000));
  const int port = server_.port();

  server_.kill9();
  ASSERT_TRUE(disconnected.wait_at_least(1)) << "on_disconnected not called";
  EXPECT_FALSE(c->is_connected());
  // While reconnecting, publishes are buffered and sent after the reconnect.
  ASSERT_TRUE(c->publish("r.buffered", "kept", 4));

  ASSERT_TRUE(server_.restart()) << server_.error();
  EXPECT_EQ(server_.port(), port);
  ASSERT_TRUE(reconnected.wait_at_least(1)) << "on_reconnected not called";
  EXPECT_TRUE(c->is_connected());
  ASSERT_TRUE(c->flush(5000));  // subscriptions re-registered on the new server

  auto other = connect();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->publish("r.after.restart", "back", 4));
  ASSERT_TRUE(other->flush(5000));
  ASSERT_TRUE(got.wait_for(1)) << "the subscription made before the kill got nothing";
  EXPECT_EQ(text(got.messages()[0]), "back");
  ASSERT_TRUE(buffered.wait_for(1));
  EXPECT_EQ(text(buffered.messages()[0]), "kept");

  auto r = other->request("r.nobody", "x", 1, 5000);
  EXPECT_EQ(r.error().code, errc::no_responders);
  EXPECT_EQ(closed.count(), 0);
  c->close();
  EXPECT_EQ(closed.count(), 1);
}

TEST_F(bus_connection, ClosesWhenReconnectAttemptsAreExhausted) {
  event_counter disconnected, closed;
  auto o = base_options();
  o.max_reconnect = 2;
  o.reconnect_wait_ms = 20;
  o.reconnect_jitter_ms = 0;
  o.on_disconnected = [&] { disconnected.add(); };
  o.on_closed = [&] { closed.add(); };
  auto c = connect(o);
  ASSERT_NE(c, nullptr);
  server_.kill9();
  ASSERT_TRUE(disconnected.wait_at_least(1));
  ASSERT_TRUE(closed.wait_at_least(1)) << "on_closed not called after the last attempt";
  EXPECT_FALSE(c->is_connected());
  EXPECT_EQ(c->publish("t.x", "x", 1).error().code, errc::not_connected);
  EXPECT_EQ(c->request("t.x", "x", 1, 1000).error().code, errc::not_connected);
  c.reset();
  EXPECT_EQ(closed.count(), 1);
}

TEST_F(bus_connection, OversizedPublishIsRefusedCleanly) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  const int64_t max = c->max_payload();
  ASSERT_GT(max, 0);
  collector got;
  auto sub = c->subscribe("t.big", "", got.handler());
  ASSERT_TRUE(sub) << sub.error().message;

  std::vector<uint8_t> too_big(static_cast<std::size_t>(max) + 1, 'a');
  auto s = c->publish("t.big", too_big.data(), too_big.size());
  EXPECT_EQ(s.error().code, errc::invalid);
  EXPECT_NE(s.error().message.find("max_payload"), std::string::npos) << s.error().message;
  EXPECT_EQ(c->request("t.big", too_big.data(), too_big.size(), 1000).error().code, errc::invalid);
  EXPECT_EQ(c->request_many("t.big", too_big.data(), too_big.size(), 100, 1).error().code,
            errc::invalid);

  // The connection is unharmed and the largest allowed payload goes through.
  EXPECT_TRUE(c->is_connected());
  std::vector<uint8_t> largest(static_cast<std::size_t>(max), 'b');
  ASSERT_TRUE(c->publish("t.big", largest.data(), largest.size()));
  ASSERT_TRUE(got.wait_for(1));
  EXPECT_EQ(got.messages()[0].data.size(), static_cast<std::size_t>(max));
  EXPECT_EQ(got.size(), 1u);
}

TEST_F(bus_connection, InvalidSubjectsAreRefusedAndTheConnectionSurvives) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  for (const char* bad : {"", "a b", "a..b", ".a", "a.", "a.*", "a.>", "a\r\nPUB x 1", "a\tb"}) {
    EXPECT_EQ(c->publish(bad, "x", 1).error().code, errc::invalid) << bad;
    EXPECT_EQ(c->request(bad, "x", 1, 100).error().code, errc::invalid) << bad;
  }
  EXPECT_EQ(c->publish("ok", "bad reply", "x", 1).error().code, errc::invalid);
  EXPECT_EQ(c->publish(std::string(2000, 'a'), "x", 1).error().code, errc::invalid);
  auto noop = [](message&&) {};
  EXPECT_EQ(c->subscribe("a.>.b", "", noop).error().code, errc::invalid);
  EXPECT_EQ(c->subscribe("a*", "", noop).error().code, errc::invalid);
  EXPECT_EQ(c->subscribe("a.b", "bad group", noop).error().code, errc::invalid);
  EXPECT_EQ(c->subscribe("a.b", "", nullptr).error().code, errc::invalid);
  EXPECT_EQ(c->request("ok", "x", 1, 0).error().code, errc::invalid);
  EXPECT_EQ(c->flush(0).error().code, errc::invalid);

  EXPECT_TRUE(c->is_connected());
  collector got;
  auto sub = c->subscribe("still.*.fine", "", got.handler());
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_TRUE(c->publish("still.very.fine", "x", 1));
  EXPECT_TRUE(got.wait_for(1));
}

TEST(bus_subjects, Validation) {
  using corral::bus::valid_queue_group;
  using corral::bus::valid_subject;
  EXPECT_TRUE(valid_subject("corral.v1.t1.sbx.sb-abc.exec", false));
  EXPECT_TRUE(valid_subject("_INBOX.abc", false));
  EXPECT_TRUE(valid_subject("a.*.c", true));
  EXPECT_TRUE(valid_subject("a.>", true));
  EXPECT_TRUE(valid_subject(">", true));
  EXPECT_TRUE(valid_subject("*", true));
  EXPECT_FALSE(valid_subject("a.*.c", false));
  EXPECT_FALSE(valid_subject("a.>.c", true));
  EXPECT_FALSE(valid_subject("a.b*", true));
  EXPECT_FALSE(valid_subject("a.>b", true));
  EXPECT_FALSE(valid_subject("", true));
  EXPECT_FALSE(valid_subject("a..b", true));
  EXPECT_FALSE(valid_subject(".", true));
  EXPECT_FALSE(valid_subject("a\x7f", true));
  EXPECT_FALSE(valid_subject(std::string("a\0b", 3), true));
  EXPECT_FALSE(valid_subject(std::string(11, 'a'), true, 10));
  EXPECT_TRUE(valid_subject(std::string(10, 'a'), true, 10));
  EXPECT_TRUE(valid_queue_group("pool-default"));
  EXPECT_FALSE(valid_queue_group(""));
  EXPECT_FALSE(valid_queue_group("a b"));
  EXPECT_FALSE(valid_queue_group("a*"));
}

TEST_F(bus_connection, CloseIsIdempotentAndCallsOnClosedOnce) {
  event_counter closed;
  auto o = base_options();
  o.on_closed = [&] { closed.add(); };
  auto c = connect(o);
  ASSERT_NE(c, nullptr);
  collector got;
  auto sub = c->subscribe("t.closing", "", got.handler());
  ASSERT_TRUE(sub) << sub.error().message;
  c->close();
  EXPECT_EQ(closed.count(), 1);  // close() returns after on_closed
  c->close();
  EXPECT_FALSE(c->is_connected());
  EXPECT_EQ(c->max_payload(), 0);
  EXPECT_EQ(c->publish("t.closing", "x", 1).error().code, errc::not_connected);
  EXPECT_EQ(c->request("t.closing", "x", 1, 1000).error().code, errc::not_connected);
  EXPECT_EQ(c->request_many("t.closing", "x", 1, 1000, 3).error().code, errc::not_connected);
  EXPECT_EQ(c->subscribe("t.closing", "", [](message&&) {}).error().code, errc::not_connected);
  EXPECT_EQ(c->flush(1000).error().code, errc::not_connected);
  c.reset();  // the subscription outlives its connection
  sub.value().reset();
  EXPECT_EQ(closed.count(), 1);
}

TEST_F(bus_connection, DrainLetsHandlersFinishThenCloses) {
  event_counter closed;
  auto o = base_options();
  o.on_closed = [&] { closed.add(); };
  auto c = connect(o);
  auto publisher = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_NE(publisher, nullptr);
  std::atomic<int> handled{0};
  auto sub = c->subscribe("t.drain", "", [&](message&&) { ++handled; });
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_TRUE(c->flush(5000));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(publisher->publish("t.drain", "x", 1));
  ASSERT_TRUE(publisher->flush(5000));
  ASSERT_TRUE(c->flush(5000));  // the 100 messages reached the client before this PONG
  ASSERT_TRUE(c->drain(5000));
  EXPECT_EQ(handled.load(), 100);
  EXPECT_EQ(closed.count(), 1);
  EXPECT_FALSE(c->is_connected());
}

TEST_F(bus_connection, ConcurrentPublishersOnOneConnection) {
  auto c = connect();
  ASSERT_NE(c, nullptr);
  collector got;
  auto sub = c->subscribe("t.many", "", got.handler());
  ASSERT_TRUE(sub) << sub.error().message;
  constexpr int threads = 4, each = 500;
  std::vector<std::thread> pubs;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    pubs.emplace_back([&] {
      for (int i = 0; i < each; ++i)
        if (!c->publish("t.many", "x", 1)) ++failures;
    });
  }
  for (auto& t : pubs) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(got.wait_for(threads * each));
}

TEST_F(bus_connection, InboxesAreUniqueAndUseThePrefix) {
  auto o = base_options();
  o.inbox_prefix = "_INBOX.tenant1";
  auto c = connect(o);
  ASSERT_NE(c, nullptr);
  std::string a = c->new_inbox(), b = c->new_inbox();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("_INBOX.tenant1.", 0), 0u) << a;
  EXPECT_TRUE(corral::bus::valid_subject(a, false));
  // Requests use the prefix too, and still work.
  connection* self = c.get();
  auto sub = c->subscribe("svc.prefixed", "", [self](message&& m) {
    std::string reply = m.reply;
    (void)self->respond(m, reply.data(), reply.size());
  });
  ASSERT_TRUE(sub) << sub.error().message;
  auto r = c->request("svc.prefixed", "x", 1, 5000);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(text(r.value()).rfind("_INBOX.tenant1.", 0), 0u) << text(r.value());
}

TEST(bus_connect, FailsFastWhenNoServerListens) {
  nats_server_process gone;
  ASSERT_TRUE(gone.start()) << gone.error();
  const std::string url = gone.url();
  ASSERT_TRUE(gone.stop()) << gone.error();
  corral::bus::options o;
  o.urls = {url};
  std::string error;
  auto start = steady::now();
  auto c = connection::connect(o, &error);
  EXPECT_EQ(c, nullptr);
  EXPECT_FALSE(error.empty());
  EXPECT_LT(steady::now() - start, 3000ms);
}

TEST(bus_connect, RefusesInvalidOptions) {
  std::string error;
  corral::bus::options o;
  EXPECT_EQ(connection::connect(o, &error), nullptr);
  EXPECT_NE(error.find("urls"), std::string::npos) << error;
  o.urls = {"nats://127.0.0.1:1"};
  o.connect_timeout_ms = 0;
  EXPECT_EQ(connection::connect(o, &error), nullptr);
  EXPECT_NE(error.find("connect_timeout_ms"), std::string::npos) << error;
  o.connect_timeout_ms = 2000;
  o.subscription_pending_msgs = 0;
  EXPECT_EQ(connection::connect(o, &error), nullptr);
  EXPECT_NE(error.find("subscription_pending_msgs"), std::string::npos) << error;
  o.subscription_pending_msgs = 10;
  o.inbox_prefix = "bad.*";
  EXPECT_EQ(connection::connect(o, &error), nullptr);
  EXPECT_NE(error.find("inbox_prefix"), std::string::npos) << error;
}

TEST(bus_nats_server_process, RestartKeepsPortAndStore) {
  nats_server_process::options o;
  o.monitoring = true;
  nats_server_process server(o);
  ASSERT_TRUE(server.start()) << server.error();
  EXPECT_GT(server.port(), 0);
  EXPECT_GT(server.monitoring_port(), 0);
  EXPECT_EQ(server.url(), "nats://127.0.0.1:" + std::to_string(server.port()));
  const int port = server.port();
  const std::string store = server.store_dir();
  ASSERT_TRUE(server.stop()) << server.error();
  EXPECT_FALSE(server.running());
  ASSERT_TRUE(server.restart()) << server.error();
  EXPECT_EQ(server.port(), port);
  EXPECT_EQ(server.store_dir(), store);
  server.kill9();
  ASSERT_TRUE(server.restart()) << server.error();
  EXPECT_EQ(server.port(), port);
  EXPECT_NE(server.log().find("Server is ready"), std::string::npos);
  {
    nats_server_process second;  // another one at the same time gets its own port
    ASSERT_TRUE(second.start()) << second.error();
    EXPECT_NE(second.port(), port);
  }
}

}  // namespace
