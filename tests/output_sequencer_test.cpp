// The output sequencer (client/output_sequencer.hpp) on scripted frame sequences: what it hands
// on, in which order, and when it asks for a replay.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/output_sequencer.hpp"

using namespace corral;
using client::output_frame;
using client::output_sequencer;
using verdict = output_sequencer::verdict;

namespace {

wire::bytes chunk(uint64_t seq, uint64_t offset, const std::string& text,
                  wire::Stream s = wire::Stream::stdout) {
  flatbuffers::FlatBufferBuilder fbb(128 + text.size());
  auto id = fbb.CreateString("ex-1");
  auto d = fbb.CreateVector(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  fbb.Finish(wire::CreateOutputChunk(fbb, id, seq, s, offset, d), wire::OutputChunkIdentifier());
  return wire::release(fbb);
}

wire::bytes exit_frame(uint64_t seq, int32_t code) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto id = fbb.CreateString("ex-1");
  auto st = wire::CreateExitStatus(fbb, wire::Outcome::exited, code);
  fbb.Finish(wire::CreateExecExit(fbb, id, seq, st), wire::ExecExitIdentifier());
  return wire::release(fbb);
}

// What was handed on, as text: "0:out@0:hello" per chunk, "3:exit=7" for the exit.
struct recorder {
  std::vector<std::string> got;
  output_sequencer::emit_fn fn() {
    return [this](const output_frame& f) {
      if (f.exit != nullptr) {
        got.push_back(std::to_string(f.seq) + ":exit=" + std::to_string(f.exit->status()->exit_code()));
        return;
      }
      got.push_back(std::to_string(f.seq) + ":" +
                    (f.stream == wire::Stream::stdout ? "out" : "err") + "@" +
                    std::to_string(f.offset) + ":" +
                    std::string(reinterpret_cast<const char*>(f.data), f.size));
    };
  }
};

using texts = std::vector<std::string>;

}  // namespace

TEST(OutputSequencer, InOrderFramesAreHandedOnAtOnce) {
  output_sequencer seq;
  recorder r;
  EXPECT_EQ(seq.offer(chunk(0, 0, "hello "), r.fn()), verdict::emitted);
  EXPECT_EQ(seq.offer(chunk(1, 0, "oops", wire::Stream::stderr), r.fn()), verdict::emitted);
  EXPECT_EQ(seq.offer(chunk(2, 6, "world"), r.fn()), verdict::emitted);
  EXPECT_FALSE(seq.ended());
  EXPECT_EQ(seq.offer(exit_frame(3, 7), r.fn()), verdict::emitted);
  EXPECT_EQ(r.got, (texts{"0:out@0:hello ", "1:err@0:oops", "2:out@6:world", "3:exit=7"}));
  EXPECT_TRUE(seq.ended());
  EXPECT_TRUE(seq.exited());
  EXPECT_FALSE(seq.needs_replay());
  EXPECT_EQ(seq.next(), 4u);
}

TEST(OutputSequencer, DuplicatesAreHandedOnOnce) {
  output_sequencer seq;
  recorder r;
  ASSERT_EQ(seq.offer(chunk(0, 0, "a"), r.fn()), verdict::emitted);
  EXPECT_EQ(seq.offer(chunk(0, 0, "a"), r.fn()), verdict::duplicate);
  ASSERT_EQ(seq.offer(chunk(2, 2, "c"), r.fn()), verdict::held);
  EXPECT_EQ(seq.offer(chunk(2, 2, "c"), r.fn()), verdict::duplicate);  // held already
  ASSERT_EQ(seq.offer(chunk(1, 1, "b"), r.fn()), verdict::emitted);
  EXPECT_EQ(seq.offer(chunk(1, 1, "b"), r.fn()), verdict::duplicate);
  EXPECT_EQ(r.got, (texts{"0:out@0:a", "1:out@1:b", "2:out@2:c"}));
}

TEST(OutputSequencer, AGapAsksForAReplayFromItsStart) {
  output_sequencer seq;
  recorder r;
  ASSERT_EQ(seq.offer(chunk(0, 0, "a"), r.fn()), verdict::emitted);
  EXPECT_FALSE(seq.needs_replay());
  EXPECT_EQ(seq.offer(chunk(3, 3, "d"), r.fn()), verdict::held);
  EXPECT_EQ(seq.offer(chunk(4, 4, "e"), r.fn()), verdict::held);
  EXPECT_TRUE(seq.needs_replay());
  ASSERT_TRUE(seq.missing());
  EXPECT_EQ(seq.missing()->from, 1u);
  EXPECT_EQ(seq.missing()->to, 3u);
  EXPECT_EQ(r.got, (texts{"0:out@0:a"}));
}

TEST(OutputSequencer, AReplayFillsTheGapAndReleasesWhatWasHeld) {
  output_sequencer seq;
  recorder r;
  (void)seq.offer(chunk(0, 0, "a"), r.fn());
  (void)seq.offer(chunk(3, 3, "d"), r.fn());
  ASSERT_TRUE(seq.needs_replay());
  seq.replay_asked();
  EXPECT_TRUE(seq.needs_replay());  // still a gap until its frames are there
  // The replay brings everything stored from seq 1 on, including what is held.
  EXPECT_EQ(seq.offer(chunk(1, 1, "b"), r.fn()), verdict::emitted);
  EXPECT_TRUE(seq.needs_replay());
  EXPECT_EQ(seq.offer(chunk(2, 2, "c"), r.fn()), verdict::emitted);  // and 3 after it
  EXPECT_EQ(seq.offer(chunk(3, 3, "d"), r.fn()), verdict::duplicate);
  EXPECT_FALSE(seq.needs_replay());
  EXPECT_FALSE(seq.holding());
  EXPECT_EQ(seq.held_bytes(), 0u);
  EXPECT_EQ(r.got, (texts{"0:out@0:a", "1:out@1:b", "2:out@2:c", "3:out@3:d"}));
}

TEST(OutputSequencer, AnExitBeforeTheOutputIsCompleteWaitsForIt) {
  output_sequencer seq;
  recorder r;
  (void)seq.offer(chunk(0, 0, "a"), r.fn());
  EXPECT_EQ(seq.offer(exit_frame(3, 0), r.fn()), verdict::held);
  EXPECT_FALSE(seq.ended());
  EXPECT_TRUE(seq.needs_replay());
  (void)seq.offer(chunk(2, 2, "c"), r.fn());
  EXPECT_FALSE(seq.ended());
  EXPECT_EQ(seq.offer(chunk(1, 1, "b"), r.fn()), verdict::emitted);
  EXPECT_TRUE(seq.exited());
  EXPECT_EQ(r.got, (texts{"0:out@0:a", "1:out@1:b", "2:out@2:c", "3:exit=0"}));
}

TEST(OutputSequencer, FramesAfterTheExitAreIgnored) {
  output_sequencer seq;
  recorder r;
  (void)seq.offer(chunk(0, 0, "a"), r.fn());
  (void)seq.offer(chunk(3, 9, "late"), r.fn());  // numbered past the exit, held
  ASSERT_EQ(seq.offer(exit_frame(1, 2), r.fn()), verdict::emitted);
  EXPECT_EQ(seq.offer(chunk(2, 1, "z"), r.fn()), verdict::ignored);
  EXPECT_EQ(seq.offer(exit_frame(2, 5), r.fn()), verdict::ignored);
  seq.flush(r.fn());
  EXPECT_EQ(r.got, (texts{"0:out@0:a", "1:exit=2"}));
  EXPECT_FALSE(seq.holding());
  EXPECT_FALSE(seq.needs_replay());
}

TEST(OutputSequencer, WhatIsNotAnOutputFrameIsIgnored) {
  output_sequencer seq;
  recorder r;
  EXPECT_EQ(seq.offer(wire::make_ack("more"), r.fn()), verdict::ignored);
  EXPECT_EQ(seq.offer(wire::bytes{1, 2, 3}, r.fn()), verdict::ignored);
  EXPECT_EQ(seq.offer(wire::bytes{}, r.fn()), verdict::ignored);
  EXPECT_TRUE(r.got.empty());
  EXPECT_EQ(seq.next(), 0u);
}

TEST(OutputSequencer, WithoutAnEmitEverythingIsHeldUntilFlush) {
  output_sequencer seq;
  recorder r;
  EXPECT_EQ(seq.offer(chunk(0, 0, "a"), {}), verdict::held);
  EXPECT_EQ(seq.offer(chunk(1, 1, "b"), {}), verdict::held);
  EXPECT_FALSE(seq.needs_replay());  // held, but nothing is missing
  EXPECT_TRUE(r.got.empty());
  seq.flush(r.fn());
  EXPECT_EQ(r.got, (texts{"0:out@0:a", "1:out@1:b"}));
  EXPECT_FALSE(seq.holding());
}

TEST(OutputSequencer, FramesPastTheHeldCapAreDroppedAndReplayed) {
  output_sequencer::options o;
  const auto one = chunk(5, 5, "x").size();
  o.max_held_bytes = one + one / 2;  // room for one held frame
  output_sequencer seq(o);
  recorder r;
  EXPECT_EQ(seq.offer(chunk(2, 2, "x"), r.fn()), verdict::held);
  EXPECT_EQ(seq.offer(chunk(3, 3, "y"), r.fn()), verdict::dropped);
  ASSERT_TRUE(seq.missing());
  EXPECT_EQ(seq.missing()->from, 0u);
  EXPECT_EQ(seq.missing()->to, std::numeric_limits<uint64_t>::max());  // lost: anywhere on
  seq.replay_asked();
  EXPECT_TRUE(seq.needs_replay());  // the held frame still waits for 0 and 1
  for (uint64_t i = 0; i < 4; ++i) (void)seq.offer(chunk(i, i, std::string(1, char('a' + i))), r.fn());
  EXPECT_FALSE(seq.needs_replay());
  EXPECT_EQ(r.got, (texts{"0:out@0:a", "1:out@1:b", "2:out@2:x", "3:out@3:d"}));
}

TEST(OutputSequencer, LostLiveFramesAskForAReplayUntilItIsAsked) {
  output_sequencer seq;
  recorder r;
  (void)seq.offer(chunk(0, 0, "a"), r.fn());
  seq.lost();
  EXPECT_TRUE(seq.needs_replay());
  seq.replay_asked();
  EXPECT_FALSE(seq.needs_replay());
}

TEST(OutputSequencer, BytesBeforeTheOffsetAskedForAreNotHandedOn) {
  output_sequencer::options o;
  o.from_offset = 4;
  output_sequencer seq(o);
  recorder r;
  EXPECT_EQ(seq.offer(chunk(0, 0, "abc"), r.fn()), verdict::emitted);   // wholly before
  EXPECT_EQ(seq.offer(chunk(1, 3, "defg"), r.fn()), verdict::emitted);  // cut to "efg"
  EXPECT_EQ(seq.offer(chunk(2, 0, "ABCDEF", wire::Stream::stderr), r.fn()), verdict::emitted);
  EXPECT_EQ(seq.offer(chunk(3, 7, "h"), r.fn()), verdict::emitted);
  EXPECT_EQ(seq.offer(chunk(4, 8, ""), r.fn()), verdict::emitted);  // empty: nothing to hand on
  EXPECT_EQ(r.got, (texts{"1:out@4:efg", "2:err@4:EF", "3:out@7:h"}));
  EXPECT_EQ(seq.next(), 5u);
}

TEST(OutputSequencer, AnOffsetPastTheEndOfTheStreamHandsOnNothingButTheExit) {
  output_sequencer::options o;
  o.from_offset = std::numeric_limits<uint64_t>::max();
  output_sequencer seq(o);
  recorder r;
  (void)seq.offer(chunk(0, 5, "abc"), r.fn());
  (void)seq.offer(chunk(1, std::numeric_limits<uint64_t>::max() - 3, "abc"), r.fn());
  (void)seq.offer(exit_frame(2, 0), r.fn());
  EXPECT_EQ(r.got, (texts{"2:exit=0"}));
}

TEST(OutputSequencer, AnExpiredReplayEndsTheOutputWithoutItsExit) {
  output_sequencer seq;
  recorder r;
  (void)seq.offer(chunk(0, 0, "a"), r.fn());
  (void)seq.offer(chunk(5, 5, "f"), r.fn());
  ASSERT_TRUE(seq.needs_replay());
  seq.expire(failure(wire::ErrorCode::expired, "output of ex-1 expired"));
  EXPECT_TRUE(seq.ended());
  EXPECT_FALSE(seq.exited());
  ASSERT_TRUE(seq.expired());
  EXPECT_EQ(seq.expired()->code, wire::ErrorCode::expired);
  EXPECT_FALSE(seq.needs_replay());
  EXPECT_FALSE(seq.holding());
  EXPECT_EQ(seq.offer(chunk(1, 1, "b"), r.fn()), verdict::ignored);
  EXPECT_EQ(r.got, (texts{"0:out@0:a"}));
}
