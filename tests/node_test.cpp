// The node actor: capacity and the create queue group, list, names, input checks, orphans,
// heartbeats.
// Against fakes of the runtime, outbox, router and clock, and a real store in a temp dir; every
// wait is on an event with a deadline.
#include "tests/actors_fixture.hpp"

namespace corral {
namespace {

using namespace actors_testing;

TEST_F(ActorsTest, CapacityLeavesTheQueueGroupAndComesBack) {
  ASSERT_TRUE(router_.wait_accepting(true));
  std::vector<std::string> ids = {create_ok(), create_ok(), create_ok()};
  EXPECT_TRUE(router_.wait_accepting(false));
  auto r = call(wire::subjects::create(tenant, "default"), make_create());
  EXPECT_EQ(error_code(r), wire::ErrorCode::resource_exhausted);
  call(wire::subjects::sandbox_op(tenant, ids[0], "terminate"), {});
  EXPECT_TRUE(router_.wait_accepting(true));
}

TEST_F(ActorsTest, ListFiltersByTenantNameTagsAndState) {
  call(wire::subjects::create(tenant, "default"), make_create("a", 0, {{"run", "1"}}));
  call(wire::subjects::create(tenant, "default"), make_create("b", 0, {{"run", "2"}}));
  call(wire::subjects::create("other", "default"), make_create("c"));
  auto list = [&](bytes filter) {
    auto r = call(wire::subjects::list(tenant), std::move(filter));
    const auto* l = wire::verify<wire::SandboxList>(r.payload.data(), r.payload.size());
    std::vector<std::string> names;
    if (l && l->sandboxes())
      for (const auto* s : *l->sandboxes()) names.emplace_back(wire::str(s->name()));
    std::sort(names.begin(), names.end());  // the fake clock gives them one creation time
    return names;
  };
  EXPECT_EQ(list({}), (std::vector<std::string>{"a", "b"}));
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::KeyValue>> kvs = {
      wire::CreateKeyValue(fbb, fbb.CreateString("run"), fbb.CreateString("2"))};
  auto tags = fbb.CreateVectorOfSortedTables(&kvs);
  fbb.Finish(wire::CreateListSandboxes(fbb, 0, tags, false), wire::ListSandboxesIdentifier());
  EXPECT_EQ(list(wire::release(fbb)), (std::vector<std::string>{"b"}));
}

TEST_F(ActorsTest, NamesAreUniqueAmongLiveSandboxesOfATenant) {
  create_ok("same");
  auto r = call(wire::subjects::create(tenant, "default"), make_create("same"));
  EXPECT_EQ(error_code(r), wire::ErrorCode::already_exists);
  // Another tenant may use it.
  auto other = call(wire::subjects::create("t2", "default"), make_create("same"));
  EXPECT_NE(wire::verify<wire::SandboxReply>(other.payload.data(), other.payload.size()), nullptr);
}

TEST_F(ActorsTest, BadInputGetsClearErrorsAndNothingHalfCreated) {
  const auto create = wire::subjects::create(tenant, "default");
  EXPECT_EQ(error_code(call(create, {1, 2, 3})), wire::ErrorCode::malformed);
  EXPECT_EQ(error_code(call(create, make_exec({"echo"}))), wire::ErrorCode::malformed);
  EXPECT_EQ(error_code(call(create, make_create("bad name!"))), wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(create, make_create({}, -5))), wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(create, make_create({}, 48LL * 3600 * 1000))),
            wire::ErrorCode::invalid_argument);
  auto all = store_->list_sandboxes();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->records.empty());

  const auto id = create_ok();
  const auto exec = wire::subjects::sandbox_op(tenant, id, "exec");
  EXPECT_EQ(error_code(call(exec, {0xff, 0, 0, 0, 'C', 'R', 'E', 'X'})), wire::ErrorCode::malformed);
  EXPECT_EQ(error_code(call(exec, make_exec({}))), wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(exec, make_exec({""}))), wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(exec, make_exec({"echo", std::string(70 * 1024, 'x')}))),
            wire::ErrorCode::too_large);
  EXPECT_EQ(error_code(call(exec, make_exec({"echo"}, "bad id!"))), wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(wire::subjects::sandbox_op(tenant, id, "nonsense"), {})),
            wire::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code(call(wire::subjects::sandbox_op(tenant, id, "stdin"), {9, 9})),
            wire::ErrorCode::malformed);
  // Still healthy afterwards.
  call(exec, make_exec({"echo", "ok"}, "ex-ok"));
  EXPECT_EQ(wait_exit(id, "ex-ok"), std::make_pair(wire::Outcome::exited, 0));
}

TEST_F(ActorsTest, OrphanCleanupNeverTakesASandboxCreatedAfterRecovery) {
  close_node();
  rt_.add_host_sandbox("sb-orphanYYYYYYYYYYYYYYYYYY");
  rt_.hold_listing();  // the host is listed only after a new sandbox exists
  open_node();
  const auto id = create_ok();
  rt_.release_listing();
  // The orphan's end proves the listing was judged; the new sandbox must have survived it.
  EXPECT_TRUE(rt_.wait_destroyed("sb-orphanYYYYYYYYYYYYYYYYYY"));
  EXPECT_EQ(rt_.destroyed().count(id), 0u);
  call(wire::subjects::sandbox_op(tenant, id, "exec"), make_exec({"echo", "alive"}, "ex-alive"));
  EXPECT_EQ(wait_exit(id, "ex-alive"), std::make_pair(wire::Outcome::exited, 0));
}

TEST_F(ActorsTest, HeartbeatsAdvertiseCapacityAndTags) {
  create_ok();
  caf::anon_send(node_, tick_atom::value);
  auto hb = out_.wait_for(wire::subjects::heartbeat("node-a"), [](const published& p) {
    const auto* h = wire::verify<wire::Heartbeat>(p.payload.data(), p.payload.size());
    return h != nullptr && h->running() == 1;
  });
  ASSERT_TRUE(hb);
  const auto* h = wire::verify<wire::Heartbeat>(hb->payload.data(), hb->payload.size());
  EXPECT_EQ(h->capacity(), 3u);
  EXPECT_EQ(wire::pairs_of(h->tags()), (wire::string_pairs{{"gpu", "H100"}}));
}

}  // namespace
}  // namespace corral
