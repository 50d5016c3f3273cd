// corral-init: PID 1 of every sandbox. Speaks the init protocol (schemas/init_command.fbs,
// schemas/init_event.fbs, framed as in schemas/frame.hpp) on its stdin and stdout; stderr is a
// log for humans. See init_event_loop.hpp for what it guarantees, init_isolation.hpp for what
// keeps the sandbox's processes away from it. `corral-init --reaper` is the PID 1 of the user
// namespace that init starts itself.
#include <unistd.h>

#include <cstring>

#include "executor/init/init_event_loop.hpp"
#include "executor/init/init_isolation.hpp"
#include "executor/init/init_limits.hpp"
#include "executor/init/init_sys.hpp"

int main(int argc, char** argv) {
  using namespace corral::init;
  if (argc == 2 && std::strcmp(argv[1], "--reaper") == 0) run_reaper();
  init_limits limits;
  const std::string problem = parse_init_limits(argc, argv, limits);
  if (!problem.empty()) {
    log_line("%s", problem.c_str());
    return 2;
  }
  unique_fd child_signal_fd = prepare_init_process();
  if (!child_signal_fd.valid()) return 1;  // without it no child could be reaped
  sandbox_isolation isolation;
  const int64_t isolation_started_ms = monotonic_ms();
  if (const std::string e = prepare_isolation(isolation); !e.empty()) {
    log_line("cannot keep the sandbox's processes away from init: %s", e.c_str());
    return 1;  // never run anything without that boundary
  }
  if (isolation.active) {
    log_line("running as pid %d; user processes in their own PID namespace (reaper %d, set "
             "up in %lld ms)",
             own_pid(), isolation.reaper,
             static_cast<long long>(monotonic_ms() - isolation_started_ms));
  } else {
    log_line("running as pid %d (not PID 1: no user namespace, trees are process groups)",
             own_pid());
  }
  init_event_loop loop(limits, STDIN_FILENO, STDOUT_FILENO, std::move(child_signal_fd),
                       std::move(isolation));
  return loop.run() == 0 ? 0 : 1;
}
