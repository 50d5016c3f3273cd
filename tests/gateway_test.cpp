// corral-gateway end to end: the real gateway binary in front of a real nats-server and a real
// corral-executor (runsc sandboxes), driven over HTTP: auth and tenants, the sandbox and exec
// routes, output streams (replay, offset, follow), stdin, files, run, errors and limits, a
// client that stops reading, metrics.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "schemas/ids.hpp"
#include "tests/gateway_harness.hpp"

namespace corral {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using test::deployment;
using test::http_reply;

deployment::options gateway_options() {
  deployment::options o;
  o.node = "gw-node";
  o.tenant = "gw";
  o.executor_args = {"--max-sandboxes", "8"};
  return o;
}

class Gateway : public test::deployment_test<gateway_options> {
 protected:
  static void SetUpTestSuite() {
    test::deployment_test<gateway_options>::SetUpTestSuite();
    if (d_ == nullptr) return;
    gw_ = new test::gateway_process();
    std::string why;
    // Tokens made before the start (one more, later, shows the reload).
    auto r1 = d_->corral({"token", "create", "--tenant", "gw", "--tokens", d_->dir() + "/gateway-tokens"});
    auto r2 = d_->corral({"token", "create", "--tenant", "other", "--tokens", d_->dir() + "/gateway-tokens"});
    ASSERT_EQ(r1.exit_code, 0) << r1.err;
    ASSERT_EQ(r2.exit_code, 0) << r2.err;
    token_ = test::trim(r1.out);
    other_token_ = test::trim(r2.out);
    ASSERT_TRUE(gw_->start(*d_, &why)) << why;
  }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
    test::deployment_test<gateway_options>::TearDownTestSuite();
  }
  void SetUp() override {
    test::deployment_test<gateway_options>::SetUp();
    ASSERT_NE(gw_, nullptr);
    ASSERT_NE(gw_->port(), 0);
  }

  static http_reply call(const std::string& method, const std::string& target,
                         const std::string& body = {}, const std::string& token = token_) {
    return gw_->call(method, target, body, token);
  }
  static json body_of(const http_reply& r) {
    auto j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }
  static std::string create_sandbox(const json& opts = json::object()) {
    auto r = call("POST", "/v1/sandboxes", opts.dump());
    EXPECT_EQ(r.status, 201u) << r.body;
    return body_of(r).value("id", "");
  }
  // Decodes an NDJSON output stream into stdout, stderr and the exit frame.
  struct decoded {
    std::string out, err;
    json exit;
    std::vector<json> frames;
  };
  static std::string unbase64(const std::string& s) {
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (char ch : s) {
      int v = ch >= 'A' && ch <= 'Z' ? ch - 'A'
              : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
              : ch >= '0' && ch <= '9' ? ch - '0' + 52
              : ch == '+' ? 62 : ch == '/' ? 63 : -1;
      if (v < 0) continue;
      acc = (acc << 6) | uint32_t(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out.push_back(static_cast<char>((acc >> bits) & 0xff));
      }
    }
    return out;
  }
  static decoded decode(const std::string& ndjson) {
    decoded d;
    std::istringstream in(ndjson);
    std::string line;
    while (std::getline(in, line)) {
      auto j = json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << line;
      if (j.is_discarded()) continue;
      d.frames.push_back(j);
      if (j.contains("exit")) d.exit = j["exit"];
      else if (j.value("stream", "") == "stdout") d.out += unbase64(j.value("data", ""));
      else if (j.value("stream", "") == "stderr") d.err += unbase64(j.value("data", ""));
    }
    return d;
  }

  // Writes `bytes` on a fresh connection and reads until the gateway closes it.
  static std::string raw_exchange(const std::string& bytes) {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket s(ioc);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), gw_->port()});
    boost::system::error_code ec;
    boost::asio::write(s, boost::asio::buffer(bytes), ec);
    std::string out;
    char buf[4096];
    for (;;) {
      const auto n = s.read_some(boost::asio::buffer(buf), ec);
      if (ec) break;
      out.append(buf, n);
    }
    return out;
  }

  static inline test::gateway_process* gw_ = nullptr;
  static inline std::string token_, other_token_;
};

TEST_F(Gateway, HealthAndAuth) {
  EXPECT_EQ(call("GET", "/healthz", {}, "").status, 200u);
  auto none = call("GET", "/v1/sandboxes", {}, "");
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(body_of(none)["error"]["code"], "unauthenticated");
  EXPECT_EQ(call("GET", "/v1/sandboxes", {}, "not-a-token").status, 401u);
  EXPECT_EQ(call("GET", "/v1/sandboxes").status, 200u);
  // A token created while the gateway runs works at once (the file is re-read on change).
  const auto fresh = gw_->new_token(*d_, "late");
  EXPECT_EQ(call("GET", "/v1/sandboxes", {}, fresh).status, 200u);
}

TEST_F(Gateway, SandboxLifecycleExecAndOutput) {
  const auto sb = create_sandbox({{"timeout", 600}, {"cpu", 1}, {"memory", 512},
                                  {"tags", {{"run", "42"}}}, {"name", "gw-life"}});
  ASSERT_TRUE(wire::valid_id(sb, "sb-")) << sb;
  auto info = call("GET", "/v1/sandboxes/" + sb);
  ASSERT_EQ(info.status, 200u) << info.body;
  EXPECT_EQ(body_of(info)["status"], "running");
  EXPECT_EQ(body_of(info)["tags"]["run"], "42");

  auto listed = body_of(call("GET", "/v1/sandboxes?tag=run:42"));
  ASSERT_EQ(listed["sandboxes"].size(), 1u) << listed.dump();
  EXPECT_EQ(listed["sandboxes"][0]["id"], sb);
  EXPECT_EQ(body_of(call("GET", "/v1/sandboxes?tag=run:43"))["sandboxes"].size(), 0u);
  EXPECT_EQ(body_of(call("GET", "/v1/sandboxes?name=gw-life"))["sandboxes"].size(), 1u);

  auto tags = call("PUT", "/v1/sandboxes/" + sb + "/tags", json{{"tags", {{"run", "43"}}}}.dump());
  ASSERT_EQ(tags.status, 200u) << tags.body;
  EXPECT_EQ(body_of(tags)["tags"]["run"], "43");

  // An exec reading stdin: written over HTTP, then EOF.
  auto ex = call("POST", "/v1/sandboxes/" + sb + "/exec",
                 json{{"args", {"python3", "-c", "import sys; print(input()[::-1]); "
                                "sys.stderr.write('e'); sys.exit(3)"}}}.dump());
  ASSERT_EQ(ex.status, 201u) << ex.body;
  const auto eid = body_of(ex)["exec_id"].get<std::string>();
  auto in = call("POST", "/v1/sandboxes/" + sb + "/execs/" + eid + "/stdin?eof=1", "hello\n");
  ASSERT_EQ(in.status, 200u) << in.body;
  auto followed = call("GET", "/v1/sandboxes/" + sb + "/execs/" + eid + "/output?follow=1");
  ASSERT_EQ(followed.status, 200u) << followed.body;
  EXPECT_EQ(followed.headers["content-type"], "application/x-ndjson");
  auto d = decode(followed.body);
  EXPECT_EQ(d.out, "olleh\n");
  EXPECT_EQ(d.err, "e");
  EXPECT_EQ(d.exit["returncode"], 3);
  EXPECT_EQ(d.exit["status"], "exited");

  // The same exec again: replayed from the store; offsets and stream selection.
  auto only_out = decode(call("GET", "/v1/sandboxes/" + sb + "/execs/" + eid +
                              "/output?stream=stdout&offset=2").body);
  EXPECT_EQ(only_out.out, "leh\n");
  EXPECT_EQ(only_out.err, "");
  EXPECT_EQ(only_out.exit["returncode"], 3);

  auto st = call("GET", "/v1/sandboxes/" + sb + "/execs/" + eid);
  ASSERT_EQ(st.status, 200u) << st.body;
  EXPECT_EQ(body_of(st)["returncode"], 3);
  EXPECT_EQ(body_of(st)["stdout_bytes"], 6);
  EXPECT_EQ(body_of(st)["stderr_bytes"], 1);
  EXPECT_EQ(call("GET", "/v1/sandboxes/" + sb + "/execs/ex-nope").status, 404u);

  // A client-chosen exec id re-attaches: never a second process.
  auto a1 = call("POST", "/v1/sandboxes/" + sb + "/exec",
                 json{{"args", {"sh", "-c", "echo once >> /tmp/count"}}, {"exec_id", "mine-1"}, {"stdin", false}}.dump());
  ASSERT_EQ(a1.status, 201u) << a1.body;
  EXPECT_FALSE(body_of(a1)["reattached"].get<bool>());
  EXPECT_EQ(decode(call("GET", "/v1/sandboxes/" + sb + "/execs/mine-1/output?follow=1").body).exit["returncode"], 0);
  auto a2 = call("POST", "/v1/sandboxes/" + sb + "/exec",
                 json{{"args", {"sh", "-c", "echo once >> /tmp/count"}}, {"exec_id", "mine-1"}}.dump());
  EXPECT_TRUE(body_of(a2)["reattached"].get<bool>());
  auto count = call("GET", "/v1/sandboxes/" + sb + "/files?path=/tmp/count");
  EXPECT_EQ(count.body, "once\n");

  // Signal a sleeping exec.
  auto sl = call("POST", "/v1/sandboxes/" + sb + "/exec", json{{"args", {"sleep", "300"}}}.dump());
  const auto sleid = body_of(sl)["exec_id"].get<std::string>();
  auto sig = call("POST", "/v1/sandboxes/" + sb + "/execs/" + sleid + "/signal", json{{"signal", 9}}.dump());
  EXPECT_EQ(sig.status, 200u) << sig.body;
  auto killed = decode(call("GET", "/v1/sandboxes/" + sb + "/execs/" + sleid + "/output?follow=1").body);
  EXPECT_EQ(killed.exit["returncode"], 137);

  auto term = call("POST", "/v1/sandboxes/" + sb + "/terminate?wait=1");
  ASSERT_EQ(term.status, 200u) << term.body;
  EXPECT_EQ(body_of(term)["returncode"], 137);
  auto waited = call("GET", "/v1/sandboxes/" + sb + "/wait?timeout=30");
  EXPECT_EQ(waited.status, 200u) << waited.body;
  EXPECT_EQ(body_of(waited)["status"], "terminated");
}

TEST_F(Gateway, Files) {
  const auto sb = create_sandbox();
  const auto base = "/v1/sandboxes/" + sb + "/files";
  EXPECT_EQ(call("POST", base + "/mkdir?path=/tmp/d/e&parents=1").status, 201u);
  std::string blob(700 * 1024, 'x');  // over one fs.read / fs.write request
  blob[12345] = 'y';
  ASSERT_EQ(call("PUT", base + "?path=/tmp/d/e/blob", blob).status, 200u);
  auto got = call("GET", base + "?path=/tmp/d/e/blob");
  ASSERT_EQ(got.status, 200u);
  EXPECT_EQ(got.body, blob);
  auto ls = body_of(call("GET", base + "/list?path=/tmp/d/e"));
  ASSERT_EQ(ls["entries"].size(), 1u) << ls.dump();
  EXPECT_EQ(ls["entries"][0]["name"], "blob");
  EXPECT_EQ(ls["entries"][0]["size"], blob.size());
  EXPECT_EQ(call("GET", base + "?path=/tmp/none").status, 404u);
  EXPECT_EQ(call("GET", base + "?path=relative").status, 400u);
  EXPECT_EQ(call("DELETE", base + "?path=/tmp/d&recursive=1").status, 200u);
  EXPECT_EQ(call("GET", base + "/list?path=/tmp/d").status, 404u);
  (void)call("POST", "/v1/sandboxes/" + sb + "/terminate");
}

TEST_F(Gateway, RunAndUsage) {
  auto r = call("POST", "/v1/run",
                json{{"args", {"python3", "-c", "import sys; print(sys.stdin.read().upper()); sys.exit(4)"}},
                     {"stdin", "abc"}, {"timeout", 60}}.dump());
  ASSERT_EQ(r.status, 200u) << r.body;
  auto j = body_of(r);
  EXPECT_EQ(j["stdout"], "ABC\n");
  EXPECT_EQ(j["returncode"], 4);
  EXPECT_EQ(j["status"], "exited");
  // Output that is not UTF-8 comes back (replaced), and the gateway stays up.
  auto binary = call("POST", "/v1/run", json{{"args", {"printf", "a\\377b"}}}.dump());
  ASSERT_EQ(binary.status, 200u) << binary.body;
  EXPECT_EQ(body_of(binary)["stdout"], "a\xEF\xBF\xBD" "b");
  auto u = call("GET", "/v1/usage");
  ASSERT_EQ(u.status, 200u) << u.body;
  EXPECT_TRUE(body_of(u)["total"].contains("cost"));
}

TEST_F(Gateway, TenantsSeeOnlyTheirOwn) {
  const auto sb = create_sandbox({{"tags", {{"owner", "gw"}}}});
  auto mine = call("GET", "/v1/sandboxes/" + sb);
  ASSERT_EQ(mine.status, 200u);
  const auto unknown = "sb-" + wire::new_id("sb-").substr(3);
  for (const std::string suffix : {"", "/terminate", "/files?path=/etc/hostname", "/execs/x"}) {
    const std::string method = suffix == "/terminate" ? "POST" : "GET";
    auto theirs = call(method, "/v1/sandboxes/" + sb + suffix, {}, other_token_);
    auto nobody = call(method, "/v1/sandboxes/" + unknown + suffix, {}, other_token_);
    EXPECT_EQ(theirs.status, 404u) << suffix << " " << theirs.body;
    EXPECT_EQ(nobody.status, 404u) << suffix;
    // The same answer, but for the id itself.
    auto a = theirs.body, b = nobody.body;
    for (auto* s : {&a, &b})
      for (const auto& id : {sb, unknown})
        if (auto at = s->find(id); at != std::string::npos) s->replace(at, id.size(), "ID");
    EXPECT_EQ(a, b) << suffix;
  }
  EXPECT_EQ(body_of(call("GET", "/v1/sandboxes?tag=owner:gw", {}, other_token_))["sandboxes"].size(), 0u);
  EXPECT_EQ(call("GET", "/v1/sandboxes/" + sb).status, 200u);  // still there, still running
  EXPECT_EQ(body_of(call("GET", "/v1/sandboxes/" + sb))["status"], "running");
  (void)call("POST", "/v1/sandboxes/" + sb + "/terminate");
}

TEST_F(Gateway, BadInputAnswersErrors) {
  auto bad = call("POST", "/v1/sandboxes", "{not json");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(body_of(bad)["error"]["code"], "invalid_argument");
  EXPECT_EQ(call("POST", "/v1/sandboxes", R"({"timeout": "soon"})").status, 400u);
  EXPECT_EQ(call("POST", "/v1/sandboxes", R"({"tags": [1]})").status, 400u);
  // Bodies and headers over their bounds are refused from the header, before any body byte.
  auto big = raw_exchange("POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                          token_ + "\r\nContent-Length: 9437184\r\n\r\n{}");
  EXPECT_EQ(big.rfind("HTTP/1.1 413", 0), 0u) << big;
  auto fat = raw_exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fat: " + std::string(20000, 'f') +
                          "\r\n\r\n");
  EXPECT_EQ(fat.rfind("HTTP/1.1 431", 0), 0u) << fat.substr(0, 100);
  EXPECT_EQ(call("GET", "/v1/nothing-here").status, 404u);
  EXPECT_EQ(call("GET", "/v1/sandboxes/not-an-id").status, 404u);
  EXPECT_EQ(call("POST", "/v1/sandboxes/" + wire::new_id("sb-") + "/exec", R"({"args": []})").status, 400u);
  // The gateway is still fine.
  EXPECT_EQ(call("GET", "/healthz", {}, "").status, 200u);
}

// A client that asks for a large output stream and never reads it holds nothing up: other
// clients' requests and streams go on, and the gateway drops the stalled one at its write
// deadline (a gateway of its own here, with a 1 s deadline).
TEST_F(Gateway, StalledReaderDoesNotStallOthers) {
  test::gateway_process quick;
  std::string why;
  ASSERT_TRUE(quick.start(*d_, &why, {"--write-timeout", "1", "--read-timeout", "1"})) << why;
  {
    // A client that sends half a request is cut off at the read deadline.
    boost::asio::io_context slow_ioc;
    boost::asio::ip::tcp::socket slow(slow_ioc);
    slow.connect({boost::asio::ip::make_address("127.0.0.1"), quick.port()});
    boost::asio::write(slow, boost::asio::buffer(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\n")));
    char byte;
    boost::system::error_code ec;
    slow.read_some(boost::asio::buffer(&byte, 1), ec);  // returns when the gateway closes
    EXPECT_TRUE(ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) << ec.message();
  }
  const auto sb = create_sandbox();
  auto ex = call("POST", "/v1/sandboxes/" + sb + "/exec",
                 json{{"args", {"sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' x"}}, {"stdin", false}}.dump());
  ASSERT_EQ(ex.status, 201u) << ex.body;
  const auto eid = body_of(ex)["exec_id"].get<std::string>();
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket stalled(ioc);
  stalled.connect({boost::asio::ip::make_address("127.0.0.1"), quick.port()});
  const std::string req = "GET /v1/sandboxes/" + sb + "/execs/" + eid +
                          "/output?follow=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token_ +
                          "\r\n\r\n";
  boost::asio::write(stalled, boost::asio::buffer(req));
  // Never read `stalled`. Meanwhile another client runs a whole exec and reads its output.
  auto other = quick.call("POST", "/v1/sandboxes/" + sb + "/exec",
                          json{{"args", {"echo", "fine"}}, {"stdin", false}}.dump(), token_);
  ASSERT_EQ(other.status, 201u);
  auto out = decode(quick.call("GET", "/v1/sandboxes/" + sb + "/execs/" +
                               body_of(other)["exec_id"].get<std::string>() + "/output?follow=1",
                               {}, token_).body);
  EXPECT_EQ(out.out, "fine\n");
  EXPECT_TRUE(quick.process().wait_for_output("client gone or too slow", 60s))
      << quick.process().output();
  // The output is all in the executor's store: a reader that comes back gets every byte.
  auto full = call("GET", "/v1/sandboxes/" + sb + "/execs/" + eid + "/output?follow=1&stream=stdout&offset=19999990");
  auto tail = decode(full.body);
  EXPECT_EQ(tail.out, std::string(10, 'x'));
  EXPECT_EQ(tail.exit["stdout_bytes"], 20000000);
  (void)call("POST", "/v1/sandboxes/" + sb + "/terminate");
}

TEST_F(Gateway, Metrics) {
  (void)call("GET", "/v1/sandboxes");
  // Gateway-wide figures: an operator's token, not a tenant's, not none.
  EXPECT_EQ(call("GET", "/metrics", {}, "").status, 401u);
  EXPECT_EQ(call("GET", "/metrics", {}, token_).status, 403u);
  const auto admin = gw_->add_token("operator", "role=admin");
  EXPECT_EQ(call("GET", "/v1/sandboxes", {}, admin).status, 403u) << "an operator token is no tenant's";
  auto m = call("GET", "/metrics", {}, admin);
  ASSERT_EQ(m.status, 200u);
  EXPECT_NE(m.body.find("corral_gateway_requests_total{route=\"/v1/sandboxes\",status=\"200\"}"),
            std::string::npos) << m.body;
  EXPECT_NE(m.body.find("corral_gateway_request_seconds_bucket"), std::string::npos);
  EXPECT_NE(m.body.find("corral_gateway_nats_connected 1"), std::string::npos);
}

}  // namespace
}  // namespace corral

namespace corral {
namespace {

// Every route of docs/openapi.yaml exists on a running gateway: without a token a /v1 route
// answers 401, and with one it answers anything but the route-unknown 404 (ids that exist
// nowhere and bodies that are refused keep the calls free of side effects).
TEST_F(Gateway, OpenApiRoutesExist) {
  std::ifstream in(std::string(CORRAL_SOURCE_DIR) + "/docs/openapi.yaml");
  ASSERT_TRUE(in) << "docs/openapi.yaml";
  std::vector<std::pair<std::string, std::string>> routes;  // method, path
  std::string line, path;
  bool in_paths = false;
  while (std::getline(in, line)) {
    if (line.rfind("paths:", 0) == 0) { in_paths = true; continue; }
    if (!line.empty() && line[0] != ' ') in_paths = false;
    if (!in_paths) continue;
    if (line.rfind("  /", 0) == 0 && line.back() == ':') path = line.substr(2, line.size() - 3);
    for (const std::string m : {"get", "put", "post", "delete"})
      if (line == "    " + m + ":") {
        std::string upper = m;
        for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        routes.emplace_back(upper, path);
      }
  }
  ASSERT_GE(routes.size(), 20u);
  const auto nobody = wire::new_id("sb-");
  for (const auto& [method, route] : routes) {
    std::string target = route;
    for (const auto& [param, value] : {std::pair<std::string, std::string>{"{id}", nobody},
                                       {"{eid}", "ex-none"}})
      if (auto at = target.find(param); at != std::string::npos) target.replace(at, param.size(), value);
    if (target.find("/files") != std::string::npos) target += "?path=/tmp/x";
    const std::string refused_body = method == "POST" || method == "PUT" ? "[]" : "";
    auto anon = call(method, target, refused_body, "");
    if (route.rfind("/v1/", 0) == 0 || route == "/metrics") EXPECT_EQ(anon.status, 401u) << method << " " << route;
    else EXPECT_EQ(anon.status, 200u) << method << " " << route;
    auto authed = call(method, target, refused_body);
    EXPECT_NE(authed.status, 0u) << method << " " << route;
    EXPECT_EQ(authed.body.find("no such route"), std::string::npos)
        << method << " " << route << ": " << authed.body;
  }
  EXPECT_NE(call("GET", "/v1/no-such-thing").body.find("no such route"), std::string::npos);
}

}  // namespace
}  // namespace corral

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace corral {
namespace {

// WebSocket: stdin in as binary frames (a text "eof" closes it), output out as tagged binary
// frames, the exit as the last, text, frame.
TEST_F(Gateway, WebSocketExec) {
  namespace beast = boost::beast;
  const auto sb = create_sandbox();
  auto ex = call("POST", "/v1/sandboxes/" + sb + "/exec",
                 json{{"args", {"python3", "-c", "import sys; d=sys.stdin.read(); print(d[::-1]); "
                                "sys.stderr.write('E'); sys.exit(5)"}}}.dump());
  ASSERT_EQ(ex.status, 201u) << ex.body;
  const auto eid = body_of(ex)["exec_id"].get<std::string>();
  boost::asio::io_context ioc;
  beast::websocket::stream<beast::tcp_stream> ws(ioc);
  beast::get_lowest_layer(ws).expires_after(60s);
  beast::get_lowest_layer(ws).connect({boost::asio::ip::make_address("127.0.0.1"), gw_->port()});
  ws.set_option(beast::websocket::stream_base::decorator([](beast::websocket::request_type& r) {
    r.set(beast::http::field::authorization, "Bearer " + token_);
  }));
  ws.handshake("127.0.0.1", "/v1/sandboxes/" + sb + "/execs/" + eid + "/ws");
  ws.binary(true);
  ws.write(boost::asio::buffer(std::string("abc")));
  ws.binary(false);
  ws.write(boost::asio::buffer(std::string("eof")));
  std::string out, err;
  json exit;
  for (;;) {
    beast::flat_buffer buf;
    beast::error_code ec;
    ws.read(buf, ec);
    ASSERT_FALSE(ec) << ec.message();
    auto data = beast::buffers_to_string(buf.data());
    if (!ws.got_binary()) {
      exit = json::parse(data);
      break;
    }
    ASSERT_FALSE(data.empty());
    (data[0] == 1 ? out : err) += data.substr(1);
  }
  EXPECT_EQ(out, "cba\n");
  EXPECT_EQ(err, "E");
  EXPECT_EQ(exit["returncode"], 5) << exit.dump();
  beast::error_code ec;
  ws.close(beast::websocket::close_code::normal, ec);
  // Without an upgrade the route answers 400.
  EXPECT_EQ(call("GET", "/v1/sandboxes/" + sb + "/execs/" + eid + "/ws").status, 400u);
  (void)call("POST", "/v1/sandboxes/" + sb + "/terminate");
}

}  // namespace
}  // namespace corral

namespace corral {
namespace {

// The Python client (clients/python) runs the README's example against this gateway.
TEST_F(Gateway, PythonClient) {
  const std::string src = CORRAL_SOURCE_DIR;
  auto r = test::run({"python3", src + "/tests/python/test_client.py"}, {}, std::chrono::seconds(180),
                     {{"CORRAL_URL", gw_->url()}, {"CORRAL_TOKEN", token_},
                      {"PYTHONPATH", src + "/clients/python"}, {"PYTHONDONTWRITEBYTECODE", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("Ran 4 tests"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace corral

#include <sys/types.h>

#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace corral {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace bws = boost::beast::websocket;

// A number from /proc/PID/status ("Threads", "VmRSS" in kB).
long proc_status(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

// One asynchronous output stream of the gateway, NDJSON (GET output?follow=1) or WebSocket,
// collecting stdout and the exit; `on_first` when the first stdout byte arrived, `on_done` at
// the end. Everything on one io_context thread.
class async_follower : public std::enable_shared_from_this<async_follower> {
 public:
  struct hooks {
    std::function<void()> on_first, on_done;
  };
  async_follower(boost::asio::io_context& ioc, uint16_t port, std::string token, std::string target,
                 bool websocket, hooks h)
      : ws_(boost::asio::make_strand(ioc)), port_(port), token_(std::move(token)),
        target_(std::move(target)), websocket_(websocket), h_(std::move(h)) {}

  void start() {
    auto& s = beast::get_lowest_layer(ws_);
    s.expires_after(120s);
    s.async_connect({boost::asio::ip::make_address("127.0.0.1"), port_},
                    [self = shared_from_this()](beast::error_code ec) {
                      if (ec) return self->end("connect: " + ec.message());
                      self->websocket_ ? self->handshake() : self->get();
                    });
  }
  std::string out, error;
  json exit;
  bool done = false;

 private:
  void handshake() {
    ws_.set_option(bws::stream_base::decorator([t = token_](bws::request_type& r) {
      r.set(bhttp::field::authorization, "Bearer " + t);
    }));
    ws_.async_handshake("127.0.0.1", target_ + "/ws", [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->end("handshake: " + ec.message());
      self->read_message();
    });
  }
  void read_message() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->end("read: " + ec.message());
      auto data = beast::buffers_to_string(self->buf_.data());
      self->buf_.consume(self->buf_.size());
      if (!self->ws_.got_binary()) {
        self->exit = json::parse(data, nullptr, false);
        return self->end({});
      }
      if (!data.empty() && data[0] == 1) self->add(data.substr(1));
      self->read_message();
    });
  }
  void get() {
    req_ = {bhttp::verb::get, target_ + "/output?follow=1", 11};
    req_.set(bhttp::field::host, "127.0.0.1");
    req_.set(bhttp::field::authorization, "Bearer " + token_);
    parser_.body_limit(64 * 1024 * 1024);
    bhttp::async_write(beast::get_lowest_layer(ws_), req_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (ec) return self->end("write: " + ec.message());
                         self->read_some();
                       });
  }
  void read_some() {
    bhttp::async_read_some(beast::get_lowest_layer(ws_), buf_, parser_,
                           [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             if (ec) return self->end("read: " + ec.message());
                             self->lines();
                             if (self->parser_.is_done()) return self->end({});
                             self->read_some();
                           });
  }
  void lines() {
    auto& body = parser_.get().body();
    for (auto nl = body.find('\n', scanned_); nl != std::string::npos; nl = body.find('\n', scanned_)) {
      auto j = json::parse(body.substr(scanned_, nl - scanned_), nullptr, false);
      scanned_ = nl + 1;
      if (j.is_discarded()) continue;
      if (j.contains("exit")) exit = j["exit"];
      else if (j.value("stream", "") == "stdout") add(base64_decode(j.value("data", "")));
    }
  }
  static std::string base64_decode(const std::string& s) {
    std::string o;
    uint32_t acc = 0;
    int bits = 0;
    for (char ch : s) {
      int v = ch >= 'A' && ch <= 'Z' ? ch - 'A' : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
              : ch >= '0' && ch <= '9' ? ch - '0' + 52 : ch == '+' ? 62 : ch == '/' ? 63 : -1;
      if (v < 0) continue;
      acc = (acc << 6) | uint32_t(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        o.push_back(static_cast<char>((acc >> bits) & 0xff));
      }
    }
    return o;
  }
  void add(const std::string& data) {
    const bool first = out.empty() && !data.empty();
    out += data;
    if (first && h_.on_first) h_.on_first();
  }
  void end(const std::string& why) {
    if (done) return;
    done = true;
    error = why;
    if (h_.on_done) h_.on_done();
  }

  bws::stream<beast::tcp_stream> ws_;
  uint16_t port_;
  std::string token_, target_;
  bool websocket_;
  hooks h_;
  beast::flat_buffer buf_;
  bhttp::request<bhttp::empty_body> req_;
  bhttp::response_parser<bhttp::string_body> parser_;
  std::size_t scanned_ = 0;
};

// Output streams hold no thread: 200 streams (half WebSocket, half NDJSON, 20 on each of 10
// execs) are open at once, the gateway's thread count stays that of an idle gateway, and
// every stream gets all the output and the exit.
TEST_F(Gateway, ManyConcurrentStreamsHoldNoThreads) {
  const auto sb = create_sandbox();
  constexpr int execs = 10, per_exec = 20, total = execs * per_exec;
  std::vector<std::string> eids;
  for (int i = 0; i < execs; ++i) {
    auto ex = call("POST", "/v1/sandboxes/" + sb + "/exec",
                   json{{"args", {"sh", "-c", "echo first; read x; echo second"}}}.dump());
    ASSERT_EQ(ex.status, 201u) << ex.body;
    eids.push_back(body_of(ex)["exec_id"].get<std::string>());
  }
  const long idle_threads = proc_status(gw_->process().pid(), "Threads");
  boost::asio::io_context ioc;
  std::atomic<int> first{0}, done{0};
  std::promise<void> all_first, all_done;
  std::vector<std::shared_ptr<async_follower>> streams;
  for (int k = 0; k < total; ++k) {
    async_follower::hooks h;
    h.on_first = [&] {
      if (++first == total) all_first.set_value();
    };
    h.on_done = [&] {
      if (++done == total) all_done.set_value();
    };
    streams.push_back(std::make_shared<async_follower>(
        ioc, gw_->port(), token_, "/v1/sandboxes/" + sb + "/execs/" + eids[k % execs], k % 2 == 0, h));
    streams.back()->start();
  }
  std::thread loop([&] { ioc.run(); });
  const bool all_open = all_first.get_future().wait_for(120s) == std::future_status::ready;
  const long busy_threads = proc_status(gw_->process().pid(), "Threads");
  EXPECT_TRUE(all_open) << first << " of " << total << " streams got output";
  // io threads, workers and NATS threads; not one per stream.
  EXPECT_LE(busy_threads, idle_threads + 4) << "idle: " << idle_threads;
  for (const auto& eid : eids)
    EXPECT_EQ(call("POST", "/v1/sandboxes/" + sb + "/execs/" + eid + "/stdin?eof=1").status, 200u);
  const bool all_ended = all_done.get_future().wait_for(120s) == std::future_status::ready;
  if (!all_ended) ioc.stop();
  loop.join();
  ASSERT_TRUE(all_ended) << done << " of " << total << " streams ended";
  for (int k = 0; k < total; ++k) {
    const auto& s = *streams[k];
    EXPECT_EQ(s.error, "") << k;
    EXPECT_EQ(s.out, "first\nsecond\n") << k << (k % 2 == 0 ? " (WebSocket)" : " (NDJSON)");
    EXPECT_EQ(s.exit.value("returncode", -1), 0) << k << " " << s.exit.dump();
  }
  (void)call("POST", "/v1/sandboxes/" + sb + "/terminate");
}

// A client that stops reading a large output costs the gateway a bounded amount of memory
// (the live output it cannot queue is left in the executor's store), does not hold up another
// client's stream, and once it reads again gets every byte, in order, then the exit.
TEST_F(Gateway, StalledReaderIsBoundedAndResumes) {
  // A gateway of its own, with a write deadline longer than the stall.
  test::gateway_process patient;
  std::string why;
  ASSERT_TRUE(patient.start(*d_, &why, {"--write-timeout", "600"})) << why;
  auto pcall = [&](const std::string& method, const std::string& target, const std::string& body = {}) {
    return patient.call(method, target, body, token_);
  };
  const auto sb = create_sandbox();
  constexpr std::size_t size = 60'000'000;
  auto big = pcall("POST", "/v1/sandboxes/" + sb + "/exec",
                   json{{"args", {"sh", "-c", "head -c " + std::to_string(size) + " /dev/zero | tr '\\0' x"}},
                        {"stdin", false}}.dump());
  ASSERT_EQ(big.status, 201u) << big.body;
  const auto eid = body_of(big)["exec_id"].get<std::string>();
  const long rss_before = proc_status(patient.process().pid(), "VmRSS");
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket stalled(ioc);
  stalled.connect({boost::asio::ip::make_address("127.0.0.1"), patient.port()});
  const std::string req = "GET /v1/sandboxes/" + sb + "/execs/" + eid +
                          "/output?follow=1&stream=stdout HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                          token_ + "\r\n\r\n";
  boost::asio::write(stalled, boost::asio::buffer(req));
  // Not reading `stalled`: another client's exec and stream go on meanwhile.
  auto other = pcall("POST", "/v1/sandboxes/" + sb + "/exec", json{{"args", {"echo", "fine"}}, {"stdin", false}}.dump());
  ASSERT_EQ(other.status, 201u) << other.body;
  auto fine = decode(pcall("GET", "/v1/sandboxes/" + sb + "/execs/" +
                           body_of(other)["exec_id"].get<std::string>() + "/output?follow=1").body);
  EXPECT_EQ(fine.out, "fine\n");
  // The process is not held up by the stalled reader: it writes everything and ends (this
  // stream of its empty stderr returns at the exit).
  auto waited = decode(pcall("GET", "/v1/sandboxes/" + sb + "/execs/" + eid + "/output?stream=stderr&follow=1").body);
  EXPECT_EQ(waited.exit["stdout_bytes"], size) << waited.exit.dump();
  const long rss_stalled = proc_status(patient.process().pid(), "VmRSS");
  // Held here at most: the live queue bound and one replay batch (4 MiB each by default),
  // base64-encoded; far less than the 80 MB of the whole encoded output. (Not under ASan: its
  // quarantine keeps freed memory resident.)
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(rss_stalled - rss_before, 40 * 1024) << "kB; before " << rss_before;
#else
  (void)rss_stalled;
  (void)rss_before;
#endif
  // Reading again: every byte, in order, then the exit.
  std::string raw;
  char buf[1 << 16];
  boost::system::error_code ec;
  for (;;) {
    const auto n = stalled.read_some(boost::asio::buffer(buf), ec);
    if (ec) break;
    raw.append(buf, n);
    if (raw.size() >= 5 && raw.compare(raw.size() - 5, 5, "0\r\n\r\n") == 0) break;  // last chunk
  }
  // De-chunk, then decode the NDJSON.
  std::string body;
  std::size_t at = raw.find("\r\n\r\n");
  ASSERT_NE(at, std::string::npos);
  at += 4;
  while (at < raw.size()) {
    const auto eol = raw.find("\r\n", at);
    ASSERT_NE(eol, std::string::npos);
    const auto n = std::stoul(raw.substr(at, eol - at), nullptr, 16);
    if (n == 0) break;
    body.append(raw, eol + 2, n);
    at = eol + 2 + n + 2;
  }
  auto d = decode(body);
  EXPECT_EQ(d.out.size(), size);
  EXPECT_EQ(d.out.find_first_not_of('x'), std::string::npos);
  uint64_t expect_offset = 0;
  for (const auto& f : d.frames) {
    if (!f.contains("offset")) continue;
    EXPECT_EQ(f["offset"].get<uint64_t>(), expect_offset);
    expect_offset += unbase64(f.value("data", "")).size();
  }
  EXPECT_EQ(d.exit["stdout_bytes"], size);
  (void)pcall("POST", "/v1/sandboxes/" + sb + "/terminate", {});
}

// An output stream ends with its last chunk, not with the connection: a keep-alive client sends
// its next requests on the same connection. A WebSocket to an exec that does not exist answers
// 404 instead of the upgrade.
TEST_F(Gateway, StreamKeepsTheConnectionAndUnknownExecsAnswer404) {
  const auto sb = create_sandbox();
  boost::asio::io_context ioc;
  beast::tcp_stream conn(ioc);
  conn.expires_after(60s);
  conn.connect({boost::asio::ip::make_address("127.0.0.1"), gw_->port()});
  beast::flat_buffer buf;
  auto request = [&](bhttp::verb method, const std::string& target, const std::string& body) {
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.set(bhttp::field::authorization, "Bearer " + token_);
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    bhttp::write(conn, req);
    bhttp::response<bhttp::string_body> res;
    bhttp::read(conn, buf, res);
    return res;
  };
  for (int i = 0; i < 3; ++i) {
    auto ex = request(bhttp::verb::post, "/v1/sandboxes/" + sb + "/exec",
                      json{{"args", {"echo", std::to_string(i)}}, {"stdin", false}}.dump());
    ASSERT_EQ(ex.result_int(), 201u) << ex.body();
    EXPECT_TRUE(ex.keep_alive());
    auto out = request(bhttp::verb::get, "/v1/sandboxes/" + sb + "/execs/" +
                       json::parse(ex.body())["exec_id"].get<std::string>() + "/output?follow=1", {});
    ASSERT_EQ(out.result_int(), 200u) << out.body();
    EXPECT_TRUE(out.keep_alive());
    auto d = decode(out.body());
    EXPECT_EQ(d.out, std::to_string(i) + "\n");
    EXPECT_EQ(d.exit["returncode"], 0);
  }
  EXPECT_EQ(request(bhttp::verb::get, "/healthz", {}).result_int(), 200u);  // still the same connection

  // The upgrade request of a WebSocket client (Beast 1.74's handshake() does not hand back a
  // refused answer), on a connection of its own.
  beast::tcp_stream upgrade(ioc);
  upgrade.expires_after(60s);
  upgrade.connect({boost::asio::ip::make_address("127.0.0.1"), gw_->port()});
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/v1/sandboxes/" + sb + "/execs/ex-none/ws", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.set(bhttp::field::authorization, "Bearer " + token_);
  req.set(bhttp::field::connection, "Upgrade");
  req.set(bhttp::field::upgrade, "websocket");
  req.set(bhttp::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  req.set(bhttp::field::sec_websocket_version, "13");
  bhttp::write(upgrade, req);
  beast::flat_buffer ubuf;
  bhttp::response<bhttp::string_body> refused;
  bhttp::read(upgrade, ubuf, refused);
  EXPECT_EQ(refused.result_int(), 404u) << refused.body();
  (void)call("POST", "/v1/sandboxes/" + sb + "/terminate");
}

}  // namespace
}  // namespace corral
