#pragma once
// A scripted operating system for corral-init's event loop, for the fuzz targets: a second
// implementation of every function of executor/init/init_sys.hpp and init_fs.hpp (the link-time
// seam between init's protocol engine and its raw syscalls), in memory. The real
// init_event_loop.cpp and init_fs_call.cpp run on it unchanged: the commands come from a script
// of byte chunks (as init's stdin would deliver them), every event init writes is captured, and
// processes, pipes, signals and files are simulated. Nothing here touches a real process, file
// or fd, so hostile FsCall paths and Signal numbers are harmless.
//
// One loop run at a time (init is single-threaded); reset() before each run.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "executor/init/init_limits.hpp"

namespace corral::fuzz {

// The fd numbers of the scripted world: far above any real fd (so that unique_fd closing them
// closes nothing real) and never equal to one another.
inline constexpr int fake_command_fd = 1 << 24;
inline constexpr int fake_event_fd = fake_command_fd + 1;
inline constexpr int fake_signal_fd = fake_command_fd + 2;

struct init_script {
  // What init's stdin delivers, one read per chunk (a chunk may be empty: a read that would
  // block). Then end of file.
  std::vector<std::vector<uint8_t>> command_chunks;
  // Largest write the executor's pipe takes at once (0: everything); every `block_every`th
  // write would block (0: none), so that init's back-pressure paths run.
  std::size_t event_write_cap = 0;
  unsigned block_every = 0;
};

// Clears the simulated world and installs the script.
void reset(const init_script& script);

// Runs a real init_event_loop over the script until nothing is left to do (every command read,
// every event written, no process with output or stdin pending), and returns the bytes init
// wrote on its event fd. Aborts (a fuzz finding) when the loop does not settle within a bound
// proportional to the work, i.e. when it spins.
[[nodiscard]] std::vector<uint8_t> run_init(const init::init_limits& limits);

// Checks the bytes init wrote: whole frames only (nothing skipped, nothing left over), each
// payload within wire::max_frame_payload and a verified InitEvent. Aborts on a violation.
void check_events(const std::vector<uint8_t>& events);

}  // namespace corral::fuzz
