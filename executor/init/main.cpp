// corral-init: PID 1 of every sandbox. Speaks the init protocol (schemas/init_command.fbs,
// schemas/init_event.fbs, framed as in schemas/frame.hpp) on its stdin and stdout; stderr is a
// log for humans. See init_event_loop.hpp for what it guarantees.
#include <unistd.h>

#include "executor/init/init_event_loop.hpp"
#include "executor/init/init_limits.hpp"
#include "executor/init/init_sys.hpp"

int main(int argc, char** argv) {
  using namespace corral::init;
  init_limits limits;
  const std::string problem = parse_init_limits(argc, argv, limits);
  if (!problem.empty()) {
    log_line("%s", problem.c_str());
    return 2;
  }
  unique_fd child_signal_fd = prepare_init_process();
  if (!child_signal_fd.valid()) return 1;  // without it no child could be reaped
  log_line("running as pid %d", own_pid());
  init_event_loop loop(limits, STDIN_FILENO, STDOUT_FILENO, std::move(child_signal_fd));
  return loop.run() == 0 ? 0 : 1;
}
