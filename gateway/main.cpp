// corral-gateway: the HTTP/JSON + WebSocket front of corral (docs/architecture.md). Stateless: any
// number of replicas may run behind a load balancer.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
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
               "                      [--metrics-listen HOST:PORT]\n"
               "                      [--workers N] [--max-body-mib N] [--max-streams N]\n"
               "                      [--tenant-max-streams N] [--tenant-max-inflight N]\n"
               "                      [--max-connections N] [--max-connections-per-address N]\n"
               "                      [--read-timeout S] [--write-timeout S]\n"
               "PORT 0 picks a free port; the bound port is printed as "
               "'corral-gateway: listening on PORT'\n"
               "(and 'corral-gateway: metrics listening on PORT'). docs/operations.md, \"The gateway\".\n";
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
  // SIGTERM/SIGINT go to the signal thread only: every thread started from here on blocks them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  corral::gateway::gateway_config cfg;
  std::vector<std::string> args(argv + 1, argv + argc);
  auto host_port = [](const std::string& v, std::string& host, uint16_t& port) {
    const auto colon = v.rfind(':');
    if (colon == std::string::npos) return false;
    host = v.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const auto p = std::stoul(v.substr(colon + 1));
    if (p > 65535) return false;
    port = static_cast<uint16_t>(p);
    return true;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--help" || a == "-h") return usage(), 0;
    if (i + 1 >= args.size()) return usage("missing value for " + a);
    const auto& v = args[++i];
    try {
      if (a == "--listen") {
        if (!host_port(v, cfg.listen_host, cfg.listen_port)) return usage("--listen wants HOST:PORT");
      } else if (a == "--metrics-listen") {
        if (!host_port(v, cfg.metrics_host, cfg.metrics_port))
          return usage("--metrics-listen wants HOST:PORT");
      } else if (a == "--nats") cfg.nats_url = v;
      else if (a == "--nats-creds") cfg.nats_creds = v;
      else if (a == "--nats-ca") cfg.nats_ca = v;
      else if (a == "--tokens") cfg.tokens_file = v;
      else if (a == "--pool") cfg.pool = v;
      else if (a == "--workers") cfg.worker_threads = std::stoi(v);
      else if (a == "--max-body-mib") cfg.max_body_bytes = std::stoul(v) * 1024 * 1024;
      else if (a == "--max-streams") cfg.max_open_streams = std::stoul(v);
      else if (a == "--tenant-max-streams") cfg.tenant_max_streams = std::stoul(v);
      else if (a == "--tenant-max-inflight") cfg.tenant_max_inflight = std::stoul(v);
      else if (a == "--max-connections") cfg.max_connections = std::stoul(v);
      else if (a == "--max-connections-per-address") cfg.max_connections_per_address = std::stoul(v);
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
      cfg,
      [&api](corral::gateway::http_request&& req, std::shared_ptr<corral::gateway::responder> res,
             std::shared_ptr<void> hold) { api.handle(std::move(req), std::move(res), std::move(hold)); },
      [&api](const boost::beast::http::request_header<>& head) { return api.admit(head); },
      &m.connections);
  std::string why;
  if (!server.start(&why)) {
    std::cerr << "corral-gateway: " << why << "\n";
    return 1;
  }
  // The metrics listener: an address of its own (an operator's network), no token.
  std::unique_ptr<corral::gateway::http_server> metrics_server;
  std::thread metrics_thread;
  if (!cfg.metrics_host.empty()) {
    auto mcfg = cfg;
    mcfg.listen_host = cfg.metrics_host;
    mcfg.listen_port = cfg.metrics_port;
    mcfg.io_threads = 1;
    mcfg.worker_threads = 1;
    mcfg.max_connections = 64;
    mcfg.max_connections_per_address = 0;
    metrics_server = std::make_unique<corral::gateway::http_server>(
        mcfg,
        [&api](corral::gateway::http_request&& req, std::shared_ptr<corral::gateway::responder> res,
               std::shared_ptr<void>) { api.handle_metrics_listener(std::move(req), std::move(res)); },
        [&api](const boost::beast::http::request_header<>& head) {
          return api.admit_metrics_listener(head);
        });
    if (!metrics_server->start(&why)) {
      std::cerr << "corral-gateway: metrics: " << why << "\n";
      return 1;
    }
    std::printf("corral-gateway: metrics listening on %u\n",
                static_cast<unsigned>(metrics_server->port()));
    metrics_thread = std::thread([&] { metrics_server->run(); });
  }
  // SIGTERM/SIGINT: stop accepting and leave; streams in flight end with the connection.
  std::thread signals([&server, &metrics_server, set] {
    int sig = 0;
    sigwait(&set, &sig);
    server.stop();
    if (metrics_server) metrics_server->stop();
  });
  signals.detach();
  std::printf("corral-gateway: listening on %u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  server.run();
  std::printf("corral-gateway: stopped\n");
  std::fflush(stdout);
  std::_Exit(0);  // NATS connections and delivery threads need no orderly end
}
