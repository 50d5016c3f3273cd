#include "tests/gateway_harness.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>

namespace corral::test {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

http_reply http_call(uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body, const std::string& token,
                     std::chrono::milliseconds timeout) {
  http_reply out;
  boost::asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.expires_after(timeout);
  stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return out;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req, ec);
  if (ec) return out;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);
  http::read(stream, buffer, parser, ec);
  if (ec && ec != http::error::end_of_stream) return out;
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

bool gateway_process::start(deployment& d, std::string* why, const std::vector<std::string>& extra) {
  tokens_file_ = d.dir() + "/gateway-tokens";
  std::vector<std::string> argv = {bin("corral-gateway"), "--listen", "127.0.0.1:0", "--nats",
                                   d.nats().url(), "--tokens", tokens_file_};
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (!proc_.start(argv)) {
    *why = "cannot start corral-gateway";
    return false;
  }
  const std::string line = "corral-gateway: listening on ";
  if (!proc_.wait_for_output(line, std::chrono::seconds(20))) {
    *why = "corral-gateway did not start: " + proc_.output();
    return false;
  }
  const auto out = proc_.output();
  port_ = static_cast<uint16_t>(std::stoul(out.substr(out.find(line) + line.size())));
  url_ = "http://127.0.0.1:" + std::to_string(port_);
  return true;
}

bool gateway_process::restart(deployment& d, std::string* why, const std::vector<std::string>& extra) {
  if (port_ == 0) {
    *why = "restart: the gateway was never started";
    return false;
  }
  proc_.kill9();
  std::vector<std::string> argv = {bin("corral-gateway"), "--listen",
                                   "127.0.0.1:" + std::to_string(port_), "--nats", d.nats().url(),
                                   "--tokens", tokens_file_};
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
