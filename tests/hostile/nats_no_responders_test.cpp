// A request that crosses a service import into an account where nothing answers gets NATS's
// no-responders status at once, with corral's nats-server build (deploy/build-nats-server.sh,
// patch 0002; docs/security.md, "No such sandbox" through an import). Every tenant reaches the executors
// through such an import, and "no such sandbox" is exactly that: no executor holds the sandbox,
// so nobody subscribes to its subject. Debian's nats-server 2.9.10 counts the import's own
// internal subscription as a delivery and never answers: the requester waits for its whole
// timeout instead (the control test below shows it, so the detector can fail).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "bus/connection.hpp"
#include "tests/support/nats_server.hpp"

namespace {

using namespace std::chrono_literals;
using corral::test::nats_server_process;

// The requester's timeout: long against a no-responders answer (a loopback round trip).
constexpr int64_t request_timeout_ms = 5000;
// A no-responders answer comes well inside this.
constexpr auto prompt = 2s;

std::string patched_server() { return std::string(CORRAL_BIN_DIR) + "/corral-nats-server"; }
std::string stock_server() { return CORRAL_STOCK_NATS_SERVER; }

// Account SVC exports "svc.>" (a responder may or may not subscribe); account USR imports it as
// "usr.svc.>", as a tenant's account imports its subjects from corral's.
const std::string config = R"(
accounts {
  SVC: { users: [{user: "svc", password: "svc-pw"}], exports: [{service: "svc.>"}] }
  USR: { users: [{user: "usr", password: "usr-pw"}],
         imports: [{service: {account: "SVC", subject: "svc.>"}, to: "usr.svc.>"}] }
}
)";

std::unique_ptr<nats_server_process> server_of(const std::string& binary) {
  nats_server_process::options o;
  o.jetstream = false;
  o.config = config;
  o.binary = binary;
  return std::make_unique<nats_server_process>(o);
}

std::shared_ptr<corral::bus::connection> connect_as(const nats_server_process& s,
                                                    const std::string& user,
                                                    const std::string& password) {
  corral::bus::options o;
  std::string url = s.url();
  url.insert(url.find("://") + 3, user + ":" + password + "@");
  o.urls = {url};
  o.max_reconnect = 0;
  o.delivery_pool_threads = 0;
  std::string why;
  auto c = corral::bus::connection::connect(o, &why);
  EXPECT_NE(c, nullptr) << why;
  return c;
}

struct outcome {
  corral::status error;
  bool ok = false;
  std::chrono::milliseconds took{};
};

outcome request(corral::bus::connection& c, const std::string& subject) {
  const auto start = std::chrono::steady_clock::now();
  const std::string body = "ping";
  auto r = c.request(subject, body.data(), body.size(), request_timeout_ms);
  outcome out;
  out.ok = static_cast<bool>(r);
  if (!r) out.error = r.error();
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  return out;
}

TEST(NatsNoResponders, ThePatchedServerAnswersNoRespondersThroughAServiceImport) {
  auto s = server_of(patched_server());
  ASSERT_TRUE(s->start()) << s->error();
  auto usr = connect_as(*s, "usr", "usr-pw");
  ASSERT_NE(usr, nullptr);
  auto nobody = request(*usr, "usr.svc.sandbox-that-is-not-there");
  EXPECT_FALSE(nobody.ok);
  EXPECT_EQ(nobody.error.code, corral::bus::errc::no_responders)
      << nobody.error.message << " after " << nobody.took.count() << " ms";
  EXPECT_LT(nobody.took, prompt);

  // With a responder, the same import still delivers and the answer comes back.
  auto svc = connect_as(*s, "svc", "svc-pw");
  ASSERT_NE(svc, nullptr);
  corral::bus::connection* responder = svc.get();
  auto sub = svc->subscribe("svc.here", "", [responder](corral::bus::message&& m) {
    const std::string pong = "pong";
    (void)responder->respond(m, pong.data(), pong.size());
  });
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_TRUE(svc->flush(5000));
  auto answered = request(*usr, "usr.svc.here");
  EXPECT_TRUE(answered.ok) << answered.error.message;
  // And a subject beside it is still no-responders (nothing is cached from the delivery).
  auto beside = request(*usr, "usr.svc.beside");
  EXPECT_EQ(beside.error.code, corral::bus::errc::no_responders);
}

TEST(NatsNoResponders, StockServerLetsTheRequesterTimeOut) {
  auto s = server_of(stock_server());
  ASSERT_TRUE(s->start()) << s->error();
  auto usr = connect_as(*s, "usr", "usr-pw");
  ASSERT_NE(usr, nullptr);
  auto nobody = request(*usr, "usr.svc.sandbox-that-is-not-there");
  EXPECT_FALSE(nobody.ok);
  EXPECT_EQ(nobody.error.code, corral::bus::errc::timeout) << nobody.error.message;
}

}  // namespace
