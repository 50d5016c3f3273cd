// Fuzz target: InitEvent, as the executor consumes what corral-init (or whatever else reaches
// its stdout) writes: verify (actors/sandbox.cpp on_frame), then the file operations take an
// FsResult (actors/files.cpp file_ops::on_event, with calls waiting: a read, a list and a stat
// are asked first) and turn it into the answer a client gets (read back as it reads it); every
// other event is decoded for its process by process_event_of, as on_frame routes it.
#include "actors/validate.hpp"
#include "client/replies.hpp"
#include "tests/fuzz/file_ops_harness.hpp"
#include "tests/fuzz/init_commands.hpp"

using namespace corral;

namespace {
wire::bytes fs_request(const std::string& path) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto p = fbb.CreateString(path);
  wire::FsRequestBuilder b(fbb);
  b.add_path(p);
  fbb.Finish(b.Finish(), wire::FsRequestIdentifier());
  return wire::release(fbb);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* ev = wire::verify<wire::InitEvent>(data, size, wire::max_frame_payload);
  if (ev == nullptr) return 0;
  fuzz::file_ops_harness h;
  for (const char* op : {"read", "list", "stat"}) {  // calls 1, 2, 3
    const auto req = fs_request("/srv/data");
    h.request(op, req.data(), req.size());
  }
  if (h.files.on_event(h.ctx, *ev)) {
    for (const auto& [subject, reply] : h.out.published) {
      fuzz::expect_answer<wire::FsReply>(reply);
      if (!client::error_reply_of(reply.data(), reply.size()) &&
          !client::fs_reply_of(reply.data(), reply.size()))
        fuzz::fail("the client cannot read the answer");
    }
    return 0;
  }
  if (auto routed = process_event_of(*ev)) {
    const auto& pe = routed->second;
    if (pe.what == init_process_event::kind::output && pe.data.size() > wire::max_frame_payload)
      fuzz::fail("an Output larger than its frame");
  }
  return 0;
}
