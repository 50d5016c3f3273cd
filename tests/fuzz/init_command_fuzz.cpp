// Fuzz target: InitCommand (schemas/init_command.fbs) as corral-init consumes it. The input is
// one payload; it is framed and sent to the real init_event_loop after the fixed opening of
// init_commands.hpp (a Hello and processes 1..4 in every state), so that Spawn, StdinData,
// Signal, FsCall, Resize and Hello reach init's dispatch, its validation and its file
// operations (over the scripted OS of fake_init_os.hpp: no real process or file is touched).
// Nothing may crash or spin, and everything init writes back must be whole, verified InitEvent
// frames within the frame cap.
#include <cstdint>
#include <vector>

#include "schemas/frame.hpp"
#include "tests/fuzz/fake_init_os.hpp"
#include "tests/fuzz/init_commands.hpp"
#include "tests/fuzz/init_fuzz_limits.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > corral::wire::max_frame_payload) return 0;  // the reader skips it as corruption
  corral::fuzz::init_script script;
  for (auto& c : corral::fuzz::opening_commands())
    script.command_chunks.push_back(corral::wire::make_frame(c));
  std::vector<uint8_t> frame;
  corral::wire::append_frame(frame, data, size);
  script.command_chunks.push_back(std::move(frame));
  // The same command twice: a second Spawn with a used id, a second FsCall, a second Signal.
  script.command_chunks.push_back(script.command_chunks.back());
  corral::fuzz::reset(script);
  // The defaults init runs with, but Started written at once (no clock to wait on).
  corral::fuzz::check_events(corral::fuzz::run_init(corral::fuzz::limits_for(0x01)));
  return 0;
}
