// Fuzz target: ListSandboxes, as the node actor consumes it (actors/node.cpp on_list): an empty
// payload lists the live sandboxes; otherwise verify and list_matches against sandboxes of every
// kind (live, ended, named, tagged); the SandboxList of the matches is answered and read back as
// the client reads it.
#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "client/replies.hpp"
#include "tests/fuzz/fuzz_checks.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<storage::sandbox_record> sandboxes = [] {
    std::vector<storage::sandbox_record> v(4);
    v[0].id = "sb-00000000000000000000000000000001";
    v[0].state = wire::SandboxState::running;
    v[1].id = "sb-00000000000000000000000000000002";
    v[1].name = "web";
    v[1].state = wire::SandboxState::running;
    v[1].tags = {{"app", "web"}, {"env", "prod"}};
    v[2].id = "sb-00000000000000000000000000000003";
    v[2].name = "old";
    v[2].state = wire::SandboxState::exited;
    v[2].tags = {{"app", "web"}};
    v[3].id = "sb-00000000000000000000000000000004";
    v[3].state = wire::SandboxState::failed;
    v[3].tags = {{"", ""}};
    return v;
  }();
  const wire::ListSandboxes* filter = nullptr;
  if (size != 0) {
    filter = wire::verify<wire::ListSandboxes>(data, size);
    if (filter == nullptr) return 0;
  }
  flatbuffers::FlatBufferBuilder fbb(4096);
  std::vector<flatbuffers::Offset<wire::SandboxInfo>> infos;
  std::size_t matched = 0;
  for (const auto& r : sandboxes)
    if (list_matches(r, filter)) {
      infos.push_back(build_sandbox_info(fbb, r));
      ++matched;
    }
  auto node = fbb.CreateString("node-fuzz");
  auto vec = fbb.CreateVector(infos);
  fbb.Finish(wire::CreateSandboxList(fbb, node, vec), wire::SandboxListIdentifier());
  const auto reply = wire::release(fbb);
  fuzz::expect_answer<wire::SandboxList>(reply);
  std::vector<client::sandbox_view> seen;
  client::add_sandbox_list(reply.data(), reply.size(), seen);
  if (seen.size() != matched) fuzz::fail("the client reads another list than the one answered");
  return 0;
}
