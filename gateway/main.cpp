// corral-gateway: the HTTP/JSON + WebSocket front of corral (DESIGN.md §1). Stateless: any
// number of replicas may run behind a load balancer.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "gateway/api.hpp"
#include "gateway/http_server.hpp"
#include "gateway/metrics.hpp"
#include "gateway/token_store.hpp"

namespace {

int usage(const std::string& why = {}) {
  if (!why.empty()) std::cerr << "corral-gateway: " << why << "\n";
  std::cerr << "usage: corral-gateway --listen HOST:PORT --nats URL --tokens FILE [--pool P]\n"
               "                      [--nats-creds FILE] [--nats-ca PEM]\n"
               "                      [--workers N] [--max-body-mib N] [--max-streams N]\n"
               "PORT 0 picks a free port; the bound port is printed as "
               "'corral-gateway: listening on PORT'.\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  // Every open stream is a socket: take all the descriptors the hard limit allows.
  if (rlimit nofile{}; getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &nofile);
  }
  corral::gateway::gateway_config cfg;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--help" || a == "-h") return usage(), 0;
    if (i + 1 >= args.size()) return usage("missing value for " + a);
    const auto& v = args[++i];
    try {
      if (a == "--listen") {
        const auto colon = v.rfind(':');
        if (colon == std::string::npos) return usage("--listen wants HOST:PORT");
        cfg.listen_host = v.substr(0, colon);
        const auto port = std::stoul(v.substr(colon + 1));
        if (port > 65535) return usage("bad port");
        cfg.listen_port = static_cast<uint16_t>(port);
      } else if (a == "--nats") cfg.nats_url = v;
      else if (a == "--nats-creds") cfg.nats_creds = v;
      else if (a == "--nats-ca") cfg.nats_ca = v;
      else if (a == "--tokens") cfg.tokens_file = v;
      else if (a == "--pool") cfg.pool = v;
      else if (a == "--workers") cfg.worker_threads = std::stoi(v);
      else if (a == "--max-body-mib") cfg.max_body_bytes = std::stoul(v) * 1024 * 1024;
      else if (a == "--max-streams") cfg.max_open_streams = std::stoul(v);
      else if (a == "--write-timeout") cfg.write_timeout_ms = static_cast<int64_t>(std::stod(v) * 1000);
      else if (a == "--read-timeout") cfg.read_timeout_ms = static_cast<int64_t>(std::stod(v) * 1000);
      else return usage("unknown option " + a);
    } catch (const std::exception&) {
      return usage("bad value for " + a);
    }
  }
  if (auto why = cfg.validate(); !why.empty()) return usage(why);

  corral::gateway::token_store tokens(cfg.tokens_file);
  corral::gateway::metrics m;
  corral::gateway::api api(cfg, tokens, m);
  corral::gateway::http_server server(
      cfg, [&api](corral::gateway::http_request&& req,
                  std::shared_ptr<corral::gateway::responder> res) {
        api.handle(std::move(req), std::move(res));
      });
  std::string why;
  if (!server.start(&why)) {
    std::cerr << "corral-gateway: " << why << "\n";
    return 1;
  }
  // SIGTERM/SIGINT: stop accepting and leave; streams in flight end with the connection.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread signals([&server, set] {
    int sig = 0;
    sigwait(&set, &sig);
    server.stop();
  });
  signals.detach();
  std::printf("corral-gateway: listening on %u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  server.run();
  std::printf("corral-gateway: stopped\n");
  std::fflush(stdout);
  std::_Exit(0);  // detached long-poll threads may still hold NATS calls: do not wait for them
}
