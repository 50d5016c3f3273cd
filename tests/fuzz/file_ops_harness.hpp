#pragma once
// The sandbox actor's file operations (actors/files.hpp), behind the bridge's decoding
// (executor/request_decode.hpp), over an outbox and an init link that keep what they are given,
// for the fs_request and init_event targets.
#include <memory>
#include <string>
#include <vector>

#include "actors/files.hpp"
#include "executor/request_decode.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

namespace corral::fuzz {

struct kept_outbox final : outbox {
  std::vector<std::pair<std::string, wire::bytes>> published;  // (reply address, message)
  void reply(const reply_handle& to, std::vector<uint8_t> message) override {
    if (!to.empty()) published.emplace_back(to.address(), std::move(message));
  }
  void publish_output(const exec_address&, std::vector<uint8_t>) override {}
  void publish_heartbeat(const std::string&, std::vector<uint8_t>) override {}
};

struct kept_link final : init_link {
  std::vector<wire::bytes> sent;
  bool send(std::vector<uint8_t> payload) override {
    sent.push_back(std::move(payload));
    return true;
  }
  void close() override {}
};

struct file_ops_harness {
  kept_outbox out;
  kept_link link;
  file_ops files;
  context_ptr ctx;
  file_ops_harness() {
    auto c = std::make_shared<node_context>();
    c->out = &out;
    ctx = c;
  }
  // A request on corral.v1.t.sbx.{sb}.fs.{op}, answered on "reply": decoded as the executor's
  // bridge decodes it (a refusal is its answer), then handed to the file operations.
  void request(const std::string& op, const uint8_t* data, std::size_t size) {
    auto d = bridge::decode_sandbox_request(
        "corral.v1.tenant-a.sbx.sb-0123456789abcdef0123456789abcdef.fs." + op,
        wire::bytes(data, data + size), reply_handle("reply"));
    if (!d) {
      published_refusal(d.refused);
      return;
    }
    const auto* req = std::get_if<verb::fs>(&*d.verb);
    if (req == nullptr) fuzz::fail("an fs subject decoded as another verb");
    files.on_request(ctx, &link, /*running=*/true, *req);
  }
  void published_refusal(const bridge::refusal& r) { out.published.emplace_back("reply", r.reply()); }
};

}  // namespace corral::fuzz
