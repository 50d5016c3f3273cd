// The wire: every root type verifies, wrong identifiers and damaged bytes are refused, frames
// resynchronise, ids and subjects are what the protocol says.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "schemas/codec.hpp"
#include "schemas/frame.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral::wire {
namespace {

bytes sample_exec_request() {
  flatbuffers::FlatBufferBuilder fbb;
  auto id = fbb.CreateString("ex-1");
  std::vector<flatbuffers::Offset<flatbuffers::String>> a = {fbb.CreateString("echo"),
                                                             fbb.CreateString("hi")};
  auto argv = fbb.CreateVector(a);
  fbb.Finish(CreateExecRequest(fbb, id, argv, 0, 0, 1000, true), ExecRequestIdentifier());
  return release(fbb);
}

TEST(Schemas, EveryRootTypeRoundTripsAndChecksItsIdentifier) {
  auto req = sample_exec_request();
  const auto* r = verify<ExecRequest>(req.data(), req.size());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(str(r->exec_id()), "ex-1");
  EXPECT_EQ(r->argv()->size(), 2u);
  // The same bytes are no other message.
  EXPECT_EQ(verify<CreateSandbox>(req.data(), req.size()), nullptr);
  EXPECT_EQ(verify<StdinWrite>(req.data(), req.size()), nullptr);
  EXPECT_EQ(verify<InitCommand>(req.data(), req.size()), nullptr);

  auto err = make_error_reply(ErrorCode::not_found, "nope", "sandbox");
  const auto* e = verify<ErrorReply>(err.data(), err.size());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code(), ErrorCode::not_found);
  EXPECT_EQ(str(e->field()), "sandbox");
  auto ack = make_ack("done");
  EXPECT_NE(verify<Ack>(ack.data(), ack.size()), nullptr);
  EXPECT_TRUE(has_identifier<Ack>(ack.data(), ack.size()));
  EXPECT_FALSE(has_identifier<ErrorReply>(ack.data(), ack.size()));
  // The end of a page is typed: its text is for people and never read.
  auto end = make_page_end(true, 7, "whatever");
  auto read = page_end_of(end.data(), end.size());
  ASSERT_TRUE(read.has_value());
  EXPECT_TRUE(read->more);
  EXPECT_EQ(read->next, 7u);
  auto plain = page_end_of(ack.data(), ack.size());
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->more);
  EXPECT_EQ(plain->next, 0u);
  EXPECT_FALSE(page_end_of(end.data(), 4).has_value());
  const auto not_ack = make_error_reply(ErrorCode::internal, "x");
  EXPECT_FALSE(page_end_of(not_ack.data(), not_ack.size()).has_value());
}

TEST(Schemas, TruncatedGarbageAndOversizedBytesAreRefused) {
  auto req = sample_exec_request();
  // A truncated buffer is refused unless only trailing padding was cut, in which case every
  // field still reads back whole (the verifier never lets a read leave [data, data + n)).
  std::size_t accepted = 0;
  for (std::size_t n = 0; n < req.size(); ++n) {
    std::vector<uint8_t> cut(req.begin(), req.begin() + static_cast<std::ptrdiff_t>(n));
    const auto* r = verify<ExecRequest>(cut.data(), cut.size());
    if (r == nullptr) continue;
    ++accepted;
    EXPECT_EQ(str(r->exec_id()), "ex-1") << "truncated to " << n;
    ASSERT_NE(r->argv(), nullptr);
    EXPECT_EQ(str(r->argv()->Get(1)), "hi");
  }
  EXPECT_LT(accepted, 8u);  // at most the alignment padding at the end
  EXPECT_EQ(verify<ExecRequest>(nullptr, 100), nullptr);
  std::vector<uint8_t> big(max_message_bytes + 1, 0);
  std::copy(req.begin(), req.end(), big.begin());
  EXPECT_EQ(verify<ExecRequest>(big.data(), big.size()), nullptr);
  // Random corruption never crashes the verifier (it may or may not accept the bytes).
  std::mt19937 rng(42);
  for (int i = 0; i < 20000; ++i) {
    auto copy = req;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) copy[rng() % copy.size()] = static_cast<uint8_t>(rng());
    const auto* r = verify<ExecRequest>(copy.data(), copy.size());
    if (r != nullptr && r->argv() != nullptr)
      for (const auto* a : *r->argv()) (void)str(a);
  }
}

TEST(Frames, ReaderSplitsJoinsAndResyncsAfterGarbage) {
  auto p1 = sample_exec_request();
  auto p2 = make_ack("x");
  std::vector<uint8_t> stream = {'j', 'u', 'n', 'k', 'C', 'R'};  // garbage, even a partial magic
  append_frame(stream, p1.data(), p1.size());
  append_frame(stream, p2.data(), p2.size());
  frame_reader r;
  std::vector<std::vector<uint8_t>> got;
  for (uint8_t b : stream) {  // one byte at a time
    r.feed(&b, 1);
    while (auto f = r.next()) got.push_back(*f);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], p1);
  EXPECT_EQ(got[1], p2);
  EXPECT_EQ(r.skipped_bytes(), 6u);
  // A length over the cap is corruption, skipped rather than buffered for.
  std::vector<uint8_t> bad = {'C', 'R', 'F', 'M', 0xff, 0xff, 0xff, 0x7f};
  append_frame(bad, p2.data(), p2.size());
  frame_reader r2;
  r2.feed(bad.data(), bad.size());
  auto f = r2.next();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, p2);
}

TEST(Ids, AreFixedLengthUniqueAndValidated) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    auto id = new_id("sb-");
    ASSERT_EQ(id.size(), 3 + id_random_chars);
    ASSERT_TRUE(valid_id(id, "sb-"));
    ASSERT_TRUE(seen.insert(id).second);
  }
  EXPECT_FALSE(valid_id("sb-short", "sb-"));
  EXPECT_FALSE(valid_id(new_id("ex-"), "sb-"));
  EXPECT_FALSE(valid_id("sb-AAAAAAAAAAAAAAAAAAAA.*", "sb-"));
  EXPECT_TRUE(valid_token("tenant_1-a"));
  EXPECT_FALSE(valid_token(""));
  EXPECT_FALSE(valid_token("a.b"));
  EXPECT_FALSE(valid_token("*"));
  EXPECT_FALSE(valid_token(">"));
  EXPECT_FALSE(valid_token(std::string(65, 'a')));
}

TEST(Subjects, FollowTheProtocol) {
  EXPECT_EQ(subjects::create("t", "gpu"), "corral.v1.t.pool.gpu.create");
  EXPECT_EQ(subjects::sandbox_op("t", "sb-1", "exec"), "corral.v1.t.sbx.sb-1.exec");
  EXPECT_EQ(subjects::output("t", "sb-1", "ex-2"), "corral.v1.t.sbx.sb-1.out.ex-2");
  EXPECT_EQ(subjects::list("t"), "corral.v1.t.list");
  EXPECT_EQ(subjects::heartbeat("n1"), "corral.v1.node.n1.heartbeat");
  EXPECT_EQ(subjects::tenant_of("corral.v1.acme.sbx.sb-1.info"), "acme");
  EXPECT_EQ(subjects::tenant_of("other.v1.acme.list"), "");
  EXPECT_EQ(subjects::last_token("corral.v1.acme.sbx.sb-1.info"), "info");
}

}  // namespace
}  // namespace corral::wire
