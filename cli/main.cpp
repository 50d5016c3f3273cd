// corral: the command-line client (speaks NATS directly) and `corral up`, the single-machine
// deployment (an embedded nats-server child, one executor, data under ./var). The verbs are in
// cli/commands/, one file each; this file reads the global options and dispatches.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands/command.hpp"

#ifndef CORRAL_VERSION
#define CORRAL_VERSION "unknown"
#endif
#ifndef CORRAL_GIT_COMMIT
#define CORRAL_GIT_COMMIT "unknown"
#endif
#ifndef CORRAL_BUILD_TYPE
#define CORRAL_BUILD_TYPE "unknown"
#endif

namespace {

using namespace corral;
using namespace corral::cli;

constexpr const char* global_synopsis =
    "usage: corral [--nats URL] [--nats-creds FILE] [--nats-ca PEM] [--tenant T] [--pool P]\n"
    "              COMMAND [ARGS...]\n"
    "       corral COMMAND --help | corral --version\n";

constexpr const char* global_help =
    "\n"
    "options:\n"
    "  --nats URL          NATS server (CORRAL_NATS_URL; default nats://127.0.0.1:4222)\n"
    "  --nats-creds FILE   the tenant's NATS nkey seed file (CORRAL_NATS_CREDS; default\n"
    "                      ./var/auth/tenant-T.nk when it exists)\n"
    "  --nats-ca PEM       the CA that verifies the server: TLS (CORRAL_NATS_CA)\n"
    "  --tenant T          the tenant (CORRAL_TENANT; default 'default')\n"
    "  --pool P            the executors' pool (CORRAL_POOL; default 'default')\n"
    "  --version           print the version and build, and exit\n"
    "  -h, --help          this help; `corral COMMAND --help`: the command's\n";

constexpr const char* global_footer =
    "\n"
    "exit status: exec, run and sandbox logs exit with the process's status (124 after its\n"
    "timeout, 137 when killed for memory, 255 when it could not run); sweep 0 when every\n"
    "program has a result; otherwise 0 done, 1 a failed request, 2 a usage error.\n";

void print_overview(std::FILE* to) {
  std::fputs(global_synopsis, to);
  std::fputs(global_help, to);
  std::fputs("\ncommands:\n", to);
  for (const verb* v : verbs()) {
    std::fprintf(to, "  %-16.*s %.*s\n", static_cast<int>(v->name.size()), v->name.data(),
                 static_cast<int>(v->summary.size()), v->summary.data());
  }
  std::fputs(global_footer, to);
}

int usage(const std::string& why) {
  std::cerr << "corral: " << why << "\n";
  print_overview(stderr);
  return exit_usage;
}

void print_version() {
  std::printf("corral %s\nbuild: %s (%s)\n", CORRAL_VERSION, CORRAL_GIT_COMMIT, CORRAL_BUILD_TYPE);
}

// The verbs of a group ("sandbox", "fs", "node", "token"), for `corral GROUP` and its --help.
int print_group(const std::string& group, std::FILE* to) {
  std::fprintf(to, "usage: corral %s SUBCOMMAND ...\n\nsubcommands:\n", group.c_str());
  for (const verb* v : verbs()) {
    if (v->name.rfind(group + " ", 0) != 0) continue;
    std::fprintf(to, "  %-16.*s %.*s\n", static_cast<int>(v->name.size()), v->name.data(),
                 static_cast<int>(v->summary.size()), v->summary.data());
  }
  std::fprintf(to, "\n`corral %s SUBCOMMAND --help` tells more.\n", group.c_str());
  return 0;
}

bool is_group(const std::string& word) {
  for (const verb* v : verbs())
    if (v->name.rfind(word + " ", 0) == 0) return true;
  return false;
}

// Whether the verb's own arguments ask for help (before any "--": what follows is a command's).
bool wants_help(const args_t& args) {
  for (const auto& a : args) {
    if (a == "--") return false;
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  context ctx;
  ctx.argv0 = argv[0];
  if (const char* e = std::getenv("CORRAL_NATS_URL"); e && *e) ctx.cfg.nats_url = e;
  if (const char* e = std::getenv("CORRAL_NATS_CREDS"); e && *e) {
    ctx.cfg.nats_creds = e;
    ctx.creds_given = true;
  }
  if (const char* e = std::getenv("CORRAL_NATS_CA"); e && *e) ctx.cfg.nats_ca = e;
  if (const char* e = std::getenv("CORRAL_TENANT"); e && *e) ctx.cfg.tenant = e;
  if (const char* e = std::getenv("CORRAL_POOL"); e && *e) ctx.cfg.pool = e;

  args_t args(argv + 1, argv + argc);
  while (!args.empty() && args[0].rfind("-", 0) == 0 && args[0] != "--") {
    const std::string opt = args[0];
    if (opt == "--help" || opt == "-h") {
      print_overview(stdout);
      return exit_ok;
    }
    if (opt == "--version") {
      print_version();
      return exit_ok;
    }
    std::string* target = opt == "--nats"         ? &ctx.cfg.nats_url
                          : opt == "--nats-creds" ? &ctx.cfg.nats_creds
                          : opt == "--nats-ca"    ? &ctx.cfg.nats_ca
                          : opt == "--tenant"     ? &ctx.cfg.tenant
                          : opt == "--pool"       ? &ctx.cfg.pool
                                                  : nullptr;
    if (target == nullptr) return usage("unknown option " + opt);
    if (args.size() < 2) return usage("missing value for " + opt);
    *target = args[1];
    if (opt == "--nats-creds") ctx.creds_given = true;
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty()) return usage("missing command");
  std::string word = args[0];
  args.erase(args.begin());
  if (word == "help") {
    // `corral help [COMMAND...]`: that command's help.
    if (args.empty()) {
      print_overview(stdout);
      return exit_ok;
    }
    word = args[0];
    args.erase(args.begin());
    args.push_back("--help");
  }
  if (word == "version") {
    print_version();
    return exit_ok;
  }
  if (word == "sb") word = "sandbox";

  std::string name = word;
  if (is_group(word)) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
      if (args.empty()) {
        std::cerr << "corral: " << word << ": missing subcommand\n";
        print_group(word, stderr);
        return exit_usage;
      }
      return print_group(word, stdout), exit_ok;
    }
    name = word + " " + args[0];
    args.erase(args.begin());
  }
  for (const verb* v : verbs()) {
    if (v->name != name) continue;
    if (wants_help(args)) {
      print_help(*v);
      return exit_ok;
    }
    return v->run(ctx, args);
  }
  if (is_group(word)) {
    std::cerr << "corral: " << word << ": unknown subcommand " << name.substr(word.size() + 1) << "\n";
    print_group(word, stderr);
    return exit_usage;
  }
  return usage("unknown command " + word);
}
