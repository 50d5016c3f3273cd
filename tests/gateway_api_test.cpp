// The gateway's API in process, in front of a real nats-server and no executor: what it answers
// before any executor is asked (query values), and which NATS links it makes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <tuple>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "gateway/api.hpp"
#include "gateway/json_mapping.hpp"
#include "schemas/ids.hpp"
#include "tests/support/nats_server.hpp"

namespace corral::gateway {
namespace {

TEST(GatewayValues, SecondsParamTakesDecimalSeconds) {
  EXPECT_EQ(*seconds_param_ms("2", 600'000), 2000);
  EXPECT_EQ(*seconds_param_ms("0.5", 600'000), 500);
  EXPECT_EQ(*seconds_param_ms("0", 600'000), 0);
  EXPECT_EQ(*seconds_param_ms("600", 600'000), 600'000);
}

TEST(GatewayValues, SecondsParamRefusesWhatIsNotAFiniteNumberInRange) {
  // nan and 1e300 times 1000 do not fit an int64: converting them was undefined behaviour.
  for (const std::string t : {"nan", "NaN", "inf", "-inf", "1e300", "1e3", "-1", "600.001", "601",
                              "abc", "", ".", "1.2.3", "0x10", " 1", "1 ", "+1",
                              "99999999999999999999999999999"}) {
    auto r = seconds_param_ms(t, 600'000);
    EXPECT_FALSE(r.ok()) << "'" << t << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.code(), wire::ErrorCode::invalid_argument) << "'" << t << "'";
    }
  }
}

// The body readers answer with a status what was an exception before: the same message (for a
// field of the wrong type, nlohmann's own), with the field named.
TEST(GatewayValues, BodyReadersAnswerWhatTheExceptionsSaid) {
  for (const json& v : {json(5), json(true), json(nullptr), json::array(), json::object()}) {
    const json j{{"name", v}, {"stdin", v}};
    std::string thrown;
    try {
      (void)j.value("name", "");
    } catch (const std::exception& e) {
      thrown = e.what();
    }
    auto s = string_of(j, "name");
    ASSERT_FALSE(s.ok()) << j.dump();
    EXPECT_EQ(s.code(), wire::ErrorCode::invalid_argument);
    EXPECT_EQ(s.error().message, thrown);
    EXPECT_EQ(s.error().field, "name");
    if (v.is_boolean()) continue;
    thrown.clear();
    try {
      (void)j.value("stdin", true);
    } catch (const std::exception& e) {
      thrown = e.what();
    }
    auto b = bool_of(j, "stdin", true);
    ASSERT_FALSE(b.ok()) << j.dump();
    EXPECT_EQ(b.error().message, thrown);
  }
  EXPECT_EQ(*string_of(json::object(), "name", "dflt"), "dflt");
  EXPECT_EQ(*string_of(json{{"name", "x"}}, "name"), "x");
  EXPECT_FALSE(*bool_of(json{{"pty", false}}, "pty", true));
  EXPECT_TRUE(*bool_of(json::object(), "stdin", true));
}

TEST(GatewayValues, OffsetParamTakesWhatStoullTook) {
  for (const std::string t : {"0", "12", " 7", "+3", "-1", "12abc", "abc", "", "x1",
                              "18446744073709551615", "18446744073709551616", "99999999999999999999999"}) {
    std::optional<unsigned long long> want;
    try {
      want = std::stoull(t);
    } catch (const std::exception&) {
    }
    auto got = offset_param(t);
    ASSERT_EQ(got.ok(), want.has_value()) << "'" << t << "'";
    if (want) EXPECT_EQ(*got, *want) << "'" << t << "'";
    else EXPECT_EQ(got.code(), wire::ErrorCode::invalid_argument) << "'" << t << "'";
  }
}

TEST(GatewayValues, CreateOptionsNameTheFirstFieldThatDoesNotFit) {
  auto bad = create_options_of(json{{"timeout", "soon"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), wire::ErrorCode::invalid_argument);
  EXPECT_EQ(bad.error().message, "timeout must be a number of seconds");
  EXPECT_EQ(bad.error().field, "timeout");
  // Fields are read in order: the name before the tags.
  auto two = create_options_of(json{{"tags", json::array({1})}, {"name", 5}});
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.error().field, "name");
  auto tags = create_options_of(json{{"tags", json::array({1})}});
  ASSERT_FALSE(tags.ok());
  EXPECT_EQ(tags.error().message, "tags must be an object");
  auto good = create_options_of(json{{"name", "n"}, {"timeout", 1.5}, {"cpu", 0.5},
                                     {"tags", {{"k", "v"}}}, {"probe_tcp_port", 80}});
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(good->name, "n");
  EXPECT_EQ(good->timeout_ms, 1500);
  EXPECT_EQ(good->cpu_millis, 500u);
  EXPECT_EQ(good->probe_tcp_port, 80);
  ASSERT_EQ(good->tags.size(), 1u);
}

// Records the one answer of a request.
class recording_responder : public responder {
 public:
  void reply(http_response res) override {
    std::lock_guard<std::mutex> lock(mu_);
    answer_ = std::move(res);
  }
  boost::asio::any_io_executor executor() override { return io_.get_executor(); }
  std::shared_ptr<stream_channel> begin_stream(http::status, std::string_view) override { return nullptr; }
  void accept_websocket(const http_request&, std::function<void(std::shared_ptr<stream_channel>)> done) override {
    done(nullptr);
  }
  bool closed() const override { return false; }
  void on_client_gone(std::function<void()>) override {}

  std::optional<http_response> answer() {
    std::lock_guard<std::mutex> lock(mu_);
    return answer_;
  }

 private:
  boost::asio::io_context io_;
  std::mutex mu_;
  std::optional<http_response> answer_;
};

class GatewayApi : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats_.start()) << nats_.error();
    tokens_path_ = (std::filesystem::temp_directory_path() /
                    ("corral-api-tokens-" + std::to_string(::getpid())))
                       .string();
    std::ofstream(tokens_path_) << sha256_hex("tok-a") << " acme\n";
    cfg_.nats_url = nats_.url();
    tokens_ = std::make_unique<token_store>(tokens_path_);
    api_ = std::make_unique<api>(cfg_, *tokens_, metrics_);
  }
  void TearDown() override {
    api_.reset();
    std::filesystem::remove(tokens_path_);
  }

  // One /v1 request of tenant acme through admit() and handle(), answered without an executor.
  std::optional<http_response> v1(http::verb method, const std::string& target,
                                  const std::string& body = {}) {
    http_request req{method, target, 11};
    req.set(http::field::authorization, "Bearer tok-a");
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    auto a = api_->admit(req.base());
    if (a.refuse) return std::move(*a.refuse);
    auto res = std::make_shared<recording_responder>();
    api_->handle(std::move(req), res, a.hold);
    return res->answer();
  }

  test::nats_server_process nats_;
  std::string tokens_path_;
  gateway_config cfg_;
  metrics metrics_;
  std::unique_ptr<token_store> tokens_;
  std::unique_ptr<api> api_;
};

TEST_F(GatewayApi, HealthzMakesNoTenantLink) {
  auto res = std::make_shared<recording_responder>();
  api_->handle_metrics_listener(http_request{http::verb::get, "/healthz", 11}, res);
  auto answer = res->answer();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->result(), http::status::ok) << answer->body();
  EXPECT_EQ(api_->tenant_links(), 0u);  // the health connection is the gateway's own
  EXPECT_TRUE(api_->nats_connected());
  EXPECT_EQ(api_->tenant_links(), 0u);
}

TEST_F(GatewayApi, WaitTimeoutThatIsNotAFiniteNumberIsRefused) {
  const auto sb = wire::new_id("sb-");
  for (const std::string t : {"nan", "1e300", "inf", "-1", "abc"}) {
    auto answer = v1(http::verb::get, "/v1/sandboxes/" + sb + "/wait?timeout=" + t);
    ASSERT_TRUE(answer) << t;
    EXPECT_EQ(answer->result(), http::status::bad_request) << t << ": " << answer->body();
    EXPECT_NE(answer->body().find("timeout must be a number of seconds"), std::string::npos)
        << t << ": " << answer->body();
  }
  EXPECT_EQ(api_->tenant_links(), 1u);  // acme's
}

// A body field of the wrong type, or an offset that is not a number, is answered 400 with the
// message the gateway gave when these were exceptions, before any executor is asked.
TEST_F(GatewayApi, BodyFieldsOfTheWrongTypeAreRefused) {
  const auto sb = wire::new_id("sb-");
  const std::string exec = "/v1/sandboxes/" + sb + "/exec";
  for (const auto& [target, body, message] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {exec, R"({"args": ["true"], "exec_id": 5})",
            "[json.exception.type_error.302] type must be string, but is number"},
           {exec, R"({"args": ["true"], "stdin": "yes"})",
            "[json.exception.type_error.302] type must be boolean, but is string"},
           {exec, R"({"args": "true"})", "args must be an array of strings"},
           {exec, R"({"args": ["true"], "env": {"A": 1}})", "env values must be strings"},
           {"/v1/run", R"({"args": ["true"], "workdir": []})",
            "[json.exception.type_error.302] type must be string, but is array"},
           {"/v1/sandboxes", R"({"memory": -1})", "memory must be a non-negative number"},
       }) {
    auto answer = v1(http::verb::post, target, body);
    ASSERT_TRUE(answer) << body;
    EXPECT_EQ(answer->result(), http::status::bad_request) << body << ": " << answer->body();
    EXPECT_EQ(json::parse(answer->body()), error_json(wire::ErrorCode::invalid_argument, message))
        << body;
  }
  auto answer = v1(http::verb::get, "/v1/sandboxes/" + sb + "/execs/ex-1/output?offset=abc");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->result(), http::status::bad_request) << answer->body();
  EXPECT_EQ(json::parse(answer->body()), error_json(wire::ErrorCode::invalid_argument, "stoull"));
}

// A NATS URL whose server never says hello: connections are accepted and nothing is sent, so a
// connect waits until its connect timeout.
class silent_server {
 public:
  silent_server() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return;
    port_ = ntohs(a.sin_port);
  }
  ~silent_server() {
    for (int c : accepted_) ::close(c);
    if (fd_ >= 0) ::close(fd_);
  }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  // Waits (up to timeout_ms) for a client to connect, and keeps it waiting.
  bool accept_one(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return false;
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return false;
    accepted_.push_back(c);
    return true;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> accepted_;
};

TEST(TenantLinks, ASlowConnectHoldsUpNoOtherTenant) {
  silent_server nats;
  gateway_config cfg;
  cfg.nats_url = nats.url();
  tenant_link_pool pool(cfg);
  std::atomic<bool> slow_done{false};
  std::thread slow([&] {
    std::string why;
    EXPECT_EQ(pool.get("slow", &why), nullptr);  // the server never answers
    slow_done = true;
  });
  // The slow tenant's connect is under way (its TCP connection is in), and stays so until its
  // connect timeout (2 s): meanwhile the links are not locked, and another tenant's connect
  // starts (its TCP connection comes in too) without waiting for it.
  ASSERT_TRUE(nats.accept_one(10'000));
  EXPECT_EQ(pool.size(), 1u);
  EXPECT_FALSE(slow_done.load()) << "size() waited for another tenant's connect";
  std::thread other([&] {
    std::string why;
    EXPECT_EQ(pool.get("other", &why), nullptr);
  });
  ASSERT_TRUE(nats.accept_one(10'000)) << "the other tenant's connect never started";
  EXPECT_FALSE(slow_done.load()) << "the other tenant's connect waited for the slow one";
  slow.join();
  other.join();
  // A failed connect is not cached: the next get() connects again.
  std::thread again([&] {
    std::string why;
    EXPECT_EQ(pool.get("slow", &why), nullptr);
  });
  EXPECT_TRUE(nats.accept_one(10'000)) << "a failed connect was cached";
  again.join();
}

}  // namespace
}  // namespace corral::gateway
