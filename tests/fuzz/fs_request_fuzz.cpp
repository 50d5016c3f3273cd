// Fuzz target: FsRequest, as the sandbox actor's file operations consume it (actors/files.cpp
// file_ops::on_request, the real class): the op (the subject's last token, from the input's
// first byte; one in seven is unknown) and the payload are checked against the node's caps and
// turned into an FsCall for corral-init; init's real loop carries it out (its own checks, over
// the scripted file system of fake_init_os.cpp), and its FsResult goes back through
// file_ops::on_event into the FsReply or ErrorReply the client gets (read back as it reads it).
#include "client/replies.hpp"
#include "tests/fuzz/file_ops_harness.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const ops[] = {"read", "write", "list", "stat", "mkdir", "remove", "chmod"};
  if (size < 1) return 0;
  fuzz::file_ops_harness h;
  h.request(ops[data[0] % 7], data + 1, size - 1);
  if (!h.link.sent.empty()) {
    for (const auto& payload : fuzz::run_in_init(h.link.sent)) {
      const auto* ev = wire::verify<wire::InitEvent>(payload.data(), payload.size());
      if (ev != nullptr && ev->event_type() == wire::Event::FsResult &&
          !h.files.on_event(h.ctx, *ev))
        fuzz::fail("an FsResult not taken by the file operations");
    }
  }
  if (h.out.published.size() != 1) fuzz::fail("a request not answered exactly once");
  const auto& reply = h.out.published.front().second;
  fuzz::expect_answer<wire::FsReply>(reply);
  if (!client::error_reply_of(reply.data(), reply.size()) &&
      !client::fs_reply_of(reply.data(), reply.size()))
    fuzz::fail("the client cannot read the answer");
  return 0;
}
