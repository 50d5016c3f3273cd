#include "client/reply_router.hpp"

#include <charconv>

namespace corral::client {

reply_router::reply_router(bus::connection& conn) : conn_(conn), inbox_(conn.new_inbox()) {}

std::unique_ptr<reply_router> reply_router::create(bus::connection& conn, std::string* why) {
  std::unique_ptr<reply_router> r(new reply_router(conn));
  auto* raw = r.get();
  auto sub = conn.subscribe(r->inbox_ + ".>", "", [raw](bus::message&& m) { raw->deliver(std::move(m)); });
  if (!sub) {
    if (why) *why = "subscribe: " + sub.error().message;
    return nullptr;
  }
  r->sub_ = std::move(sub).value();
  return r;
}

reply_router::~reply_router() {
  if (sub_) sub_->unsubscribe();  // no handler runs after this returns
}

reply_router::ticket reply_router::open(handler h) {
  ticket t;
  std::lock_guard<std::mutex> lock(mu_);
  t.id = next_id_++;
  t.reply_subject = inbox_ + "." + std::to_string(t.id);
  handlers_.emplace(t.id, std::make_shared<handler>(std::move(h)));
  return t;
}

void reply_router::close(uint64_t id) {
  if (id == 0) return;
  std::shared_ptr<handler> gone;  // destroyed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  auto it = handlers_.find(id);
  if (it == handlers_.end()) return;
  gone = std::move(it->second);
  handlers_.erase(it);
}

bus::status reply_router::publish(const std::string& subject, const ticket& t,
                                  const std::vector<uint8_t>& payload) {
  return conn_.publish(subject, t.reply_subject, payload.data(), payload.size());
}

std::size_t reply_router::open_requests() {
  std::lock_guard<std::mutex> lock(mu_);
  return handlers_.size();
}

void reply_router::deliver(bus::message&& m) {
  const auto dot = m.subject.rfind('.');
  if (dot == std::string::npos) return;
  uint64_t id = 0;
  const char* first = m.subject.data() + dot + 1;
  const char* last = m.subject.data() + m.subject.size();
  if (std::from_chars(first, last, id).ptr != last) return;
  std::shared_ptr<handler> h;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = handlers_.find(id);
    if (it == handlers_.end()) return;
    h = it->second;
  }
  (*h)(id, std::move(m));
}

}  // namespace corral::client
