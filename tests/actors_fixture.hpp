#pragma once
// What the actor tests share (actors_test's files, one per concern of the actors): request
// builders and the fixtures over node_fixture.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <set>

#include <caf/all.hpp>

#include "actors/node.hpp"
#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"
#include "tests/fakes/node_fixture.hpp"

namespace corral::actors_testing {

using testing::fake_clock;
using testing::fake_outbox;
using testing::fake_router;
using testing::fake_runtime;
using testing::published;
namespace fs = std::filesystem;

inline const std::string tenant = "t1";  // node_fixture's tenant

inline bytes make_create(const std::string& name = {}, int64_t timeout_ms = 0,
                  std::vector<std::pair<std::string, std::string>> tags = {},
                  std::vector<std::string> entrypoint = {}, int64_t idle_timeout_ms = 0,
                  std::vector<std::string> probe = {}) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateString(name);
  std::vector<flatbuffers::Offset<flatbuffers::String>> ep;
  for (const auto& a : entrypoint) ep.push_back(fbb.CreateString(a));
  auto epv = fbb.CreateVector(ep);
  auto probev = fbb.CreateVectorOfStrings(probe);
  std::vector<flatbuffers::Offset<wire::KeyValue>> kvs;
  for (auto& [k, v] : tags) kvs.push_back(wire::CreateKeyValue(fbb, fbb.CreateString(k), fbb.CreateString(v)));
  auto t = fbb.CreateVectorOfSortedTables(&kvs);
  wire::CreateSandboxBuilder b(fbb);
  b.add_name(n);
  b.add_timeout_ms(timeout_ms);
  b.add_tags(t);
  b.add_entrypoint(epv);
  b.add_idle_timeout_ms(idle_timeout_ms);
  b.add_probe_command(probev);
  fbb.Finish(b.Finish(), wire::CreateSandboxIdentifier());
  return wire::release(fbb);
}

inline bytes make_exec(const std::vector<std::string>& argv, const std::string& exec_id = {},
                int64_t timeout_ms = 0, bool with_stdin = false) {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString(exec_id);
  std::vector<flatbuffers::Offset<flatbuffers::String>> a;
  for (const auto& s : argv) a.push_back(fbb.CreateString(s));
  auto av = fbb.CreateVector(a);
  fbb.Finish(wire::CreateExecRequest(fbb, id, av, 0, 0, timeout_ms, with_stdin),
             wire::ExecRequestIdentifier());
  return wire::release(fbb);
}

class ActorsTest : public testing::node_fixture {
 protected:
  void configure(node_config& c) override {
    c.max_sandboxes = 3;
    c.exec_kill_grace_ms = 500;
    c.max_output_bytes = max_output_bytes_;
    c.tags = {{"gpu", "H100"}};
  }

  std::string create_ok(const std::string& name = {}, int64_t timeout_ms = 0) {
    auto r = call(wire::subjects::create(tenant, "default"), make_create(name, timeout_ms));
    const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
    EXPECT_NE(rep, nullptr) << error_text(r);
    if (rep == nullptr) return {};
    EXPECT_EQ(rep->sandbox()->state(), wire::SandboxState::running);
    return std::string(wire::str(rep->sandbox()->id()));
  }

  // Waits for the ExecExit of an exec and returns (outcome, exit code).
  std::pair<wire::Outcome, int> wait_exit(const std::string& sb, const std::string& ex) {
    auto got = out_.wait_for(wire::subjects::output(tenant, sb, ex), [](const published& p) {
      return wire::verify<wire::ExecExit>(p.payload.data(), p.payload.size()) != nullptr;
    });
    EXPECT_TRUE(got.has_value());
    if (!got) return {wire::Outcome::internal, -1};
    const auto* x = wire::verify<wire::ExecExit>(got->payload.data(), got->payload.size());
    return {x->status()->outcome(), x->status()->exit_code()};
  }

  uint64_t max_output_bytes_ = 64ULL * 1024 * 1024;
};

inline bytes make_wait(int64_t timeout_ms, bool until_ready = false) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(wire::CreateSandboxQuery(fbb, timeout_ms, until_ready), wire::SandboxQueryIdentifier());
  return wire::release(fbb);
}

inline bytes make_sized_create(uint32_t cpu_millis, uint32_t memory_mib, const std::string& name = {}) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateString(name);
  wire::CreateSandboxBuilder b(fbb);
  b.add_name(n);
  b.add_cpu_millis(cpu_millis);
  b.add_memory_mib(memory_mib);
  fbb.Finish(b.Finish(), wire::CreateSandboxIdentifier());
  return wire::release(fbb);
}

class WarmPoolTest : public testing::node_fixture {
 protected:
  void configure(node_config& c) override {
    c.max_sandboxes = max_sandboxes_;
    c.warm_pool = 2;
    c.exec_kill_grace_ms = 500;
  }

  // Waits for a heartbeat, among those published after the first `skip`, whose pool holds
  // `ready` booted sandboxes (the node publishes one each time its pool settles).
  bool wait_pool(uint32_t ready, std::size_t skip = 0) {
    return out_
        .wait_for(
            wire::subjects::heartbeat("node-a"),
            [&](const published& p) {
              const auto* h = wire::verify<wire::Heartbeat>(p.payload.data(), p.payload.size());
              return h != nullptr && h->warm() == ready;
            },
            std::chrono::seconds(10), skip)
        .has_value();
  }
  std::size_t heartbeats() { return out_.count(wire::subjects::heartbeat("node-a")); }

  node_stats stats() {
    node_stats out;
    caf::scoped_actor self{*sys_};
    self->request(node_, std::chrono::seconds(10), stats_atom::value)
        .receive([&](const node_stats& s) { out = s; }, [](caf::error&) { ADD_FAILURE() << "no stats"; });
    return out;
  }

  std::set<std::string> started_ids() {
    std::set<std::string> ids;
    for (const auto& spec : rt_.starts()) ids.insert(spec.id);
    return ids;
  }

  // A create that must succeed; returns its reply.
  const wire::SandboxInfo* created(const published& r) {
    const auto* rep = wire::verify<wire::SandboxReply>(r.payload.data(), r.payload.size());
    EXPECT_NE(rep, nullptr) << error_text(r);
    return rep == nullptr ? nullptr : rep->sandbox();
  }
  std::string create_ok(bytes request = make_create()) {
    auto r = call(wire::subjects::create(tenant, "default"), std::move(request));
    const auto* info = created(r);
    if (info == nullptr) return {};
    EXPECT_EQ(info->state(), wire::SandboxState::running);
    return std::string(wire::str(info->id()));
  }

  std::pair<wire::Outcome, int> run(const std::string& sb, const std::vector<std::string>& argv,
                                    const std::string& ex) {
    auto r = call(wire::subjects::sandbox_op(tenant, sb, "exec"), make_exec(argv, ex));
    EXPECT_NE(wire::verify<wire::ExecReply>(r.payload.data(), r.payload.size()), nullptr) << error_text(r);
    auto got = out_.wait_for(wire::subjects::output(tenant, sb, ex), [](const published& p) {
      return wire::verify<wire::ExecExit>(p.payload.data(), p.payload.size()) != nullptr;
    });
    if (!got) return {wire::Outcome::internal, -1};
    const auto* x = wire::verify<wire::ExecExit>(got->payload.data(), got->payload.size());
    return {x->status()->outcome(), x->status()->exit_code()};
  }

  uint32_t max_sandboxes_ = 3;
};

}  // namespace corral::actors_testing
