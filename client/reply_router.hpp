#pragma once
// Request/reply without a waiting thread: one wildcard inbox subscription per NATS connection
// ("<inbox>.>"); each request gets its own reply subject "<inbox>.<n>", and every reply to it goes
// to that request's handler until close(n). Replies to a closed (answered, timed out, abandoned)
// request are dropped here.
//
// No responders: when nobody subscribes to a request's subject, the server answers at once with
// an empty message on the reply subject (the 503 "no responders" status of NATS 2.2+, whose
// header bus::message does not carry). Executors never answer with an empty payload, so handlers
// take an empty reply as "no responders".
//
// Thread-safe. Handlers run on a NATS delivery thread, never two at once for this router, and
// must only hand the message off (post it to a strand) and return; a handler may still be
// running while close() of its request returns, so what it captures must stay valid (capture
// weak or shared pointers).
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "bus/connection.hpp"

namespace corral::client {

class reply_router {
 public:
  // Called with the request's id and one reply.
  using handler = std::function<void(uint64_t id, bus::message&&)>;
  // Subscribes to a fresh inbox of `conn` (which must outlive the router); null with *why.
  [[nodiscard]] static std::unique_ptr<reply_router> create(bus::connection& conn, std::string* why);
  ~reply_router();
  reply_router(const reply_router&) = delete;
  reply_router& operator=(const reply_router&) = delete;

  struct ticket {
    uint64_t id = 0;  // 0: none
    std::string reply_subject;
  };
  [[nodiscard]] ticket open(handler h);
  void close(uint64_t id);
  // Publishes `payload` on `subject` with t's reply subject.
  [[nodiscard]] bus::status publish(const std::string& subject, const ticket& t,
                                    const std::vector<uint8_t>& payload);
  [[nodiscard]] std::size_t open_requests();

 private:
  explicit reply_router(bus::connection& conn);
  void deliver(bus::message&& m);

  bus::connection& conn_;
  std::string inbox_;
  std::unique_ptr<bus::subscription> sub_;
  std::mutex mu_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::shared_ptr<handler>> handlers_;
};

}  // namespace corral::client
