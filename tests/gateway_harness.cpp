#include "tests/gateway_harness.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <random>

#include "gateway/token_store.hpp"

namespace corral::test {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

http_reply http_call(uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body, const std::string& token,
                     std::chrono::milliseconds timeout) {
  // Asynchronous, on an io_context run for at most `timeout`: beast's stream deadlines bind only
  // asynchronous operations.
  http_reply out;
  boost::asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);
  bool answered = false;
  stream.expires_after(timeout);
  stream.async_connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port),
                       [&](beast::error_code ec) {
    if (ec) return;
    http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
      if (ec) return;
      http::async_read(stream, buffer, parser, [&](beast::error_code ec, std::size_t) {
        answered = !ec || ec == http::error::end_of_stream;
      });
    });
  });
  ioc.run_for(timeout + std::chrono::seconds(1));
  if (!answered) return out;
  const auto& res = parser.get();
  out.status = res.result_int();
  out.body = res.body();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out.headers[name] = std::string(f.value());
  }
  return out;
}

std::string gateway_bin() {
  const char* other = std::getenv("CORRAL_TEST_GATEWAY_BIN");
  return other != nullptr && *other != '\0' ? std::string(other) : bin("corral-gateway");
}

namespace {
// The gateway's own NATS identity, when the deployment has identities.
std::vector<std::string> creds_args(deployment& d) {
  const auto seed = d.gateway_creds();
  if (seed.empty()) return {};
  return {"--nats-creds", seed};
}
}  // namespace

bool gateway_process::start(deployment& d, std::string* why, const std::vector<std::string>& extra,
                            const std::string& tokens_file) {
  tokens_file_ = tokens_file.empty() ? d.dir() + "/gateway-tokens" : tokens_file;
  std::vector<std::string> argv = {gateway_bin(), "--listen", "127.0.0.1:0", "--nats",
                                   d.nats().url(), "--tokens", tokens_file_};
  const auto creds = creds_args(d);
  argv.insert(argv.end(), creds.begin(), creds.end());
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (!proc_.start(argv)) {
    *why = "cannot start corral-gateway";
    return false;
  }
  const std::string line = "corral-gateway: listening on ";
  // The line with a port: the usage text a gateway prints when it refuses a flag names the
  // line too, followed by "PORT".
  auto port_in = [&](const std::string& out, const std::string& needle) -> uint16_t {
    for (auto at = out.find(needle); at != std::string::npos; at = out.find(needle, at + 1)) {
      const auto digits = out.substr(at + needle.size(), 5);
      if (!digits.empty() && std::isdigit(static_cast<unsigned char>(digits[0])))
        return static_cast<uint16_t>(std::stoul(digits));
    }
    return 0;
  };
  if (!proc_.wait_for_output(line, std::chrono::seconds(20)) || port_in(proc_.output(), line) == 0) {
    *why = "corral-gateway did not start: " + proc_.output();
    return false;
  }
  const auto out = proc_.output();
  port_ = port_in(out, line);
  url_ = "http://127.0.0.1:" + std::to_string(port_);
  metrics_port_ = port_in(out, "corral-gateway: metrics listening on ");
  return true;
}

std::string gateway_process::add_token(const std::string& tenant, const std::string& fields) {
  std::random_device rd;
  std::string token = "corral_test_";
  for (int i = 0; i < 32; ++i) token.push_back("0123456789abcdef"[rd() % 16]);
  std::ofstream out(tokens_file_, std::ios::app);
  out << gateway::sha256_hex(token) << " " << tenant << " " << fields << "\n";
  EXPECT_TRUE(out.good()) << tokens_file_;
  return token;
}

bool gateway_process::restart(deployment& d, std::string* why, const std::vector<std::string>& extra) {
  if (port_ == 0) {
    *why = "restart: the gateway was never started";
    return false;
  }
  proc_.kill9();
  std::vector<std::string> argv = {gateway_bin(), "--listen",
                                   "127.0.0.1:" + std::to_string(port_), "--nats", d.nats().url(),
                                   "--tokens", tokens_file_};
  const auto creds = creds_args(d);
  argv.insert(argv.end(), creds.begin(), creds.end());
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (!proc_.start(argv)) {
    *why = "cannot start corral-gateway";
    return false;
  }
  const std::string line = "corral-gateway: listening on " + std::to_string(port_) + "\n";
  if (!proc_.wait_for_output(line, std::chrono::seconds(20))) {
    *why = "corral-gateway did not start again on port " + std::to_string(port_) + ": " +
           proc_.output();
    return false;
  }
  return true;
}

std::string gateway_process::new_token(deployment& d, const std::string& tenant) {
  auto r = d.corral({"token", "create", "--tenant", tenant, "--tokens", tokens_file_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return trim(r.out);
}

}  // namespace corral::test
