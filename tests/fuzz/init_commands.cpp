#include "tests/fuzz/init_commands.hpp"

namespace corral::fuzz {
namespace {
wire::bytes finish(flatbuffers::FlatBufferBuilder& fbb, wire::Command type,
                   flatbuffers::Offset<void> command) {
  fbb.Finish(wire::CreateInitCommand(fbb, type, command), wire::InitCommandIdentifier());
  return wire::release(fbb);
}
}  // namespace

wire::bytes command_hello(uint64_t session) {
  flatbuffers::FlatBufferBuilder fbb(64);
  return finish(fbb, wire::Command::Hello, wire::CreateHello(fbb, session).Union());
}

wire::bytes command_spawn(const spawn_args& a) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  auto argv = fbb.CreateVectorOfStrings(a.argv);
  std::vector<flatbuffers::Offset<wire::KeyValue>> env;
  for (const auto& [k, v] : a.env)
    env.push_back(wire::CreateKeyValue(fbb, fbb.CreateString(k), fbb.CreateString(v)));
  auto e = fbb.CreateVector(env);
  auto wd = fbb.CreateString(a.workdir);
  auto s = wire::CreateSpawn(fbb, a.id, argv, e, wd, a.stdin_open, a.pty, a.rows, a.cols, a.hold,
                             a.adopt);
  return finish(fbb, wire::Command::Spawn, s.Union());
}

wire::bytes command_stdin(uint64_t id, const std::string& data, bool eof) {
  flatbuffers::FlatBufferBuilder fbb(64 + data.size());
  auto d = fbb.CreateVector(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return finish(fbb, wire::Command::StdinData, wire::CreateStdinData(fbb, id, d, eof).Union());
}

wire::bytes command_signal(uint64_t id, int32_t sig) {
  flatbuffers::FlatBufferBuilder fbb(64);
  return finish(fbb, wire::Command::Signal, wire::CreateSignal(fbb, id, sig).Union());
}

wire::bytes command_resize(uint64_t id, uint16_t rows, uint16_t cols) {
  flatbuffers::FlatBufferBuilder fbb(64);
  return finish(fbb, wire::Command::Resize, wire::CreateResize(fbb, id, rows, cols).Union());
}

wire::bytes command_fs_call(const fs_call_args& a) {
  flatbuffers::FlatBufferBuilder fbb(256 + a.path.size() + a.data.size());
  auto path = fbb.CreateString(a.path);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
  if (!a.data.empty())
    data = fbb.CreateVector(reinterpret_cast<const uint8_t*>(a.data.data()), a.data.size());
  wire::FsCallBuilder b(fbb);
  b.add_call_id(a.call_id);
  b.add_op(a.op);
  b.add_path(path);
  b.add_offset(a.offset);
  b.add_length(a.length);
  b.add_data(data);
  b.add_create(a.create);
  b.add_truncate(a.truncate);
  b.add_append(a.append);
  b.add_exclusive(a.exclusive);
  b.add_parents(a.parents);
  b.add_recursive(a.recursive);
  b.add_mode(a.mode);
  auto call = b.Finish();
  return finish(fbb, wire::Command::FsCall, call.Union());
}

std::vector<wire::bytes> opening_commands() {
  std::vector<wire::bytes> out;
  out.push_back(command_hello(7));
  spawn_args cat;
  cat.id = 1;
  cat.argv = {"cat"};
  cat.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/root"}};
  cat.stdin_open = true;
  out.push_back(command_spawn(cat));
  spawn_args tty;
  tty.id = 2;
  tty.argv = {"hang"};
  tty.pty = true;
  tty.rows = 24;
  tty.cols = 80;
  tty.stdin_open = true;
  out.push_back(command_spawn(tty));
  spawn_args held = cat;
  held.id = 3;
  held.hold = true;
  out.push_back(command_spawn(held));
  spawn_args echo;
  echo.id = 4;
  echo.argv = {"daemon", "hello"};
  echo.workdir = "/tmp";
  out.push_back(command_spawn(echo));
  return out;
}

}  // namespace corral::fuzz
