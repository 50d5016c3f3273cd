// corral-executor: one per host. A CAF actor system (node, sandbox, process actors) over the
// node's RocksDB, serving the NATS protocol of docs/protocol.md and running sandboxes with gVisor.
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <string>

#include <caf/all.hpp>

#include "actors/node.hpp"
#include "executor/jobs/guest.hpp"
#include "executor/jobs/job_runner.hpp"
#include "executor/jobs/job_service.hpp"
#include "executor/nats_bridge.hpp"
#include "executor/tenants_file.hpp"
#include "executor/runtime/gvisor_runtime.hpp"
#include "executor/runtime/orphan_reaper.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace {

namespace fs = std::filesystem;
using namespace corral;

class system_clock final : public corral::clock {
 public:
  int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

struct flags {
  std::string data = "./var/executor";
  std::string nats = "nats://127.0.0.1:4222";
  std::string nats_creds;                      // the executor's nkey seed file (docs/security.md)
  std::string nats_ca, nats_cert, nats_key;    // TLS (docs/operations.md)
  std::string node_id;
  std::string pool = "default";
  std::string runsc;
  std::string init;
  uint32_t max_sandboxes = 0;
  int64_t warm_pool = -1;  // negative = the configured default
  int64_t default_timeout_s = 0;
  int64_t heartbeat_ms = 0;
  int64_t retention_s = -1;
  int64_t output_retention_s = -1;
  uint64_t max_output_mib = 0;
  std::vector<std::pair<std::string, std::string>> tags;
  uint32_t scheduler_threads = 0;
  // Limits and metering (0 / negative = the configured default).
  int64_t usage_sample_ms = 0;
  double price_core_second = -1;
  double price_gib_second = -1;
  int64_t disk_limit_mib = -1;
  // Jobs (executor/jobs/).
  int job_slots = 2;
  bool warm_runners = true;  // warm sandboxes start the job runner's guest runner ahead of leases
  bool warm_loans = true;    // fresh leases borrow their warm sandbox (replaced when they end)
  int64_t job_ack_wait_ms = 30'000;
  uint32_t job_max_attempts = 3;
  int64_t job_dedup_window_s = 3600;
  // Per-tenant quotas (actors/quota.hpp; 0 / negative = the default) and their overrides.
  std::string tenants_file;
  int64_t tenant_sandboxes = 0;  // 0: three quarters of --max-sandboxes
  int64_t tenant_cpu_millis = -1, tenant_memory_mib = -1;
  int64_t tenant_stored_output_mib = 0, sandbox_stored_output_mib = 0;
  double tenant_execs_per_second = 0;
  int64_t memory_reserve_mib = -1;  // -1: max(1 GiB, a tenth of the host's memory)
};

const char* usage_text =
    "usage: corral-executor [--data DIR] [--nats URL] [--nats-creds FILE] [--node ID] [--pool P]\n"
    "                       [--nats-ca PEM] [--nats-cert PEM --nats-key PEM]\n"
    "                       [--max-sandboxes N] [--warm-pool N (0 = none)]\n"
    "                       [--runsc PATH] [--init PATH]\n"
    "                       [--default-timeout SECONDS] [--heartbeat-ms MS] [--retention SECONDS]\n"
    "                       [--output-retention SECONDS]\n"
    "                       [--usage-sample-ms MS] [--price-core-second USD]\n"
    "                       [--price-gib-second USD] [--disk-limit-mib MIB (0 = none)]\n"
    "                       [--max-output-mib MIB] [--tag K=V]...   (e.g. --tag gpu=H100)\n"
    "                       [--job-slots N (0 = take no jobs)] [--job-ack-wait-ms MS]\n"
    "                       [--job-max-attempts N] [--job-dedup-window SECONDS]\n"
    "                       [--warm-runners 1|0 (warm sandboxes pre-start the job runner)]\n"
    "                       [--warm-loans 1|0 (a fresh lease's warm sandbox is replaced when the\n"
    "                        lease ends, or when another create arrives; 0: at once)]\n"
    "                       [--tenants FILE (per-tenant quota overrides, docs/operations.md)]\n"
    "                       [--tenant-sandboxes N (default: 3/4 of --max-sandboxes)]\n"
    "                       [--tenant-cpu-millis N] [--tenant-memory-mib N] (0 = no quota;\n"
    "                        memory: three quarters of the node's by default)\n"
    "                       [--tenant-stored-output-mib N (1024)] [--sandbox-stored-output-mib N (256)]\n"
    "                       [--tenant-execs-per-second R (100)]\n"
    "                       [--memory-reserve-mib N (kept from sandboxes' memory requests;\n"
    "                        default max(1024, a tenth of the host's memory); 0 = no check)]\n"
    "                       [--scheduler-threads N (the actors' worker threads; 0 = CAF's\n"
    "                        default)]\n";

bool parse(int argc, char** argv, flags& f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return false;
    std::string v = argv[++i];
    if (a == "--data") f.data = v;
    else if (a == "--nats") f.nats = v;
    else if (a == "--nats-creds") f.nats_creds = v;
    else if (a == "--nats-ca") f.nats_ca = v;
    else if (a == "--nats-cert") f.nats_cert = v;
    else if (a == "--nats-key") f.nats_key = v;
    else if (a == "--node") f.node_id = v;
    else if (a == "--pool") f.pool = v;
    else if (a == "--runsc") f.runsc = v;
    else if (a == "--init") f.init = v;
    else if (a == "--max-sandboxes") f.max_sandboxes = static_cast<uint32_t>(std::stoul(v));
    else if (a == "--warm-pool") {
      f.warm_pool = std::stoll(v);
      if (f.warm_pool < 0) return false;
    }
    else if (a == "--default-timeout") f.default_timeout_s = std::stoll(v);
    else if (a == "--heartbeat-ms") f.heartbeat_ms = std::stoll(v);
    else if (a == "--retention") f.retention_s = std::stoll(v);
    else if (a == "--output-retention") f.output_retention_s = std::stoll(v);
    else if (a == "--max-output-mib") f.max_output_mib = std::stoull(v);
    else if (a == "--tag") {
      const auto eq = v.find('=');
      if (eq == std::string::npos || eq == 0) return false;
      f.tags.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    }
    else if (a == "--usage-sample-ms") f.usage_sample_ms = std::stoll(v);
    else if (a == "--price-core-second") f.price_core_second = std::stod(v);
    else if (a == "--price-gib-second") f.price_gib_second = std::stod(v);
    else if (a == "--disk-limit-mib") f.disk_limit_mib = std::stoll(v);
    else if (a == "--job-slots") {
      f.job_slots = std::stoi(v);
      if (f.job_slots < 0) return false;
    }
    else if (a == "--warm-runners") {
      if (v != "0" && v != "1") return false;
      f.warm_runners = v == "1";
    }
    else if (a == "--warm-loans") {
      if (v != "0" && v != "1") return false;
      f.warm_loans = v == "1";
    }
    else if (a == "--job-ack-wait-ms") f.job_ack_wait_ms = std::stoll(v);
    else if (a == "--job-max-attempts") f.job_max_attempts = static_cast<uint32_t>(std::stoul(v));
    else if (a == "--job-dedup-window") f.job_dedup_window_s = std::stoll(v);
    else if (a == "--scheduler-threads") f.scheduler_threads = static_cast<uint32_t>(std::stoul(v));
    else if (a == "--tenants") f.tenants_file = v;
    else if (a == "--tenant-sandboxes") f.tenant_sandboxes = std::stoll(v);
    else if (a == "--tenant-cpu-millis") f.tenant_cpu_millis = std::stoll(v);
    else if (a == "--tenant-memory-mib") f.tenant_memory_mib = std::stoll(v);
    else if (a == "--tenant-stored-output-mib") f.tenant_stored_output_mib = std::stoll(v);
    else if (a == "--sandbox-stored-output-mib") f.sandbox_stored_output_mib = std::stoll(v);
    else if (a == "--tenant-execs-per-second") f.tenant_execs_per_second = std::stod(v);
    else if (a == "--memory-reserve-mib") f.memory_reserve_mib = std::stoll(v);
    else return false;
  }
  return true;
}

std::string self_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

// The node id: --node, else the one stored at first start (hostname-based, made unique).
std::string node_id_of(storage::store& store, const std::string& given) {
  if (!given.empty()) return given;
  if (auto stored = store.get_meta("node_id")) return *stored;
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  std::string id;
  for (char c : std::string(host))
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') id += c;
  if (id.empty()) id = "node";
  id = id.substr(0, 40) + "-" + wire::new_id("").substr(0, 6);
  if (auto st = store.put_meta("node_id", id); !st.ok())
    std::cerr << "corral-executor: cannot store node id: " << st.message << "\n";
  return id;
}

}  // namespace

int main(int argc, char** argv) {
  flags f;
  try {
    if (!parse(argc, argv, f)) {
      std::cerr << usage_text;
      return 2;
    }
  } catch (const std::exception&) {
    std::cerr << usage_text;
    return 2;
  }
  // SIGTERM/SIGINT are taken synchronously at the end of main; every thread inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  // runsc leaves orphans that `runsc delete` waits for: reap them promptly.
  if (auto e = start_orphan_reaper(); !e.empty())
    std::cerr << "corral-executor: warning: no subreaper: " << e << "\n";

  std::error_code ec;
  fs::create_directories(f.data, ec);
  const std::string data = fs::absolute(f.data).string();
  // Nothing under it is for other local users (docs/security.md, "Local users").
  fs::permissions(data, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) {
    std::cerr << "corral-executor: cannot make " << data << " private: " << ec.message() << "\n";
    return 1;
  }

  auto opened = storage::store::open(data + "/db", storage::store_options{});
  if (!opened) {
    std::cerr << "corral-executor: cannot open the store: " << opened.error().message << "\n";
    return 1;
  }
  std::unique_ptr<storage::store> store = std::move(*opened);

  node_context ctx;
  ctx.config.node_id = node_id_of(*store, f.node_id);
  ctx.config.pool = f.pool;
  ctx.config.tags = f.tags;
  if (f.max_sandboxes) ctx.config.max_sandboxes = f.max_sandboxes;
  if (f.warm_pool >= 0)
    ctx.config.warm_pool = static_cast<uint32_t>(std::min<int64_t>(f.warm_pool, UINT32_MAX));
  if (f.default_timeout_s > 0) ctx.config.default_timeout_ms = f.default_timeout_s * 1000;
  if (f.heartbeat_ms > 0) ctx.config.heartbeat_interval_ms = f.heartbeat_ms;
  if (f.retention_s >= 0) {
    ctx.config.retention_ms = f.retention_s * 1000;
    ctx.config.output_retention_ms = std::min(ctx.config.output_retention_ms, ctx.config.retention_ms);
  }
  if (f.output_retention_s >= 0) ctx.config.output_retention_ms = f.output_retention_s * 1000;
  if (f.max_output_mib > 0) ctx.config.max_output_bytes = f.max_output_mib * 1024 * 1024;
  if (f.usage_sample_ms > 0) ctx.config.usage_sample_interval_ms = f.usage_sample_ms;
  if (f.price_core_second >= 0) ctx.config.price_per_core_second = f.price_core_second;
  if (f.price_gib_second >= 0) ctx.config.price_per_gib_second = f.price_gib_second;
  // Leases of the job runner then find their guest runner up (it is started in every warm
  // sandbox and killed at a claim by anything else).
  if (f.job_slots > 0 && f.warm_runners) ctx.config.warm_prestart = jobs::guest_runner_argv();
  ctx.config.warm_prestart_tag = jobs::sandbox_tag;
  // A sweep's leases live as long as it runs: their replacements are booted when they end (or
  // when anyone else creates), not at the sweep's start, where they took ~10% of its CPU.
  if (f.job_slots > 0 && f.warm_loans) ctx.config.warm_loan_tag = {jobs::sandbox_tag, jobs::fresh_lease};
  {
    // The memory the node admits: the host's, less a reserve for the executor, NATS, the
    // gateway and the host's own services.
    uint64_t total_kib = 0;
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    while (meminfo >> key) {
      if (key == "MemTotal:") {
        meminfo >> total_kib;
        break;
      }
      std::string rest;
      std::getline(meminfo, rest);
    }
    const int64_t total_mib = static_cast<int64_t>(total_kib / 1024);
    const int64_t reserve =
        f.memory_reserve_mib >= 0 ? f.memory_reserve_mib : std::max<int64_t>(1024, total_mib / 10);
    if (total_mib > 0 && f.memory_reserve_mib != 0)
      ctx.config.memory_capacity_mib = static_cast<uint64_t>(std::max<int64_t>(total_mib - reserve, 256));
  }
  if (auto why = ctx.config.validate(); !why.empty()) {
    std::cerr << "corral-executor: invalid configuration: " << why << "\n";
    return 2;
  }

  gvisor_config gcfg;
  gcfg.data_dir = data + "/runtime";
  gcfg.init_path = f.init.empty() ? self_dir() + "/corral-init" : f.init;
  if (!f.runsc.empty()) {
    gcfg.runsc_path = f.runsc;
  } else if (const char* e = std::getenv("CORRAL_RUNSC"); e && *e) {
    gcfg.runsc_path = e;
  } else if (fs::exists(self_dir() + "/corral-runsc")) {
    gcfg.runsc_path = self_dir() + "/corral-runsc";
  }
  gcfg.become_subreaper = false;  // done above, once for the process
  // Sandboxes together never use more than the node admits (their memory requests' bound).
  gcfg.sandboxes_memory_limit_bytes = ctx.config.memory_capacity_mib << 20;
  if (f.disk_limit_mib >= 0) {
    if (f.disk_limit_mib > std::numeric_limits<uint32_t>::max()) {
      std::cerr << "corral-executor: --disk-limit-mib is too large\n";
      return 2;
    }
    gcfg.disk_limit_mib = static_cast<uint32_t>(f.disk_limit_mib);
  }
  auto made = make_gvisor_runtime(gcfg);
  if (!made.runtime) {
    std::cerr << "corral-executor: runtime: " << made.error << "\n";
    return 1;
  }
  ctx.rt = made.runtime.get();

  bus::options bopts;
  bopts.urls = {f.nats};
  bopts.name = "corral-executor " + ctx.config.node_id;
  bopts.nkey_seed_file = f.nats_creds;
  bopts.tls_ca_file = f.nats_ca;
  bopts.tls_cert_file = f.nats_cert;
  bopts.tls_key_file = f.nats_key;
  bopts.inbox_prefix = std::string(wire::subjects::executor_inbox_prefix);
  bopts.on_disconnected = [] { std::cerr << "corral-executor: NATS disconnected\n"; };
  bopts.on_reconnected = [] { std::cerr << "corral-executor: NATS reconnected\n"; };
  std::string error;
  auto conn = bus::connection::connect(bopts, &error);
  if (!conn) {
    std::cerr << "corral-executor: cannot connect to NATS at " << f.nats << ": " << error << "\n";
    return 1;
  }
  nats_outbox out(*conn);
  nats_router router(*conn, ctx.config.pool, ctx.config.node_id);
  system_clock clk;
  ctx.store = store.get();
  ctx.out = &out;
  ctx.clk = &clk;
  ctx.router = &router;
  tenant_quota quota_defaults;
  quota_defaults.sandboxes =
      f.tenant_sandboxes > 0 ? static_cast<uint32_t>(f.tenant_sandboxes)
                             : std::max<uint32_t>(1, ctx.config.max_sandboxes * 3 / 4);
  if (f.tenant_cpu_millis >= 0) quota_defaults.cpu_millis = static_cast<uint64_t>(f.tenant_cpu_millis);
  // Memory requests are reservations: without a quota one tenant's idle sandboxes could reserve
  // the whole node. By default a tenant may reserve three quarters of what the node admits.
  if (f.tenant_memory_mib >= 0)
    quota_defaults.memory_mib = static_cast<uint64_t>(f.tenant_memory_mib);
  else if (ctx.config.memory_capacity_mib > 0)
    quota_defaults.memory_mib = std::max<uint64_t>(1, ctx.config.memory_capacity_mib * 3 / 4);
  if (f.tenant_stored_output_mib > 0)
    quota_defaults.stored_output_bytes = static_cast<uint64_t>(f.tenant_stored_output_mib) << 20;
  if (f.sandbox_stored_output_mib > 0)
    quota_defaults.sandbox_stored_output_bytes = static_cast<uint64_t>(f.sandbox_stored_output_mib) << 20;
  if (quota_defaults.stored_output_bytes < quota_defaults.sandbox_stored_output_bytes)
    quota_defaults.stored_output_bytes = quota_defaults.sandbox_stored_output_bytes;
  if (f.tenant_execs_per_second > 0) {
    quota_defaults.execs_per_second = f.tenant_execs_per_second;
    quota_defaults.exec_burst = static_cast<uint32_t>(std::max(1.0, 2 * f.tenant_execs_per_second));
  }
  if (auto why = quota_defaults.validate(); !why.empty()) {
    std::cerr << "corral-executor: bad tenant quota: " << why << "\n" << usage_text;
    return 2;
  }
  tenants_file quotas(f.tenants_file, quota_defaults);
  output_ledger ledger(*store, quotas);
  ctx.quotas = &quotas;
  ctx.ledger = &ledger;
  if (getrandom(&ctx.session, sizeof ctx.session, 0) != sizeof ctx.session || ctx.session == 0)
    ctx.session = static_cast<uint64_t>(clk.now_ms());

  {
    caf::actor_system_config cfg;
    // Work sharing (one queue, a condition variable) wakes a worker at once for a message sent
    // from a NATS or runtime thread. CAF's default work stealing lets idle workers sleep up to
    // 10 ms between polls, which showed as +12 ms on every exec round trip.
    cfg.set("scheduler.policy", caf::atom("sharing"));
    if (f.scheduler_threads) cfg.set("scheduler.max-threads", f.scheduler_threads);
    caf::actor_system sys{cfg};
    auto shared_ctx = std::make_shared<const node_context>(ctx);
    auto node = spawn_node(sys, shared_ctx);
    if (!router.start(caf::actor_cast<caf::actor>(node), &error)) {
      std::cerr << "corral-executor: " << error << "\n";
      return 1;
    }
    uint32_t recovered = 0;
    {
      caf::scoped_actor self{sys};
      self->request(node, caf::infinite, recover_atom::value)
          .receive([&](uint32_t n) { recovered = n; },
                   [&](caf::error& e) { std::cerr << "recovery failed: " << sys.render(e) << "\n"; });
    }
    // The job runner drives this node's sandboxes over its own connection, like any client.
    std::shared_ptr<bus::connection> jobs_conn;
    std::unique_ptr<jobs::job_runner> runner;
    std::unique_ptr<jobs::job_service> job_feed;
    // The connection's event thread tells the runner of a lost connection while it exists.
    auto runner_on_loss = std::make_shared<std::atomic<jobs::job_runner*>>(nullptr);
    if (f.job_slots > 0) {
      bus::options jopts = bopts;
      jopts.name = "corral-executor jobs " + ctx.config.node_id;
      jopts.on_disconnected = [lost = runner_on_loss] {
        std::cerr << "corral-executor: job runner: NATS disconnected\n";
        if (auto* r = lost->load()) r->connection_lost();
      };
      jobs_conn = bus::connection::connect(jopts, &error);
      if (!jobs_conn) {
        std::cerr << "corral-executor: cannot connect the job runner: " << error << "\n";
        return 1;
      }
      jobs::runner_config rc;
      rc.node_id = ctx.config.node_id;
      rc.pool = ctx.config.pool;
      rc.slots = f.job_slots;
      rc.backlog = f.job_slots;  // run requests wait here rather than being told to retry
      runner = std::make_unique<jobs::job_runner>(jobs_conn, rc);
      runner_on_loss->store(runner.get());
      jobs::service_config sc;
      sc.node_id = ctx.config.node_id;
      sc.pool = ctx.config.pool;
      sc.ack_wait_ms = std::max<int64_t>(100, f.job_ack_wait_ms);
      sc.max_attempts = std::max<uint32_t>(1, f.job_max_attempts);
      sc.dedup_window_ms = std::max<int64_t>(1, f.job_dedup_window_s) * 1000;
      job_feed = std::make_unique<jobs::job_service>(jobs_conn, *runner, sc);
      if (!job_feed->start(&error)) {
        std::cerr << "corral-executor: jobs: " << error << "\n";
        return 1;
      }
      (void)jobs_conn->flush(5000);
    }
    (void)conn->flush(5000);  // interest registered before we say ready; failure shows on use
    std::cout << "corral-executor: ready node=" << ctx.config.node_id << " pool=" << ctx.config.pool
              << " recovered=" << recovered << " runsc=" << gcfg.runsc_path
              << " job_slots=" << f.job_slots
              << " job_queue=" << (job_feed && job_feed->has_jetstream() ? "jetstream" : "none")
              << std::endl;

    int sig = 0;
    sigwait(&sigs, &sig);
    std::cerr << "corral-executor: signal " << sig << ": draining\n";
    // Jobs first: queued ones are handed back, running ones finish, then their sandboxes end
    // (through the node, which is still serving).
    if (job_feed) job_feed->stop();
    if (runner) runner->stop();
    runner_on_loss->store(nullptr);
    caf::anon_send(node, drain_atom::value);
    router.stop();
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
  }
  made.runtime.reset();  // closes links; sandboxes keep running, to be adopted at next start
  conn->close();
  if (auto st = store->close(); !st.ok())
    std::cerr << "corral-executor: store close: " << st.message << "\n";
  std::cerr << "corral-executor: stopped\n";
  return 0;
}
