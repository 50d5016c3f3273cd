#pragma once
// InitCommand payloads built as the executor builds them (schemas/init_command.fbs), for the
// init fuzz targets' fixed opening and for the seed generator.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "schemas/codec.hpp"

namespace corral::fuzz {

[[nodiscard]] wire::bytes command_hello(uint64_t session);
struct spawn_args {
  uint64_t id = 1;
  std::vector<std::string> argv;
  wire::string_pairs env;
  std::string workdir;
  bool stdin_open = false, pty = false;
  uint16_t rows = 0, cols = 0;
  bool hold = false;
  uint64_t adopt = 0;
};
[[nodiscard]] wire::bytes command_spawn(const spawn_args& a);
[[nodiscard]] wire::bytes command_stdin(uint64_t id, const std::string& data, bool eof);
[[nodiscard]] wire::bytes command_signal(uint64_t id, int32_t sig);
[[nodiscard]] wire::bytes command_resize(uint64_t id, uint16_t rows, uint16_t cols);
struct fs_call_args {
  uint64_t call_id = 1;
  wire::FsOp op = wire::FsOp::stat;
  std::string path = "/";
  uint64_t offset = 0, length = 0;
  std::string data;
  bool create = true, truncate = false, append = false, exclusive = false, parents = false,
       recursive = false;
  uint32_t mode = 0;
};
[[nodiscard]] wire::bytes command_fs_call(const fs_call_args& a);

// The opening every init target sends before its input: a Hello (session 7), then processes 1
// ("cat", stdin open), 2 ("hang" on a pty), 3 (held "cat", to be adopted) and 4 (an "echo" that
// has exited by the time the input is read), so that commands naming ids 1..4 reach live,
// pty, held and ended processes.
[[nodiscard]] std::vector<wire::bytes> opening_commands();

}  // namespace corral::fuzz
