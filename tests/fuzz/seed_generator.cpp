// Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/): real messages of
// every kind the code sends, built with the project's own encoders where they are callable and
// with the generated FlatBuffers builders as the senders use them otherwise, plus edge cases.
// The seeds are committed as test data; run this again when a schema changes:
//   build/bin/fuzz_seed_generator tests/fuzz/corpus
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "schemas/frame.hpp"
#include "tests/fuzz/init_commands.hpp"
#include "tests/fuzz/seeds.hpp"

namespace corral::fuzz {
namespace {

void init_seeds(seed_writer& out) {
  std::vector<std::pair<std::string, wire::bytes>> cmds;
  cmds.emplace_back("hello", command_hello(7));
  cmds.emplace_back("hello_new_session", command_hello(8));
  spawn_args s;
  s.id = 10;
  s.argv = {"sh", "-c", "echo hi"};
  s.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/root"}, {"LANG", "C.UTF-8"}};
  s.workdir = "/work";
  cmds.emplace_back("spawn", command_spawn(s));
  s.id = 11;
  s.argv = {"flood", "300000"};
  cmds.emplace_back("spawn_flood", command_spawn(s));
  s.id = 12;
  s.argv = {"missing-program"};
  cmds.emplace_back("spawn_missing", command_spawn(s));
  s.id = 1;
  s.argv = {"again"};
  cmds.emplace_back("spawn_used_id", command_spawn(s));
  s.id = 13;
  s.argv = {"cat"};
  s.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/root"}};
  s.workdir = "";
  s.stdin_open = true;
  s.adopt = 3;
  cmds.emplace_back("spawn_adopt", command_spawn(s));
  s.id = 14;
  s.argv = {"other"};
  cmds.emplace_back("spawn_adopt_mismatch", command_spawn(s));
  s.id = 15;
  s.argv = {"hang"};
  s.adopt = 0;
  s.hold = true;
  cmds.emplace_back("spawn_hold", command_spawn(s));
  s.id = 16;
  s.hold = false;
  s.pty = true;
  s.rows = 50;
  s.cols = 200;
  cmds.emplace_back("spawn_pty", command_spawn(s));
  s.id = 17;
  s.pty = false;
  s.argv = {"bad\0arg"};
  s.argv[0] = std::string("bad\0arg", 7);
  cmds.emplace_back("spawn_nul_argv", command_spawn(s));
  s.argv = {"env"};
  s.env = {{"A=B", "x"}};
  cmds.emplace_back("spawn_bad_env", command_spawn(s));
  s.env = {};
  s.workdir = "relative";
  cmds.emplace_back("spawn_relative_workdir", command_spawn(s));
  s.workdir = "/";
  s.argv = {};
  cmds.emplace_back("spawn_empty_argv", command_spawn(s));
  cmds.emplace_back("stdin", command_stdin(1, "hello\n", false));
  cmds.emplace_back("stdin_eof", command_stdin(1, "bye\n", true));
  cmds.emplace_back("stdin_pty", command_stdin(2, "ls\r", false));
  cmds.emplace_back("stdin_unknown", command_stdin(99, "x", false));
  cmds.emplace_back("signal_term", command_signal(1, 15));
  cmds.emplace_back("signal_kill_held", command_signal(3, 9));
  cmds.emplace_back("signal_ended", command_signal(4, 9));
  cmds.emplace_back("signal_bad", command_signal(1, 1000));
  cmds.emplace_back("resize", command_resize(2, 40, 120));
  cmds.emplace_back("resize_not_pty", command_resize(1, 0, 0));
  fs_call_args f;
  f.call_id = 1;
  f.op = wire::FsOp::read;
  f.path = "/etc/hostname";
  cmds.emplace_back("fs_read", command_fs_call(f));
  f.offset = 1000;
  f.length = 4096;
  f.path = "/var/log/big";
  cmds.emplace_back("fs_read_offset", command_fs_call(f));
  f = fs_call_args{};
  f.call_id = 2;
  f.op = wire::FsOp::write;
  f.path = "/tmp/out.txt";
  f.data = "some bytes\n";
  f.truncate = true;
  f.mode = 0600;
  cmds.emplace_back("fs_write", command_fs_call(f));
  f.append = true;
  f.truncate = false;
  cmds.emplace_back("fs_write_append", command_fs_call(f));
  f = fs_call_args{};
  f.call_id = 3;
  f.op = wire::FsOp::list;
  f.path = "/usr/lib";
  cmds.emplace_back("fs_list", command_fs_call(f));
  f.offset = 1000;
  f.length = 5;
  cmds.emplace_back("fs_list_page", command_fs_call(f));
  f = fs_call_args{};
  f.call_id = 4;
  f.op = wire::FsOp::stat;
  f.path = "/";
  cmds.emplace_back("fs_stat", command_fs_call(f));
  f.path = "/enoent/file";
  cmds.emplace_back("fs_stat_missing", command_fs_call(f));
  f = fs_call_args{};
  f.call_id = 5;
  f.op = wire::FsOp::mkdir;
  f.path = "/tmp/a/b/c";
  f.parents = true;
  cmds.emplace_back("fs_mkdir", command_fs_call(f));
  f = fs_call_args{};
  f.call_id = 6;
  f.op = wire::FsOp::remove;
  f.path = "/tmp/a";
  f.recursive = true;
  cmds.emplace_back("fs_remove", command_fs_call(f));
  f.op = static_cast<wire::FsOp>(42);
  cmds.emplace_back("fs_unknown_op", command_fs_call(f));
  f.op = wire::FsOp::read;
  f.path = "relative/path";
  cmds.emplace_back("fs_relative", command_fs_call(f));
  f.path = std::string(5000, 'a');
  f.path[0] = '/';
  cmds.emplace_back("fs_long_path", command_fs_call(f));
  {
    flatbuffers::FlatBufferBuilder fbb(64);
    fbb.Finish(wire::CreateInitCommand(fbb), wire::InitCommandIdentifier());
    cmds.emplace_back("no_command", wire::release(fbb));
  }
  // One argument referenced many times: it verifies, and decodes to many times its size.
  {
    flatbuffers::FlatBufferBuilder fbb(1 << 20);
    auto big = fbb.CreateString(std::string(4096, 'a'));
    std::vector<flatbuffers::Offset<flatbuffers::String>> argv(2000, big);
    auto a = fbb.CreateVector(argv);
    wire::SpawnBuilder b(fbb);
    b.add_id(30);
    b.add_argv(a);
    auto sp = b.Finish();
    fbb.Finish(wire::CreateInitCommand(fbb, wire::Command::Spawn, sp.Union()),
               wire::InitCommandIdentifier());
    out.write("init_command", "spawn_shared_argv", wire::release(fbb));
  }
  // The Command union's type without its table (it verifies).
  for (auto type : {wire::Command::Hello, wire::Command::Spawn, wire::Command::StdinData,
                    wire::Command::Signal, wire::Command::FsCall, wire::Command::Resize}) {
    flatbuffers::FlatBufferBuilder fbb(64);
    fbb.Finish(wire::CreateInitCommand(fbb, type, 0), wire::InitCommandIdentifier());
    cmds.emplace_back(std::string("no_table_") + wire::EnumNameCommand(type), wire::release(fbb));
  }

  for (const auto& [name, payload] : cmds) out.write("init_command", name, payload);

  // Streams: every command framed in one stream; the stream with garbage before, between and
  // after the frames; a frame announcing more than the cap; a cut frame; a mid-frame start.
  // Byte 0 (where the stream is cut) and byte 1 (limits) vary.
  auto stream = [&](uint8_t cut, uint8_t knobs, const std::vector<uint8_t>& body) {
    wire::bytes s(body.size() + 2, cut);
    s[1] = knobs;
    std::copy(body.begin(), body.end(), s.begin() + 2);
    return s;
  };
  std::vector<uint8_t> all;
  for (const auto& [name, payload] : cmds) wire::append_frame(all, payload.data(), payload.size());
  out.write("init_frames", "all_commands", stream(0, 0, all));
  out.write("init_frames", "all_commands_small_reads", stream(1, 0x15, all));
  out.write("init_frames", "all_commands_big_limits", stream(77, 0x0a, all));
  out.write("init_frames", "all_commands_slow_executor", stream(200, 0xc4, all));
  for (const auto& [name, payload] : cmds)
    out.write("init_frames", "one_" + name, stream(static_cast<uint8_t>(name.size()), 0x01,
                                                   wire::make_frame(payload)));
  std::vector<uint8_t> noisy = {'x', 'C', 'R', 'F', 'C', 'R', 'F', 'M', 0xff, 0xff, 0xff, 0xff};
  for (const auto& [name, payload] : cmds) {
    wire::append_frame(noisy, payload.data(), payload.size());
    noisy.insert(noisy.end(), {'C', 'R', 'F', 'M', 3, 0, 0});
  }
  out.write("init_frames", "garbage_between", stream(3, 0x00, noisy));
  std::vector<uint8_t> oversized = {'C', 'R', 'F', 'M', 0x00, 0x20, 0x10, 0x00};
  wire::append_frame(oversized, cmds[0].second.data(), cmds[0].second.size());
  out.write("init_frames", "oversized_length", stream(4, 0x00, oversized));
  auto cut = wire::make_frame(cmds[2].second);
  cut.resize(cut.size() / 2);
  out.write("init_frames", "cut_frame", stream(5, 0x00, cut));
  auto mid = wire::make_frame(cmds[2].second);
  mid.erase(mid.begin(), mid.begin() + 5);
  wire::append_frame(mid, cmds[0].second.data(), cmds[0].second.size());
  out.write("init_frames", "mid_frame_start", stream(6, 0x00, mid));
  out.write("init_frames", "empty_frame", stream(7, 0x00, wire::make_frame({})));
}

}  // namespace
}  // namespace corral::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  corral::fuzz::seed_writer out(argv[1]);
  corral::fuzz::init_seeds(out);
  corral::fuzz::wire_seeds(out);
  std::printf("wrote %zu seeds\n", out.count());
  return 0;
}
