// Fuzz target: Ack, as the clients consume it: the end of a replay (client/client.cpp's replay loop:
// an ErrorReply first, then an Ack whose `more` asks for the next batch, else an
// output frame for the sequencer), and the answer to stdin, signal and resize requests.
#include "client/output_sequencer.hpp"
#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  client::output_sequencer seq;
  if (auto e = client::error_reply_of(data, size)) {
    (void)wire::to_string(e->code);
    return 0;
  }
  if (auto end = wire::page_end_of(data, size)) {
    (void)end->more;
    (void)client::results_page_of(data, size);
    return 0;
  }
  (void)seq.offer(wire::bytes(data, data + size), [](const client::output_frame&) {});
  return 0;
}
