// The executor's bridge decoding (executor/request_decode.hpp): every verb a subject names,
// decoded with its payload verified and its reply handle; garbage, unknown verbs and invalid
// tenants refused with the ErrorReply the client gets.
#include "executor/request_decode.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "schemas/subjects.hpp"

namespace corral {
namespace {

using bytes = std::vector<uint8_t>;

const std::string sandbox = "sb-0123456789abcdefghijkl";

std::string op_subject(const std::string& op) { return wire::subjects::sandbox_op("t1", sandbox, op); }
std::string fs_subject(const std::string& op) { return op_subject("fs." + op); }

template <class Verb>
const Verb& as(const bridge::decoded<bridge::sandbox_verb>& d) {
  static const Verb none{};
  EXPECT_TRUE(d) << d.refused.message;
  if (!d) return none;
  const auto* v = std::get_if<Verb>(&*d.verb);
  EXPECT_NE(v, nullptr) << "decoded as another verb (index " << d.verb->index() << ")";
  return v == nullptr ? none : *v;
}

bytes exec_payload(const std::string& exec_id) {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString(exec_id);
  auto argv = fbb.CreateVectorOfStrings({"echo", "hi"});
  fbb.Finish(wire::CreateExecRequest(fbb, id, argv), wire::ExecRequestIdentifier());
  return wire::release(fbb);
}

bytes stdin_payload(const std::string& exec_id, const std::string& data, bool eof) {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString(exec_id);
  auto d = fbb.CreateVector(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  fbb.Finish(wire::CreateStdinWrite(fbb, id, d, eof), wire::StdinWriteIdentifier());
  return wire::release(fbb);
}

bytes signal_payload(const std::string& exec_id, int32_t sig) {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString(exec_id);
  fbb.Finish(wire::CreateSignalRequest(fbb, id, sig), wire::SignalRequestIdentifier());
  return wire::release(fbb);
}

bytes resize_payload(const std::string& exec_id, uint16_t rows, uint16_t cols) {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString(exec_id);
  fbb.Finish(wire::CreateResizeRequest(fbb, id, rows, cols), wire::ResizeRequestIdentifier());
  return wire::release(fbb);
}

bytes replay_payload(const std::string& exec_id, uint64_t from) {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString(exec_id);
  fbb.Finish(wire::CreateReplayRequest(fbb, id, from), wire::ReplayRequestIdentifier());
  return wire::release(fbb);
}

bytes query_payload(int64_t wait_ms, bool until_ready) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(wire::CreateSandboxQuery(fbb, wait_ms, until_ready), wire::SandboxQueryIdentifier());
  return wire::release(fbb);
}

bytes tags_payload() {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::KeyValue>> kvs{
      wire::CreateKeyValue(fbb, fbb.CreateString("team"), fbb.CreateString("ml"))};
  auto t = fbb.CreateVectorOfSortedTables(&kvs);
  fbb.Finish(wire::CreateSetTags(fbb, t), wire::SetTagsIdentifier());
  return wire::release(fbb);
}

bytes fs_payload(const std::string& path) {
  flatbuffers::FlatBufferBuilder fbb;
  auto p = fbb.CreateString(path);
  wire::FsRequestBuilder b(fbb);
  b.add_path(p);
  fbb.Finish(b.Finish(), wire::FsRequestIdentifier());
  return wire::release(fbb);
}

bytes create_payload(const std::string& name) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateString(name);
  wire::CreateSandboxBuilder b(fbb);
  b.add_name(n);
  fbb.Finish(b.Finish(), wire::CreateSandboxIdentifier());
  return wire::release(fbb);
}

bytes list_payload(const std::string& name) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateString(name);
  wire::ListSandboxesBuilder b(fbb);
  b.add_name(n);
  fbb.Finish(b.Finish(), wire::ListSandboxesIdentifier());
  return wire::release(fbb);
}

bytes usage_payload(const std::string& id) {
  flatbuffers::FlatBufferBuilder fbb;
  auto s = fbb.CreateString(id);
  fbb.Finish(wire::CreateUsageRequest(fbb, s), wire::UsageRequestIdentifier());
  return wire::release(fbb);
}

const bytes garbage{0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03, 0xff, 0xfe};

// The refusal's ErrorReply, as the client reads it.
void expect_refused(const bridge::refusal& r, wire::ErrorCode code, const std::string& message,
                    const std::string& field = {}) {
  EXPECT_EQ(r.code, code);
  EXPECT_EQ(r.message, message);
  EXPECT_EQ(r.field, field);
  const auto reply = r.reply();
  const auto* e = wire::verify<wire::ErrorReply>(reply.data(), reply.size());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code(), code);
  EXPECT_EQ(wire::str(e->message()), message);
  EXPECT_EQ(wire::str(e->field()), field);
}

auto decode(const std::string& subject, bytes data, const std::string& reply = "_INBOX_EX.r1") {
  return bridge::decode_sandbox_request(subject, std::move(data), reply_handle(reply));
}

TEST(BridgeDecode, InfoAndTerminateCarryTheirReplyHandle) {
  EXPECT_EQ(as<verb::info>(decode(op_subject("info"), {})).reply.address(), "_INBOX_EX.r1");
  EXPECT_EQ(as<verb::terminate>(decode(op_subject("terminate"), {}, "_INBOX_EX.r2"))
                .reply.address(),
            "_INBOX_EX.r2");
  // No reply subject: an empty handle (nobody to answer).
  EXPECT_TRUE(as<verb::info>(decode(op_subject("info"), {}, "")).reply.empty());
}

TEST(BridgeDecode, ExecKeepsTheVerifiedRequest) {
  const auto d_v = decode(op_subject("exec"), exec_payload("ex-1"));
  const auto& v = as<verb::exec>(d_v);
  EXPECT_EQ(wire::str(v.msg->exec_id()), "ex-1");
  ASSERT_NE(v.msg->argv(), nullptr);
  EXPECT_EQ(v.msg->argv()->size(), 2u);
}

TEST(BridgeDecode, StdinSignalResizeNameTheirExec) {
  const auto d = decode(op_subject("stdin"), stdin_payload("ex-2", "abc", true));
  const auto& in = as<verb::stdin_write>(d);
  EXPECT_EQ(in.exec_id, "ex-2");
  ASSERT_NE(in.msg->data(), nullptr);
  EXPECT_EQ(in.msg->data()->size(), 3u);
  EXPECT_TRUE(in.msg->eof());
  const auto d_sig = decode(op_subject("signal"), signal_payload("ex-3", 15));
  const auto& sig = as<verb::signal>(d_sig);
  EXPECT_EQ(sig.exec_id, "ex-3");
  EXPECT_EQ(sig.number, 15);
  const auto d_rs = decode(op_subject("resize"), resize_payload("ex-4", 40, 120));
  const auto& rs = as<verb::resize>(d_rs);
  EXPECT_EQ(rs.exec_id, "ex-4");
  EXPECT_EQ(rs.rows, 40);
  EXPECT_EQ(rs.cols, 120);
}

TEST(BridgeDecode, TheSignalRangeIsCheckedOnce) {
  for (int sig : {0, -1, 65, 1000}) {
    auto d = decode(op_subject("signal"), signal_payload("ex-3", sig));
    ASSERT_FALSE(d) << sig;
    expect_refused(d.refused, wire::ErrorCode::invalid_argument, "signal out of range", "signal");
  }
  EXPECT_EQ(as<verb::signal>(decode(op_subject("signal"), signal_payload("ex", 64))).number, 64);
  EXPECT_EQ(as<verb::signal>(decode(op_subject("signal"), signal_payload("ex", 1))).number, 1);
}

TEST(BridgeDecode, WaitWithAndWithoutAQuery) {
  const auto d_plain = decode(op_subject("wait"), {});
  const auto& plain = as<verb::wait>(d_plain);
  EXPECT_EQ(plain.timeout_ms, 0);
  EXPECT_FALSE(plain.until_ready);
  const auto d_q = decode(op_subject("wait"), query_payload(5000, true));
  const auto& q = as<verb::wait>(d_q);
  EXPECT_EQ(q.timeout_ms, 5000);
  EXPECT_TRUE(q.until_ready);
}

TEST(BridgeDecode, ReplayAndTags) {
  const auto d_r = decode(op_subject("replay"), replay_payload("ex-5", 7));
  const auto& r = as<verb::replay>(d_r);
  EXPECT_EQ(r.exec_id, "ex-5");
  EXPECT_EQ(r.from_seq, 7u);
  EXPECT_FALSE(as<verb::tags>(decode(op_subject("tags"), {})).set.has_value());
  const auto d = decode(op_subject("tags"), tags_payload());
  const auto& t = as<verb::tags>(d);
  ASSERT_TRUE(t.set.has_value());
  ASSERT_NE((*t.set)->tags(), nullptr);
  EXPECT_EQ((*t.set)->tags()->size(), 1u);
}

TEST(BridgeDecode, EveryFileOperation) {
  const std::pair<const char*, wire::FsOp> ops[] = {
      {"read", wire::FsOp::read},   {"write", wire::FsOp::write}, {"list", wire::FsOp::list},
      {"stat", wire::FsOp::stat},   {"mkdir", wire::FsOp::mkdir}, {"remove", wire::FsOp::remove}};
  for (const auto& [name, op] : ops) {
    const auto d = decode(fs_subject(name), fs_payload("/srv/x"));
    const auto& f = as<verb::fs>(d);
    EXPECT_EQ(f.op, op) << name;
    EXPECT_EQ(wire::str(f.msg->path()), "/srv/x");
  }
}

TEST(BridgeDecode, GarbageIsMalformedForEveryVerbWithAPayload) {
  const std::pair<std::string, std::string> cases[] = {
      {op_subject("exec"), "not an ExecRequest"},     {op_subject("stdin"), "not a StdinWrite"},
      {op_subject("signal"), "not a SignalRequest"},  {op_subject("resize"), "not a ResizeRequest"},
      {op_subject("wait"), "not a SandboxQuery"},     {op_subject("replay"), "not a ReplayRequest"},
      {op_subject("tags"), "not a SetTags"},          {fs_subject("read"), "not an FsRequest"},
      {fs_subject("write"), "not an FsRequest"}};
  for (const auto& [subject, message] : cases) {
    auto d = decode(subject, garbage);
    ASSERT_FALSE(d) << subject;
    expect_refused(d.refused, wire::ErrorCode::malformed, message);
    EXPECT_EQ(d.refused.to.address(), "_INBOX_EX.r1") << subject << ": answered nowhere";
  }
  // Another verb's table is garbage too.
  auto d = decode(op_subject("stdin"), signal_payload("ex", 9));
  ASSERT_FALSE(d);
  expect_refused(d.refused, wire::ErrorCode::malformed, "not a StdinWrite");
  auto c = bridge::decode_create(wire::subjects::create("t1", "default"), garbage, reply_handle("_INBOX_EX.c"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.refused.to.address(), "_INBOX_EX.c");
  expect_refused(c.refused, wire::ErrorCode::malformed, "not a CreateSandbox");
  auto l = bridge::decode_list(wire::subjects::list("t1"), garbage, reply_handle("_INBOX_EX.l"));
  ASSERT_FALSE(l);
  EXPECT_EQ(l.refused.to.address(), "_INBOX_EX.l");
  expect_refused(l.refused, wire::ErrorCode::malformed, "not a ListSandboxes");
  auto u = bridge::decode_usage(wire::subjects::usage("t1"), garbage, reply_handle("_INBOX_EX.u"));
  ASSERT_FALSE(u);
  EXPECT_EQ(u.refused.to.address(), "_INBOX_EX.u");
  expect_refused(u.refused, wire::ErrorCode::malformed, "not a UsageRequest");
}

TEST(BridgeDecode, UnknownVerbsAreRefused) {
  auto d = decode(op_subject("explode"), {});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.refused.to.address(), "_INBOX_EX.r1");  // answered where the request asked
  expect_refused(d.refused, wire::ErrorCode::invalid_argument, "unknown sandbox operation: explode");
  auto f = decode(fs_subject("chmod"), fs_payload("/x"));
  ASSERT_FALSE(f);
  expect_refused(f.refused, wire::ErrorCode::invalid_argument,
                 "unknown file operation fs.chmod (read, write, list, stat, mkdir, remove)", "op");
}

TEST(BridgeDecode, CreatesOfThePoolAndOfOneNode) {
  for (const auto& subject :
       {wire::subjects::create("t1", "default"), wire::subjects::node_create("t1", "node-a")}) {
    auto d = bridge::decode_create(subject, create_payload("web"), reply_handle("_INBOX_EX.c"));
    ASSERT_TRUE(d) << d.refused.message;
    EXPECT_EQ(d.verb->tenant, "t1");
    EXPECT_EQ(wire::str(d.verb->msg->name()), "web");
    EXPECT_EQ(d.verb->reply.address(), "_INBOX_EX.c");
  }
  auto bad = bridge::decode_create("corral.v1.a@b.pool.default.create", create_payload("x"),
                                   reply_handle());
  ASSERT_FALSE(bad);
  expect_refused(bad.refused, wire::ErrorCode::invalid_argument, "invalid tenant");
}

TEST(BridgeDecode, ListAndUsage) {
  auto all = bridge::decode_list(wire::subjects::list("t2"), {}, reply_handle("_INBOX_EX.a"));
  ASSERT_TRUE(all);
  EXPECT_EQ(all.verb->reply.address(), "_INBOX_EX.a");
  EXPECT_EQ(all.verb->tenant, "t2");
  EXPECT_FALSE(all.verb->filter.has_value());
  auto named = bridge::decode_list(wire::subjects::list("t2"), list_payload("web"), reply_handle());
  ASSERT_TRUE(named);
  ASSERT_TRUE(named.verb->filter.has_value());
  EXPECT_EQ(wire::str((*named.verb->filter)->name()), "web");

  auto every = bridge::decode_usage(wire::subjects::usage("t3"), {}, reply_handle());
  ASSERT_TRUE(every);
  EXPECT_EQ(every.verb->tenant, "t3");
  EXPECT_EQ(every.verb->sandbox_id, "");
  auto one = bridge::decode_usage(wire::subjects::usage("t3"), usage_payload(sandbox), reply_handle());
  ASSERT_TRUE(one);
  EXPECT_EQ(one.verb->sandbox_id, sandbox);
  auto bad = bridge::decode_usage("corral.v1.a b.usage", {}, reply_handle());
  ASSERT_FALSE(bad);
  expect_refused(bad.refused, wire::ErrorCode::invalid_argument, "invalid tenant");
}

}  // namespace
}  // namespace corral
