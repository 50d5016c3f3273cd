#include "tests/fakes/node_fixture.hpp"

#include <stdlib.h>

#include <filesystem>

#include <type_traits>
#include <variant>

#include "executor/request_decode.hpp"
#include "schemas/subjects.hpp"

namespace corral::testing {

void node_fixture::SetUp() {
  char tmpl[] = "/tmp/corral-actors-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
  open_node();
}

void node_fixture::TearDown() {
  if (sys_) close_node();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void node_fixture::open_node() {
  auto opened = storage::store::open(dir_ + "/db", storage::store_options{});
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto faulty = std::make_unique<failing_store>(std::move(*opened));
  faults_ = faulty.get();
  store_ = std::move(faulty);
  node_context ctx;
  ctx.config.node_id = "node-a";
  ctx.config.warm_pool = 0;  // suites that test the warm pool ask for one in configure()
  configure(ctx.config);
  ASSERT_EQ(ctx.config.validate(), "");
  ctx.store = store_.get();
  ctx.out = &out_;
  ctx.clk = &clk_;
  ctx.rt = &rt_;
  ctx.router = &router_;
  ctx.session = ++session_;
  sys_ = std::make_unique<caf::actor_system>(cfg_);
  node_ = spawn_node(*sys_, std::make_shared<const node_context>(ctx));
  caf::scoped_actor self{*sys_};
  self->request(node_, std::chrono::seconds(10), recover_atom::value)
      .receive([](uint32_t) {}, [](caf::error&) { FAIL() << "recover failed"; });
}

void node_fixture::close_node() {
  caf::anon_send_exit(node_, caf::exit_reason::user_shutdown);
  node_ = nullptr;
  sys_->await_all_actors_done();
  sys_.reset();
  (void)store_->close();  // the test reopens; a close error shows up on reopen
  store_.reset();
  faults_ = nullptr;
}

std::string node_fixture::send(const std::string& subject, bytes payload) {
  const auto reply = "reply." + std::to_string(++replies_);
  // Decoded as the executor's bridge decodes it (executor/request_decode.hpp), then delivered
  // to the actor that serves the subject: corral.v1.{t}.pool.{p}.create,
  // corral.v1.{t}.node.{n}.create and corral.v1.{t}.list go to the node (any tenant).
  const auto t = std::string(wire::subjects::tenant_of(subject));
  const bool is_create = subject.rfind("corral.v1." + t + ".pool.", 0) == 0 ||
                         subject.rfind("corral.v1." + t + ".node.", 0) == 0;
  auto deliver = [&](caf::actor to, auto decoded) {
    if (!decoded) return out_.publish(reply, decoded.refused.reply());
    using verb_t = std::decay_t<decltype(*decoded.verb)>;
    if constexpr (std::is_same_v<verb_t, bridge::sandbox_verb>)
      std::visit([&](auto& verb) { caf::anon_send(to, std::move(verb)); }, *decoded.verb);
    else
      caf::anon_send(to, std::move(*decoded.verb));
  };
  if (is_create) {
    deliver(caf::actor_cast<caf::actor>(node_),
            bridge::decode_create(subject, std::move(payload), reply_handle(reply)));
  } else if (subject == wire::subjects::list(t)) {
    deliver(caf::actor_cast<caf::actor>(node_),
            bridge::decode_list(subject, std::move(payload), reply_handle(reply)));
  } else {
    // corral.v1.{t}.sbx.{sb}.{op...}
    auto rest = subject.substr(std::string("corral.v1." + t + ".sbx.").size());
    auto a = router_.route(rest.substr(0, rest.find('.')));
    if (!a) {
      out_.publish(reply, wire::make_error_reply(wire::ErrorCode::not_found, "no route"));
      return reply;
    }
    deliver(a, bridge::decode_sandbox_request(subject, std::move(payload), reply_handle(reply)));
  }
  return reply;
}

std::optional<published> node_fixture::reply_on(const std::string& reply,
                                                 std::chrono::milliseconds within) {
  return out_.wait_for(reply, [](const published&) { return true; }, within);
}

published node_fixture::call(const std::string& subject, bytes payload) {
  auto got = reply_on(send(subject, std::move(payload)));
  EXPECT_TRUE(got.has_value()) << "no reply on " << subject;
  return got.value_or(published{});
}

wire::ErrorCode node_fixture::error_code(const published& p) {
  const auto* e = wire::verify<wire::ErrorReply>(p.payload.data(), p.payload.size());
  return e ? e->code() : wire::ErrorCode::ok;
}

std::string node_fixture::error_text(const published& p) {
  if (const auto* e = wire::verify<wire::ErrorReply>(p.payload.data(), p.payload.size()))
    return std::string(wire::to_string(e->code())) + ": " + std::string(wire::str(e->message()));
  return "(not an error)";
}

}  // namespace corral::testing
