#pragma once
// What each tenant holds in the gateway at once, against its limits (docs/security.md, "A tenant
// vs. the gateway"): output streams, WebSockets and long-polls (kind::stream, also under a limit
// for all tenants together), and other requests from their headers to their answer
// (kind::inflight). A slot is given back once, by release() or by its last owner: whoever
// notices first that the request is over (its answer, its stream's end, its client leaving).
// Thread-safe.
#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace corral::gateway {

class tenant_slots {
 public:
  enum class kind { stream, inflight };

  class slot {
   public:
    explicit slot(std::function<void()> release) : release_(std::move(release)) {}
    ~slot() { release(); }
    slot(const slot&) = delete;
    slot& operator=(const slot&) = delete;
    void release() {
      if (!released_.exchange(true) && release_) release_();
    }

   private:
    std::function<void()> release_;
    std::atomic<bool> released_{false};
  };

  // `max_streams_total`: streams of all tenants together.
  explicit tenant_slots(std::size_t max_streams_total) : max_streams_total_(max_streams_total) {}

  // A slot of `k` for `tenant` when it holds fewer than `limit` (and, for streams, all tenants
  // fewer than max_streams_total); null otherwise. *all_full says which limit it was.
  [[nodiscard]] std::shared_ptr<slot> take(const std::string& tenant, kind k, std::size_t limit,
                                           bool* all_full = nullptr);
  [[nodiscard]] std::size_t held(const std::string& tenant, kind k);
  [[nodiscard]] std::size_t total(kind k);

 private:
  struct counts {
    std::size_t streams = 0, inflight = 0;
  };
  // Shared with the slots, which may outlive this object at shutdown.
  struct state {
    std::mutex mu;
    std::map<std::string, counts> by_tenant;
    std::size_t streams = 0, inflight = 0;
  };
  std::size_t max_streams_total_;
  std::shared_ptr<state> state_ = std::make_shared<state>();
};

}  // namespace corral::gateway
