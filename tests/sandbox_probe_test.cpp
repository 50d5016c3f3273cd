// The sandbox actor's readiness probe.
// Against fakes of the runtime, outbox, router and clock, and a real store in a temp dir; every
// wait is on an event with a deadline.
#include "tests/actors_fixture.hpp"

namespace corral {
namespace {

using namespace actors_testing;

TEST_F(ActorsTest, ReadinessProbeGatesWaitUntilReady) {
  // A probe that passes: wait --ready returns with ready set.
  auto ok = call(wire::subjects::create(tenant, "default"),
                 make_create({}, 0, {}, {}, 0, {"echo", "ready"}));
  const auto* rep = wire::verify<wire::SandboxReply>(ok.payload.data(), ok.payload.size());
  ASSERT_NE(rep, nullptr) << error_text(ok);
  const std::string id(wire::str(rep->sandbox()->id()));
  auto w = call(wire::subjects::sandbox_op(tenant, id, "wait"), make_wait(10'000, true));
  const auto* ready = wire::verify<wire::SandboxReply>(w.payload.data(), w.payload.size());
  ASSERT_NE(ready, nullptr) << error_text(w);
  EXPECT_TRUE(ready->sandbox()->ready());
  EXPECT_EQ(ready->sandbox()->state(), wire::SandboxState::running);
  // A probe that keeps failing: never ready, so wait --ready runs into its deadline.
  auto bad = call(wire::subjects::create(tenant, "default"),
                  make_create({}, 0, {}, {}, 0, {"fail", "1"}));
  const auto* brep = wire::verify<wire::SandboxReply>(bad.payload.data(), bad.payload.size());
  ASSERT_NE(brep, nullptr) << error_text(bad);
  EXPECT_FALSE(brep->sandbox()->ready());
  const std::string bid(wire::str(brep->sandbox()->id()));
  auto bw = call(wire::subjects::sandbox_op(tenant, bid, "wait"), make_wait(300, true));
  EXPECT_EQ(error_code(bw), wire::ErrorCode::deadline_exceeded);
}

}  // namespace
}  // namespace corral
