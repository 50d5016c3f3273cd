#include "tests/fakes/fake_ports.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>

#include "schemas/subjects.hpp"

namespace corral::testing {

// -- outbox ----------------------------------------------------------------------------------

// Recorded under the subjects the executor's outbox would publish on (executor/nats_bridge.hpp).
void fake_outbox::reply(const reply_handle& to, std::vector<uint8_t> message) {
  if (!to.empty()) publish(to.address(), std::move(message));
}

void fake_outbox::publish_output(const exec_address& exec, std::vector<uint8_t> frame) {
  publish(wire::subjects::output(exec.tenant, exec.sandbox_id, exec.exec_id), std::move(frame));
}

void fake_outbox::publish_heartbeat(const std::string& node_id, std::vector<uint8_t> heartbeat) {
  publish(wire::subjects::heartbeat(node_id), std::move(heartbeat));
}

void fake_outbox::publish(const std::string& subject, std::vector<uint8_t> payload) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    all_.push_back(published{subject, std::move(payload)});
  }
  cv_.notify_all();
}

std::optional<published> fake_outbox::wait_for(const std::string& subject,
                                               const std::function<bool(const published&)>& pred,
                                               std::chrono::milliseconds timeout,
                                               std::size_t skip) {
  std::unique_lock<std::mutex> lock(mu_);
  std::optional<published> hit;
  cv_.wait_for(lock, timeout, [&] {
    std::size_t seen = 0;
    for (const auto& p : all_) {
      if (p.subject != subject || seen++ < skip) continue;
      if (pred(p)) {
        hit = p;
        return true;
      }
    }
    return false;
  });
  return hit;
}

std::size_t fake_outbox::count(const std::string& subject) {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<std::size_t>(
      std::count_if(all_.begin(), all_.end(), [&](const published& p) { return p.subject == subject; }));
}

std::vector<published> fake_outbox::on(const std::string& subject) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<published> out;
  for (const auto& p : all_)
    if (p.subject == subject) out.push_back(p);
  return out;
}

// -- router ----------------------------------------------------------------------------------

void fake_router::attach_sandbox(const std::string&, const std::string& id, caf::actor a) {
  std::lock_guard<std::mutex> lock(mu_);
  routes_[id] = std::move(a);
}

void fake_router::detach_sandbox(const std::string&, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  routes_.erase(id);
}

void fake_router::accept_creates(bool on) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_ = on;
  }
  cv_.notify_all();
}

caf::actor fake_router::route(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = routes_.find(id);
  return it == routes_.end() ? caf::actor{} : it->second;
}

bool fake_router::accepting() {
  std::lock_guard<std::mutex> lock(mu_);
  return accepting_;
}

bool fake_router::wait_accepting(bool want, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return accepting_ == want; });
}

// -- runtime ---------------------------------------------------------------------------------

namespace {

std::vector<uint8_t> event_started(uint64_t id) {
  flatbuffers::FlatBufferBuilder fbb;
  auto e = wire::CreateStarted(fbb, id, 100 + static_cast<int>(id));
  fbb.Finish(wire::CreateInitEvent(fbb, wire::Event::Started, e.Union()), wire::InitEventIdentifier());
  return wire::release(fbb);
}
std::vector<uint8_t> event_output(uint64_t id, wire::Stream s, const std::string& data) {
  flatbuffers::FlatBufferBuilder fbb;
  auto d = fbb.CreateVector(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  auto e = wire::CreateOutput(fbb, id, s, d);
  fbb.Finish(wire::CreateInitEvent(fbb, wire::Event::Output, e.Union()), wire::InitEventIdentifier());
  return wire::release(fbb);
}
std::vector<uint8_t> event_exited(uint64_t id, int code, int sig) {
  flatbuffers::FlatBufferBuilder fbb;
  auto e = wire::CreateExited(fbb, id, code, sig);
  fbb.Finish(wire::CreateInitEvent(fbb, wire::Event::Exited, e.Union()), wire::InitEventIdentifier());
  return wire::release(fbb);
}
std::vector<uint8_t> event_spawn_failed(uint64_t id, int err, const std::string& msg) {
  flatbuffers::FlatBufferBuilder fbb;
  auto m = fbb.CreateString(msg);
  auto e = wire::CreateSpawnFailed(fbb, id, err, m);
  fbb.Finish(wire::CreateInitEvent(fbb, wire::Event::SpawnFailed, e.Union()), wire::InitEventIdentifier());
  return wire::release(fbb);
}
std::vector<uint8_t> event_hello_ack(uint64_t session) {
  flatbuffers::FlatBufferBuilder fbb;
  auto e = wire::CreateHelloAck(fbb, session, 1);
  fbb.Finish(wire::CreateInitEvent(fbb, wire::Event::HelloAck, e.Union()), wire::InitEventIdentifier());
  return wire::release(fbb);
}

}  // namespace

// One fake sandbox: its "init" answers commands synchronously from send().
struct fake_runtime::sandbox final : init_link {
  std::mutex mu;
  std::shared_ptr<init_listener> listener;
  std::map<uint64_t, std::string> running;  // handle -> argv[0]
  std::map<uint64_t, std::string> held;     // Spawn.hold: handle -> argv[0], no events
  std::vector<std::string> log;             // "hold H P", "adopt H<-K", "discard H"
  std::size_t spawns = 0;
  bool closed = false;

  bool send(std::vector<uint8_t> payload) override {
    std::lock_guard<std::mutex> lock(mu);
    if (closed) return false;
    const auto* cmd = wire::verify<wire::InitCommand>(payload.data(), payload.size());
    if (cmd == nullptr) return true;  // init skips what does not verify
    auto emit = [&](std::vector<uint8_t> ev) { listener->on_frame(std::move(ev)); };
    switch (cmd->command_type()) {
      case wire::Command::Hello:
        emit(event_hello_ack(cmd->command_as_Hello()->session()));
        break;
      case wire::Command::Spawn: {
        const auto* s = cmd->command_as_Spawn();
        ++spawns;
        std::vector<std::string> argv;
        for (const auto* a : *s->argv()) argv.emplace_back(wire::str(a));
        const auto id = s->id();
        const auto& prog = argv.at(0);
        if (s->hold()) {
          held[id] = prog;
          log.push_back("hold " + std::to_string(id) + " " + prog);
          break;
        }
        if (s->adopt() != 0) {
          auto h = held.find(s->adopt());
          if (h != held.end() && h->second == prog) {
            log.push_back("adopt " + std::to_string(id) + "<-" + std::to_string(h->first));
            held.erase(h);
            emit(event_started(id));
            running[id] = prog;
            break;
          }
          if (h != held.end()) {
            log.push_back("discard " + std::to_string(h->first));
            held.erase(h);
          }
        }
        if (prog == "echo") {
          std::string text;
          for (std::size_t i = 1; i < argv.size(); ++i) text += (i > 1 ? " " : "") + argv[i];
          emit(event_started(id));
          emit(event_output(id, wire::Stream::stdout, text + "\n"));
          emit(event_exited(id, 0, 0));
        } else if (prog == "fail") {
          emit(event_started(id));
          emit(event_output(id, wire::Stream::stderr, "failing\n"));
          emit(event_exited(id, std::stoi(argv.at(1)), 0));
        } else if (prog == "flood") {
          emit(event_started(id));
          const int n = std::stoi(argv.at(1));
          for (int i = 0; i < n; ++i)
            emit(event_output(id, wire::Stream::stdout, std::string(1000, static_cast<char>('a' + i % 26))));
          emit(event_exited(id, 0, 0));
        } else if (prog == "chatty") {
          emit(event_started(id));
          emit(event_output(id, wire::Stream::stdout, "hello\n"));
          running[id] = prog;
        } else if (prog == "hang" || prog == "cat") {
          emit(event_started(id));
          running[id] = prog;
        } else {
          emit(event_spawn_failed(id, ENOENT, "executable not found: " + prog));
        }
        break;
      }
      case wire::Command::StdinData: {
        const auto* s = cmd->command_as_StdinData();
        auto it = running.find(s->id());
        if (it == running.end() || it->second != "cat") break;
        if (s->data() && s->data()->size())
          emit(event_output(s->id(), wire::Stream::stdout,
                            std::string(s->data()->begin(), s->data()->end())));
        if (s->eof()) {
          emit(event_exited(s->id(), 0, 0));
          running.erase(it);
        }
        break;
      }
      case wire::Command::Signal: {
        const auto* s = cmd->command_as_Signal();
        if (held.erase(s->id()) > 0) {
          log.push_back("discard " + std::to_string(s->id()));
          break;
        }
        auto it = running.find(s->id());
        if (it == running.end()) break;
        emit(event_exited(s->id(), 0, s->signal()));
        running.erase(it);
        break;
      }
      default:
        break;
    }
    return true;
  }

  void close() override {
    std::lock_guard<std::mutex> lock(mu);
    closed = true;
  }
};

runtime::started fake_runtime::start(const sandbox_spec& spec, std::shared_ptr<init_listener> l) {
  started result;
  {
    std::unique_lock<std::mutex> lock(mu_);
    starts_.push_back(spec);
    cv_.notify_all();
    cv_.wait(lock, [&] { return !starts_held_; });
    if (!fail_next_.empty()) {
      result.error = fail_next_;
      fail_next_.clear();
    } else {
      auto sb = std::make_shared<sandbox>();
      sb->listener = std::move(l);
      live_[spec.id] = sb;
      host_.insert(spec.id);
      result.link = sb;
    }
  }
  cv_.notify_all();
  return result;
}

std::string fake_runtime::update_limits(const std::string& id, uint32_t cpu_millis,
                                        uint32_t memory_mib) {
  std::lock_guard<std::mutex> lock(mu_);
  limits_calls_.push_back(limits_call{id, cpu_millis, memory_mib});
  if (!fail_next_limits_.empty()) {
    std::string why;
    why.swap(fail_next_limits_);
    return why;
  }
  return live_.count(id) > 0 ? std::string{} : "no such sandbox";
}

std::vector<sandbox_spec> fake_runtime::starts() {
  std::lock_guard<std::mutex> lock(mu_);
  return starts_;
}

std::vector<fake_runtime::limits_call> fake_runtime::limits_calls() {
  std::lock_guard<std::mutex> lock(mu_);
  return limits_calls_;
}

bool fake_runtime::wait_starts(std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return starts_.size() >= n; });
}

std::set<std::string> fake_runtime::live() {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> out;
  for (const auto& [id, sb] : live_) out.insert(id);
  return out;
}

void fake_runtime::fail_next_update_limits(std::string why) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_limits_ = std::move(why);
}

runtime::started fake_runtime::adopt(const std::string& id, std::shared_ptr<init_listener> l) {
  std::lock_guard<std::mutex> lock(mu_);
  if (host_.count(id) == 0) return started{nullptr, "no such container"};
  auto sb = std::make_shared<sandbox>();
  sb->listener = std::move(l);
  live_[id] = sb;
  return started{sb, {}};
}

void fake_runtime::destroy(const std::string& id) {
  std::shared_ptr<sandbox> sb;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(id);
    if (it != live_.end()) sb = it->second;
    live_.erase(id);
    host_.erase(id);
    destroyed_.insert(id);
  }
  if (sb) sb->close();
  cv_.notify_all();
}

std::vector<std::string> fake_runtime::list_host_sandboxes() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !listing_held_; });
  return {host_.begin(), host_.end()};
}

void fake_runtime::hold_listing() {
  std::lock_guard<std::mutex> lock(mu_);
  listing_held_ = true;
}

void fake_runtime::release_listing() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    listing_held_ = false;
  }
  cv_.notify_all();
}

void fake_runtime::hold_starts() {
  std::lock_guard<std::mutex> lock(mu_);
  starts_held_ = true;
}

void fake_runtime::release_starts() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    starts_held_ = false;
  }
  cv_.notify_all();
}

void fake_runtime::fail_next_start(std::string why) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_ = std::move(why);
}

void fake_runtime::kill(const std::string& id) {
  std::shared_ptr<sandbox> sb;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(id);
    if (it == live_.end()) return;
    sb = it->second;
    host_.erase(id);
  }
  std::shared_ptr<init_listener> l;
  {
    std::lock_guard<std::mutex> lock(sb->mu);
    sb->closed = true;
    l = sb->listener;
  }
  l->on_closed(close_reason::died, "sandbox process exited");
}

void fake_runtime::add_host_sandbox(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  host_.insert(id);
}

std::size_t fake_runtime::spawn_count(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(id);
  if (it == live_.end()) return 0;
  std::lock_guard<std::mutex> l2(it->second->mu);
  return it->second->spawns;
}

std::vector<std::string> fake_runtime::init_log(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(id);
  if (it == live_.end()) return {};
  std::lock_guard<std::mutex> l2(it->second->mu);
  return it->second->log;
}

std::set<std::string> fake_runtime::destroyed() {
  std::lock_guard<std::mutex> lock(mu_);
  return destroyed_;
}

bool fake_runtime::wait_destroyed(const std::string& id, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return destroyed_.count(id) > 0; });
}

}  // namespace corral::testing
