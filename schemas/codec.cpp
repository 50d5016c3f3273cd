#include "schemas/codec.hpp"

namespace corral::wire {

bytes release(flatbuffers::FlatBufferBuilder& fbb) {
  return bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

bytes make_error_reply(ErrorCode code, std::string_view message, std::string_view field) {
  flatbuffers::FlatBufferBuilder fbb(128 + message.size() + field.size());
  auto m = fbb.CreateString(message.data(), message.size());
  auto f = field.empty() ? 0 : fbb.CreateString(field.data(), field.size());
  fbb.Finish(CreateErrorReply(fbb, code, m, f), ErrorReplyIdentifier());
  return release(fbb);
}

bytes make_ack(std::string_view message) {
  flatbuffers::FlatBufferBuilder fbb(64 + message.size());
  auto m = message.empty() ? 0 : fbb.CreateString(message.data(), message.size());
  fbb.Finish(CreateAck(fbb, m), AckIdentifier());
  return release(fbb);
}

bytes make_page_end(bool more, uint64_t next, std::string_view message) {
  flatbuffers::FlatBufferBuilder fbb(64 + message.size());
  auto m = message.empty() ? 0 : fbb.CreateString(message.data(), message.size());
  fbb.Finish(CreateAck(fbb, m, more, next), AckIdentifier());
  return release(fbb);
}

std::optional<page_end> page_end_of(const uint8_t* data, std::size_t size) {
  const auto* a = verify<Ack>(data, size);
  if (a == nullptr) return std::nullopt;
  return page_end{a->more(), a->next()};
}

bytes make_attach_request(std::string_view exec_id) {
  flatbuffers::FlatBufferBuilder fbb(64 + exec_id.size());
  auto id = fbb.CreateString(exec_id.data(), exec_id.size());
  ExecRequestBuilder b(fbb);
  b.add_exec_id(id);
  b.add_attach_only(true);
  fbb.Finish(b.Finish(), ExecRequestIdentifier());
  return release(fbb);
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<KeyValue>>> build_pairs(
    flatbuffers::FlatBufferBuilder& fbb, const string_pairs& pairs) {
  std::vector<flatbuffers::Offset<KeyValue>> kvs;
  kvs.reserve(pairs.size());
  for (const auto& [k, v] : pairs)
    kvs.push_back(CreateKeyValue(fbb, fbb.CreateString(k), fbb.CreateString(v)));
  return fbb.CreateVectorOfSortedTables(&kvs);
}

string_pairs pairs_of(const flatbuffers::Vector<flatbuffers::Offset<KeyValue>>* v) {
  string_pairs out;
  if (v == nullptr) return out;
  out.reserve(v->size());
  for (const auto* kv : *v) out.emplace_back(std::string(str(kv->key())), std::string(str(kv->value())));
  return out;
}

const char* to_string(ErrorCode code) {
  const char* name = EnumNameErrorCode(code);
  return (name == nullptr || *name == '\0') ? "unknown" : name;
}

const char* to_string(SandboxState state) {
  const char* name = EnumNameSandboxState(state);
  return (name == nullptr || *name == '\0') ? "unknown" : name;
}

const char* to_string(Outcome outcome) {
  const char* name = EnumNameOutcome(outcome);
  return (name == nullptr || *name == '\0') ? "unknown" : name;
}

}  // namespace corral::wire
