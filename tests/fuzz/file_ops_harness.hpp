#pragma once
// The sandbox actor's file operations (actors/files.hpp) over an outbox and an init link that
// keep what they are given, for the fs_request and init_event targets.
#include <memory>
#include <string>
#include <vector>

#include "actors/files.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

namespace corral::fuzz {

struct kept_outbox final : outbox {
  std::vector<std::pair<std::string, wire::bytes>> published;
  void publish(const std::string& subject, std::vector<uint8_t> payload) override {
    published.emplace_back(subject, std::move(payload));
  }
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
  // A request on corral.v1.t.sbx.{sb}.fs.{op}, answered on "reply".
  void request(const std::string& op, const uint8_t* data, std::size_t size) {
    bus_request req;
    req.subject = "corral.v1.tenant-a.sbx.sb-0123456789abcdef0123456789abcdef.fs." + op;
    req.reply = "reply";
    req.data.assign(data, data + size);
    files.on_request(ctx, &link, /*running=*/true, req);
  }
};

}  // namespace corral::fuzz
