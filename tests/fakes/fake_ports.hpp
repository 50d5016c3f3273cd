#pragma once
// Fakes of the actors' ports for the actor tests: an outbox that records publishes, a router
// that records routes, a controllable clock, and a runtime whose "init" answers the protocol
// in-process with scripted behaviour (see fake_runtime).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/ports.hpp"
#include "actors/router.hpp"
#include "schemas/codec.hpp"

namespace corral::testing {

struct published {
  std::string subject;
  std::vector<uint8_t> payload;
};

// Records everything sent out, each under the subject the executor would publish it on; tests
// wait for a predicate with a deadline.
class fake_outbox final : public outbox {
 public:
  void reply(const reply_handle& to, std::vector<uint8_t> message) override;
  void publish_output(const exec_address& exec, std::vector<uint8_t> frame) override;
  void publish_heartbeat(const std::string& node_id, std::vector<uint8_t> heartbeat) override;
  // Records a message on `subject` (what the bridge itself answers, e.g. "no route").
  void publish(const std::string& subject, std::vector<uint8_t> payload);
  // Waits until some message on `subject`, after its first `skip` ones, satisfies pred; returns
  // a copy of it.
  std::optional<published> wait_for(const std::string& subject,
                                    const std::function<bool(const published&)>& pred,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                    std::size_t skip = 0);
  std::vector<published> on(const std::string& subject);
  std::size_t count(const std::string& subject);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<published> all_;
};

class fake_router final : public request_router {
 public:
  void attach_sandbox(const std::string& tenant, const std::string& id, caf::actor a) override;
  void detach_sandbox(const std::string& tenant, const std::string& id) override;
  void accept_creates(bool on) override;
  caf::actor route(const std::string& id);
  bool accepting();
  bool wait_accepting(bool want, std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, caf::actor> routes_;
  bool accepting_ = false;
};

class fake_clock final : public clock {
 public:
  int64_t now_ms() const override { return now_.load(); }
  void advance(int64_t ms) { now_ += ms; }

 private:
  std::atomic<int64_t> now_{1'700'000'000'000};
};

// A runtime whose sandboxes are in-process fakes of corral-init. Spawned argv[0]:
//   "echo" ARGS...  -> Started, one Output on stdout "ARGS joined by space\n", Exited 0
//   "fail" N        -> Started, Output on stderr "failing\n", Exited N
//   "flood" N       -> Started, N Output frames of 1000 bytes each on stdout, Exited 0
//   "hang"          -> Started; ends only on Signal (Exited with that signal)
//   "chatty"        -> Started, Output on stdout "hello\n"; then like "hang"
//   "cat"           -> Started; echoes stdin data on stdout; Exited 0 at stdin EOF
//   anything else   -> SpawnFailed ENOENT
// Spawn.hold keeps the process silent until a Spawn with the same argv[0] adopts it (another
// Spawn naming it, or a Signal, discards it); init_log() records these.
class fake_runtime final : public runtime {
 public:
  started start(const sandbox_spec& spec, std::shared_ptr<init_listener> listener) override;
  started adopt(const std::string& id, std::shared_ptr<init_listener> listener) override;
  void destroy(const std::string& id) override;
  std::vector<std::string> list_host_sandboxes() override;
  sandbox_usage usage(const std::string&) override { return {}; }
  std::string update_limits(const std::string& id, uint32_t cpu_millis,
                            uint32_t memory_mib) override;

  // What start() and update_limits() were asked, in order.
  struct limits_call {
    std::string id;
    uint32_t cpu_millis = 0, memory_mib = 0;
  };
  std::vector<sandbox_spec> starts();
  std::vector<limits_call> limits_calls();
  // Waits until start() has been called at least n times.
  bool wait_starts(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The ids of the sandboxes started and not destroyed.
  std::set<std::string> live();

  // Test controls.
  // The next update_limits() fails with this error.
  void fail_next_update_limits(std::string why);
  void fail_next_start(std::string why);
  // Simulates the sandbox dying: its link closes.
  void kill(const std::string& id);
  // Sandboxes "still running on the host" that adopt() will accept.
  void add_host_sandbox(const std::string& id);
  // While held, list_host_sandboxes() blocks (until release_listing()) before it looks.
  void hold_listing();
  void release_listing();
  // While held, start() blocks (until release_starts()) before it starts anything: sandboxes
  // stay "booting".
  void hold_starts();
  void release_starts();
  std::size_t spawn_count(const std::string& id);
  // "hold H PROG", "adopt H<-HELD", "discard H", in order, for one live sandbox.
  std::vector<std::string> init_log(const std::string& id);
  std::set<std::string> destroyed();
  bool wait_destroyed(const std::string& id, std::chrono::milliseconds timeout = std::chrono::seconds(10));

  struct sandbox;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string fail_next_;
  std::string fail_next_limits_;
  std::vector<sandbox_spec> starts_;
  std::vector<limits_call> limits_calls_;
  std::map<std::string, std::shared_ptr<sandbox>> live_;
  std::set<std::string> host_;
  std::set<std::string> destroyed_;
  bool listing_held_ = false;
  bool starts_held_ = false;
};

}  // namespace corral::testing
