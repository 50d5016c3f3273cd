#pragma once
// The heartbeats of one node (header-only: its users link the bus and the schemas already).
// Used to wait until a node's warm pool holds a number of booted sandboxes: the node publishes a
// heartbeat each time its pool changes.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "bus/connection.hpp"
#include "schemas/codec.hpp"
#include "schemas/subjects.hpp"

namespace corral::test {

class heartbeat_watch {
 public:
  bool start(const std::string& url, const std::string& node, std::string* why = nullptr) {
    bus::options o;
    o.urls = {url};
    std::string error;
    conn_ = bus::connection::connect(o, why != nullptr ? why : &error);
    if (!conn_) return false;
    auto sub = conn_->subscribe(wire::subjects::heartbeat(node), "", [this](bus::message&& m) {
      const auto* h = wire::verify<wire::Heartbeat>(m.data.data(), m.data.size());
      if (h == nullptr) return;
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.emplace_back(h->time_ms(), h->warm());
      }
      cv_.notify_all();
    });
    if (!sub) {
      if (why != nullptr) *why = sub.error().message;
      return false;
    }
    sub_ = std::move(sub.value());
    return static_cast<bool>(conn_->flush(5000));
  }

  // Waits for a heartbeat sent at or after since_ms (wall clock) saying the pool holds exactly
  // `warm` booted sandboxes.
  bool wait_warm(uint32_t warm, int64_t since_ms,
                 std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      for (const auto& [at, n] : seen_)
        if (at >= since_ms && n == warm) return true;
      return false;
    });
  }

  bus::connection& conn() { return *conn_; }

 private:
  std::unique_ptr<bus::connection> conn_;
  std::unique_ptr<bus::subscription> sub_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<int64_t, uint32_t>> seen_;  // (sent at, warm), in arrival order
};

}  // namespace corral::test
