#pragma once
// A test fixture for the actors: a node actor over fakes of the runtime, outbox, router and
// clock, and a real store in a fresh temp dir (behind failing_store, which fails no write until
// a test asks). Requests are sent by subject and decoded as the executor's bridge decodes them
// (executor/request_decode.hpp); replies are read from the fake outbox, waiting on the event
// with a deadline.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <caf/all.hpp>

#include "actors/node.hpp"
#include "tests/fakes/failing_store.hpp"
#include "tests/fakes/fake_ports.hpp"

namespace corral::testing {

class node_fixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Adjusts the node's configuration before open_node() starts it (it starts with no warm pool:
  // warm_pool 0).
  virtual void configure(node_config&) {}
  // Opens the store and starts a node on it (recovery included).
  void open_node();
  // Stops the node and closes the store (the data dir stays: open_node() reopens it).
  void close_node();

  // Sends a request for `subject` (of tenant `tenant`) to the actor that serves it; returns the
  // reply subject.
  std::string send(const std::string& subject, bytes payload);
  std::optional<published> reply_on(const std::string& reply,
                                    std::chrono::milliseconds within = std::chrono::seconds(10));
  // send() and wait for the first reply.
  published call(const std::string& subject, bytes payload);

  static wire::ErrorCode error_code(const published& p);
  static std::string error_text(const published& p);

  std::string tenant = "t1";
  std::string dir_;
  fake_outbox out_;
  fake_router router_;
  fake_clock clk_;
  fake_runtime rt_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<storage::store> store_;
  failing_store* faults_ = nullptr;  // store_ itself: fails the writes a test asks it to
  node_actor node_;
  int replies_ = 0;
  uint64_t session_ = 0;
};

}  // namespace corral::testing
