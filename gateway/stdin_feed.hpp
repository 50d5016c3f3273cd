#pragma once
// An exec's stdin from a request body, on the call's strand (POST …/stdin and /v1/run).
#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "gateway/call.hpp"

namespace corral::gateway {

// Writes `data` to an exec's stdin, one StdinWrite of at most `chunk` bytes at a time, each
// waiting for its acknowledgement (the executor's flow control), on the call's strand; then
// done(error or nothing). Holds no thread while the process does not read.
class stdin_feed : public std::enable_shared_from_this<stdin_feed> {
 public:
  using done_fn = std::function<void(std::optional<status>)>;
  template <class Call>
  static void start(std::shared_ptr<Call> c, std::string sb, std::string eid,
                    std::shared_ptr<const std::string> data, bool eof, std::size_t chunk, done_fn done) {
    auto f = std::shared_ptr<stdin_feed>(new stdin_feed());
    f->next_ = [f_weak = std::weak_ptr<stdin_feed>(f), c, sb, eid, data, eof, chunk,
                done = std::move(done)](std::size_t at) mutable {
      auto self = f_weak.lock();
      if (!self) return;
      const std::size_t n = std::min(chunk, data->size() - at);
      const bool last = at + n >= data->size();
      c->ask(wire::subjects::sandbox_op(c->tenant, sb, "stdin"),
             client::stdin_write_bytes(eid, reinterpret_cast<const uint8_t*>(data->data()) + at, n,
                                       eof && last),
             c->cfg->request_timeout_ms, client::request_kind::exec, "stdin",
             [self, at, n, last, done](bus::message&&) {
               if (last) {
                 auto d = done;
                 self->next_ = nullptr;  // ends the feed's self-reference
                 return d(std::nullopt);
               }
               self->next_(at + n);
             },
             [self, done](const status& e) {
               auto d = done;
               self->next_ = nullptr;
               d(e);
             });
    };
    f->next_(0);
  }

 private:
  std::function<void(std::size_t)> next_;
};

}  // namespace corral::gateway
