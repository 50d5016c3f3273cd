#pragma once
// `corral up`: a complete single-machine deployment for development and small installs: an
// embedded nats-server child (JetStream on, data under DIR/nats), one corral-executor child
// (data under DIR/executor). Runs in the foreground until SIGINT/SIGTERM, which it forwards
// (executor first, so it drains; then nats-server), waiting for both to exit.
#include <string>
#include <vector>

namespace corral::cli {

int run_up(const std::vector<std::string>& args, const char* argv0);

}  // namespace corral::cli
