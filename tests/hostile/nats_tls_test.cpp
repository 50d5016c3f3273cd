// NATS over TLS between hosts (docs/operations.md, "TLS between hosts"): the bus's TLS options
// against a real nats-server that requires TLS, with certificates made by openssl for the test.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "bus/connection.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/nats_server.hpp"

namespace corral {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class NatsTls : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/corral-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by it.
    { std::ofstream(dir_ + "/san.ext") << "subjectAltName=IP:127.0.0.1\n"; }
    openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=corral test CA",
             "-keyout", dir_ + "/ca.key", "-out", dir_ + "/ca.pem"});
    for (const std::string who : {"server", "client"}) {
      openssl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + who, "-keyout",
               dir_ + "/" + who + ".key", "-out", dir_ + "/" + who + ".csr"});
      openssl({"x509", "-req", "-in", dir_ + "/" + who + ".csr", "-CA", dir_ + "/ca.pem", "-CAkey",
               dir_ + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", dir_ + "/san.ext",
               "-out", dir_ + "/" + who + ".pem"});
    }
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    auto r = test::run(args, {}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string tls_block(bool verify_clients) const {
    return "tls {\n  cert_file: \"" + dir_ + "/server.pem\"\n  key_file: \"" + dir_ +
           "/server.key\"\n  ca_file: \"" + dir_ + "/ca.pem\"\n" +
           (verify_clients ? "  verify: true\n" : "") + "}\n";
  }
  std::unique_ptr<bus::connection> connect(const std::string& url, const std::string& ca,
                                           const std::string& cert, const std::string& key,
                                           std::string* why) {
    bus::options o;
    o.urls = {url};
    o.tls_ca_file = ca;
    o.tls_cert_file = cert;
    o.tls_key_file = key;
    o.max_reconnect = 0;
    o.delivery_pool_threads = 0;
    return bus::connection::connect(o, why);
  }
  std::string dir_;
};

TEST_F(NatsTls, AClientConnectsOnlyWithTheCaThatSignedTheServer) {
  test::nats_server_process::options so;
  so.jetstream = false;
  so.config = tls_block(false);
  test::nats_server_process server(so);
  ASSERT_TRUE(server.start()) << server.error() << server.log();
  const std::string url = "tls://127.0.0.1:" + std::to_string(server.port());
  std::string why;
  auto c = connect(url, dir_ + "/ca.pem", "", "", &why);
  ASSERT_TRUE(c) << why;
  auto sub = c->subscribe("corral.v1.t.sbx.sb.out.ex", "", [](bus::message&&) {});
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_TRUE(c->flush(5000));
  // Without the CA, the server's certificate is not trusted.
  EXPECT_FALSE(connect(url, "", "", "", &why)) << "a server signed by an unknown CA was trusted";
  // A plain connection to a server that requires TLS is refused.
  EXPECT_FALSE(connect("nats://127.0.0.1:" + std::to_string(server.port()), "", "", "", &why));
}

TEST_F(NatsTls, AServerThatVerifiesClientsTakesOnlyCertifiedOnes) {
  test::nats_server_process::options so;
  so.jetstream = false;
  so.config = tls_block(true);
  test::nats_server_process server(so);
  ASSERT_TRUE(server.start()) << server.error() << server.log();
  const std::string url = "tls://127.0.0.1:" + std::to_string(server.port());
  std::string why;
  EXPECT_FALSE(connect(url, dir_ + "/ca.pem", "", "", &why)) << "a client without a certificate";
  auto c = connect(url, dir_ + "/ca.pem", dir_ + "/client.pem", dir_ + "/client.key", &why);
  EXPECT_TRUE(c) << why;
}

}  // namespace
}  // namespace corral
