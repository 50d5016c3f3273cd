#pragma once
// A real nats-server child process for integration tests: loopback only, a port of its own, a
// private temporary directory (JetStream store, log, ports file), waited on until it accepts
// clients, and killed with the test.
//
//   corral::test::nats_server_process server;
//   ASSERT_TRUE(server.start()) << server.error();
//   ... connect to server.url() ...
//   server.kill9();                        // crash it
//   ASSERT_TRUE(server.restart()) << server.error();  // same port, same JetStream store
//
// The binary is $CORRAL_NATS_SERVER if set, else corral's own build of nats-server
// (<build>/bin/corral-nats-server, installed by deploy/build.sh: the server `corral up` runs, with
// the patches docs/security.md and docs/jobs.md explain). The first start() lets the server pick a free port itself (-p -1, read
// back from its ports file), so there is no bind-and-release race; restart() asks for the same
// port again and retries while the port is still held.
//
// Not thread-safe: one test thread drives it. The server is started with PR_SET_PDEATHSIG, so it
// dies if the thread that (re)started it exits; start it from the test's own thread. If the test
// process crashes, the server dies with it.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace corral::test {

class nats_server_process {
 public:
  struct options {
    bool jetstream = true;     // -js, store under store_dir()
    bool monitoring = false;   // HTTP monitoring on a free port (monitoring_port())
    // Written to server.conf in the work dir and passed with -c when not empty. Command-line
    // settings made here (address, port, JetStream, store dir) take precedence over it.
    std::string config;
    // The server binary; empty: as said above ($CORRAL_NATS_SERVER, else corral's build).
    std::string binary;
    std::vector<std::string> extra_args;  // appended to the command line
    int64_t ready_timeout_ms = 15000;     // start()/restart(): until the server accepts clients
    int64_t stop_timeout_ms = 10000;      // stop(): SIGTERM, then SIGKILL after this
  };

  nats_server_process();
  explicit nats_server_process(options opts);
  // Kills the server (SIGKILL) if it runs and removes the work directory.
  ~nats_server_process();
  nats_server_process(const nats_server_process&) = delete;
  nats_server_process& operator=(const nats_server_process&) = delete;

  // Starts the server on a free loopback port and waits until it accepts clients. False (see
  // error()) if it is running already, exits, or is not ready within ready_timeout_ms.
  [[nodiscard]] bool start();
  // Starts it again on the same port with the same work directory (JetStream store kept). A
  // server still running is stopped first (stop()); to test a crash, kill9() before. Requires an
  // earlier successful start().
  [[nodiscard]] bool restart();
  // SIGTERM, and waits for the exit (SIGKILL after stop_timeout_ms). True if it exited on
  // SIGTERM. No-op (true) when not running.
  bool stop();
  // SIGKILL and reap: a crash. No-op when not running.
  void kill9();
  // Replaces server.conf with `config` (kept for later restarts) and has the running server
  // reload it (SIGHUP). Returns once the signal is sent: the server applies it asynchronously.
  // Requires a start() with a non-empty options::config.
  bool reload(const std::string& config);

  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] int port() const noexcept { return port_; }              // 0 before start()
  [[nodiscard]] int monitoring_port() const noexcept { return http_port_; }  // 0 if off
  [[nodiscard]] std::string url() const;  // "nats://127.0.0.1:<port>"
  [[nodiscard]] const std::string& work_dir() const noexcept { return work_dir_; }
  [[nodiscard]] const std::string& store_dir() const noexcept { return store_dir_; }
  // Everything the server printed so far (all runs).
  [[nodiscard]] std::string log() const;
  // Why the last start()/restart()/stop() failed.
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  bool prepare_work_dir();
  bool spawn(int port);
  bool wait_ready(int64_t deadline_ms, bool* port_in_use);
  bool wait_exit(int64_t timeout_ms, int* wstatus);
  bool fail(std::string why);

  options opts_;
  pid_t pid_ = -1;
  int port_ = 0;
  int http_port_ = 0;
  std::string binary_;
  std::string work_dir_;
  std::string store_dir_;
  std::string ports_dir_;
  std::string log_path_;
  std::string error_;
};

}  // namespace corral::test
