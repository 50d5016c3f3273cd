#include "client/requests.hpp"

namespace corral::client {

std::vector<uint8_t> create_request_bytes(const create_options& o) {
  flatbuffers::FlatBufferBuilder fbb(512);
  auto name = fbb.CreateString(o.name);
  auto wd = fbb.CreateString(o.workdir);
  auto tags = wire::build_pairs(fbb, o.tags);
  auto env = wire::build_pairs(fbb, o.env);
  auto entrypoint = fbb.CreateVectorOfStrings(o.entrypoint);
  auto probe = fbb.CreateVectorOfStrings(o.probe_command);
  wire::CreateSandboxBuilder b(fbb);
  b.add_entrypoint(entrypoint);
  b.add_idle_timeout_ms(o.idle_timeout_ms);
  b.add_cpu_request_millis(o.cpu_request_millis);
  b.add_memory_request_mib(o.memory_request_mib);
  b.add_probe_command(probe);
  b.add_probe_tcp_port(o.probe_tcp_port);
  b.add_probe_interval_ms(o.probe_interval_ms);
  b.add_name(name);
  b.add_timeout_ms(o.timeout_ms);
  b.add_workdir(wd);
  b.add_cpu_millis(o.cpu_millis);
  b.add_memory_mib(o.memory_mib);
  b.add_tags(tags);
  b.add_env(env);
  fbb.Finish(b.Finish(), wire::CreateSandboxIdentifier());
  return wire::release(fbb);
}

std::vector<uint8_t> fs_request_bytes(const fs_request_options& o) {
  flatbuffers::FlatBufferBuilder fbb(o.data.size() + o.path.size() + 256);
  auto path = fbb.CreateString(o.path);
  auto data = fbb.CreateVector(o.data);
  wire::FsRequestBuilder b(fbb);
  b.add_path(path);
  b.add_offset(o.offset);
  b.add_length(o.length);
  b.add_data(data);
  b.add_create(o.create);
  b.add_truncate(o.truncate);
  b.add_append(o.append);
  b.add_exclusive(o.exclusive);
  b.add_parents(o.parents);
  b.add_recursive(o.recursive);
  b.add_mode(o.mode);
  fbb.Finish(b.Finish(), wire::FsRequestIdentifier());
  return wire::release(fbb);
}

std::vector<uint8_t> exec_request_bytes(const std::string& exec_id, const exec_options& o) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  auto id = fbb.CreateString(exec_id);
  auto argv = fbb.CreateVectorOfStrings(o.argv);
  auto env = wire::build_pairs(fbb, o.env);
  auto wd = fbb.CreateString(o.workdir);
  fbb.Finish(wire::CreateExecRequest(fbb, id, argv, env, wd, o.timeout_ms, o.stdin_open, o.pty,
                                     o.rows, o.cols),
             wire::ExecRequestIdentifier());
  return wire::release(fbb);
}

std::vector<uint8_t> stdin_write_bytes(const std::string& exec_id, const uint8_t* data,
                                       std::size_t n, bool eof) {
  static const uint8_t none = 0;  // no bytes: never a null pointer into the builder
  flatbuffers::FlatBufferBuilder b(n + 128);
  auto id = b.CreateString(exec_id);
  auto bytes = b.CreateVector(n == 0 ? &none : data, n);
  b.Finish(wire::CreateStdinWrite(b, id, bytes, eof), wire::StdinWriteIdentifier());
  return wire::release(b);
}

std::vector<uint8_t> signal_request_bytes(const std::string& exec_id, int32_t signal) {
  flatbuffers::FlatBufferBuilder b(128);
  auto id = b.CreateString(exec_id);
  b.Finish(wire::CreateSignalRequest(b, id, signal), wire::SignalRequestIdentifier());
  return wire::release(b);
}

std::vector<uint8_t> resize_request_bytes(const std::string& exec_id, uint16_t rows, uint16_t cols) {
  flatbuffers::FlatBufferBuilder b(128);
  auto id = b.CreateString(exec_id);
  b.Finish(wire::CreateResizeRequest(b, id, rows, cols), wire::ResizeRequestIdentifier());
  return wire::release(b);
}

std::vector<uint8_t> replay_request_bytes(const std::string& exec_id, uint64_t from_seq) {
  flatbuffers::FlatBufferBuilder b(128);
  auto id = b.CreateString(exec_id);
  b.Finish(wire::CreateReplayRequest(b, id, from_seq), wire::ReplayRequestIdentifier());
  return wire::release(b);
}

std::vector<uint8_t> sandbox_query_bytes(int64_t timeout_ms, bool until_ready) {
  flatbuffers::FlatBufferBuilder fbb(64);
  fbb.Finish(wire::CreateSandboxQuery(fbb, timeout_ms, until_ready), wire::SandboxQueryIdentifier());
  return wire::release(fbb);
}

std::vector<uint8_t> set_tags_bytes(const string_pairs& tags) {
  flatbuffers::FlatBufferBuilder fbb(256);
  auto t = wire::build_pairs(fbb, tags);
  fbb.Finish(wire::CreateSetTags(fbb, t), wire::SetTagsIdentifier());
  return wire::release(fbb);
}

std::vector<uint8_t> list_request_bytes(bool include_ended, const std::string& name,
                                        const string_pairs& tags) {
  flatbuffers::FlatBufferBuilder fbb(256);
  auto n = fbb.CreateString(name);
  auto t = wire::build_pairs(fbb, tags);
  fbb.Finish(wire::CreateListSandboxes(fbb, n, t, include_ended), wire::ListSandboxesIdentifier());
  return wire::release(fbb);
}

std::vector<uint8_t> usage_request_bytes(const std::string& sandbox_id) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto id = fbb.CreateString(sandbox_id);
  fbb.Finish(wire::CreateUsageRequest(fbb, id), wire::UsageRequestIdentifier());
  return wire::release(fbb);
}

std::vector<uint8_t> results_read_bytes(const std::string& batch, uint64_t from_seq) {
  flatbuffers::FlatBufferBuilder b(128);
  auto id = b.CreateString(batch);
  b.Finish(wire::CreateResultsRead(b, id, from_seq, 0), wire::ResultsReadIdentifier());
  return wire::release(b);
}

}  // namespace corral::client
