// corral up: the single-machine deployment (cli/up.hpp).
#include "cli/commands/command.hpp"
#include "cli/up.hpp"

namespace corral::cli {

namespace {

int run(context& ctx, const args_t& args) { return run_up(args, ctx.argv0); }

}  // namespace

extern const verb up_verb{
    "up",
    "[--data DIR] [--port N] [--gateway-port N] [--max-sandboxes N] [--runsc PATH]",
    "Start nats-server, an executor and the HTTP gateway, in the foreground.",
    "A single-machine corral; Ctrl-C stops it (sandboxes are adopted again at the next start).\n"
    "\n"
    "options:\n"
    "  --data DIR           data directory (default ./var, made 0700): NATS identities, store\n"
    "  --port N             NATS port (default 4222)\n"
    "  --gateway-port N     HTTP gateway port (default 8080; 0: no gateway)\n"
    "  --max-sandboxes N    the executor's capacity\n"
    "  --runsc PATH         the runsc binary the executor runs sandboxes with\n",
    run};

}  // namespace corral::cli
