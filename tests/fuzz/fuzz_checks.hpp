#pragma once
// What the fuzz targets assert besides "no sanitizer report": the answers our code builds from
// hostile input are themselves valid (each a verified message of the expected type, within the
// size a NATS message or an init frame may have), records survive the store's encoding, and
// commands for corral-init are carried out by its real loop (fake_init_os.hpp). A broken
// assertion aborts: libFuzzer saves the input as a crash.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "schemas/codec.hpp"
#include "schemas/frame.hpp"
#include "storage/records.hpp"
#include "tests/fuzz/fake_init_os.hpp"
#include "tests/fuzz/init_commands.hpp"
#include "tests/fuzz/init_fuzz_limits.hpp"

namespace corral::fuzz {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what);
  std::abort();
}

// An answer on NATS: at most max_message_bytes, and a verified T or ErrorReply.
template <class T>
void expect_answer(const wire::bytes& b) {
  if (b.size() > wire::max_message_bytes) fail("an answer over max_message_bytes");
  if (wire::verify<T>(b.data(), b.size()) == nullptr &&
      wire::verify<wire::ErrorReply>(b.data(), b.size()) == nullptr)
    fail("an answer that is neither the expected message nor an ErrorReply");
}

// A record written to the store and read back is the same record.
template <class Record, class Decode>
void expect_round_trip(const Record& rec, Decode decode) {
  auto back = decode(storage::encode(rec));
  if (!back.ok() || !(*back == rec)) fail("a record does not survive the store's encoding");
}

// Sends InitCommand payloads to corral-init's real loop after the fixed opening (processes 1..4,
// see init_commands.hpp) and checks what it writes back. Each payload must fit a frame: the
// reader would skip a larger one as corruption and its sender would wait forever.
// Returns the payloads of the events init wrote after those of the opening.
inline std::vector<wire::bytes> run_in_init(const std::vector<wire::bytes>& commands) {
  init_script script;
  for (auto& c : opening_commands()) script.command_chunks.push_back(wire::make_frame(c));
  for (const auto& c : commands) {
    if (c.size() > wire::max_frame_payload) fail("an InitCommand over the frame cap");
    if (wire::verify<wire::InitCommand>(c.data(), c.size(), wire::max_frame_payload) == nullptr)
      fail("an InitCommand that does not verify");
    script.command_chunks.push_back(wire::make_frame(c));
  }
  reset(script);
  const auto events = run_init(limits_for(0x01));
  check_events(events);
  std::vector<wire::bytes> payloads;
  wire::frame_reader reader;
  reader.feed(events.data(), events.size());
  while (auto p = reader.next()) payloads.push_back(std::move(*p));
  return payloads;
}

}  // namespace corral::fuzz
