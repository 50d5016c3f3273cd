// epoll over FIFO fds and pidfds; SIGPIPE handling for writes to a vanished reader.
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "executor/runtime/link_reactor.hpp"
#include "schemas/frame.hpp"

namespace corral::gvisor_detail {
namespace {

enum fd_kind : uint64_t { from_init_fd = 0, to_init_fd = 1, death_fd = 2 };
constexpr uint64_t wake_token = 0;
// Reads per readiness event before other links get their turn (epoll is level-triggered).
constexpr int max_reads_per_event = 16;

uint64_t event_data(uint64_t token, fd_kind kind) { return (token << 2) | kind; }

void consume_sigpipe() {
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  const timespec zero{0, 0};
  (void)sigtimedwait(&pipe_set, nullptr, &zero);
}

}  // namespace

class fifo_link;

struct reactor_core {
  struct request {
    enum class kind { close, end, stop } type;
    uint64_t token = 0;
    std::string reason;
  };

  link_limits limits;
  unique_fd epoll;
  unique_fd wake;
  std::thread thread;
  std::atomic<std::thread::id> io_thread{};

  std::mutex mu;
  std::condition_variable retired;
  std::map<uint64_t, std::shared_ptr<fifo_link>> links;
  std::map<std::string, uint64_t> by_id;
  uint64_t next_token = 1;
  std::vector<uint64_t> want_write;
  std::vector<request> requests;

  [[nodiscard]] bool on_io_thread() const { return std::this_thread::get_id() == io_thread.load(); }

  void wake_up() {
    const uint64_t one = 1;
    (void)!write(wake.get(), &one, sizeof one);
  }

  void post(request r) {
    {
      std::lock_guard<std::mutex> lock(mu);
      requests.push_back(std::move(r));
    }
    wake_up();
  }

  void post_write(uint64_t token) {
    {
      std::lock_guard<std::mutex> lock(mu);
      want_write.push_back(token);
    }
    wake_up();
  }

  std::shared_ptr<fifo_link> find(uint64_t token) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = links.find(token);
    return it == links.end() ? nullptr : it->second;
  }

  // Blocks until the link is retired (or the deadline passes).
  void wait_retired(uint64_t token, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu);
    retired.wait_until(lock, deadline, [&] { return links.count(token) == 0; });
  }

  void run();
  bool process_requests();
  void on_readable(const std::shared_ptr<fifo_link>& link, std::vector<uint8_t>& buf);
  void drain(const std::shared_ptr<fifo_link>& link, std::vector<uint8_t>& buf);
  void deliver(const std::shared_ptr<fifo_link>& link);
  void flush(const std::shared_ptr<fifo_link>& link);
  void finish(const std::shared_ptr<fifo_link>& link, const std::string& reason);
  void retire(const std::shared_ptr<fifo_link>& link);
};

class fifo_link final : public init_link {
 public:
  fifo_link(std::weak_ptr<reactor_core> core, uint64_t token, std::string id)
      : core_(std::move(core)), token_(token), id_(std::move(id)) {}

  bool send(std::vector<uint8_t> payload) override {
    if (payload.size() > wire::max_frame_payload) return false;
    auto core = core_.lock();
    if (!core) return false;
    bool was_empty = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      const std::size_t bytes = wire::frame_header_bytes + payload.size();
      if (send_closed || queued + bytes > core->limits.max_send_queue_bytes) return false;
      std::vector<uint8_t> frame;
      frame.reserve(bytes);
      wire::append_frame(frame, payload.data(), payload.size());
      // Nothing queued: written here at once (the common case, a small frame into a pipe with
      // room), saving the hand-over to the I/O thread; what does not fit is queued behind it.
      was_empty = queued == 0;
      const std::size_t written = was_empty ? write_now(frame) : 0;
      if (written == frame.size()) return true;
      if (was_empty) front_offset = written;  // the new front: its first bytes are out
      queued += bytes - written;
      queue.push_back(std::move(frame));
    }
    if (was_empty) core->post_write(token_);
    return true;
  }

  void close() override {
    done.store(true);
    {
      std::lock_guard<std::mutex> lock(mu);
      send_closed = true;
      queue.clear();
      front_offset = 0;
      queued = 0;
    }
    auto core = core_.lock();
    if (!core) return;
    core->post({reactor_core::request::kind::close, token_, {}});
    if (!core->on_io_thread())
      core->wait_retired(token_, std::chrono::steady_clock::time_point::max());
  }

  // One non-blocking write of frame on the calling thread, with mu held and nothing queued.
  // Returns the bytes written: all, a part, or 0 (the pipe is full, or broken: the I/O thread's
  // flush then finds out again and the pidfd reports the death). SIGPIPE is blocked around it,
  // so that a vanished sandbox never kills the executor, whatever this thread's disposition.
  std::size_t write_now(const std::vector<uint8_t>& frame) {
    if (write_broken || !to_init) return 0;
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    const bool masked = pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set) == 0;
    ssize_t n;
    do {
      n = write(to_init.get(), frame.data(), frame.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EPIPE) consume_sigpipe();
    if (masked) pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

  [[nodiscard]] uint64_t token() const { return token_; }
  [[nodiscard]] const std::string& id() const { return id_; }

  // Shared between send() callers and the I/O thread.
  std::mutex mu;
  std::deque<std::vector<uint8_t>> queue;
  std::size_t front_offset = 0;
  std::size_t queued = 0;
  bool send_closed = false;
  std::string end_reason;
  std::atomic<bool> done{false};  // no callback may run any more

  // Set before the link is registered. to_init and write_broken change under mu only (send()
  // writes from any thread while nothing is queued); the others are the I/O thread's.
  unique_fd to_init;
  unique_fd from_init;
  unique_fd death;
  bool write_registered = false;
  bool write_broken = false;
  wire::frame_reader reader;
  std::shared_ptr<init_listener> listener;

 private:
  std::weak_ptr<reactor_core> core_;
  const uint64_t token_;
  const std::string id_;
};

void reactor_core::run() {
  io_thread.store(std::this_thread::get_id());
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);

  std::vector<uint8_t> buf(limits.read_chunk_bytes);
  epoll_event events[64];
  for (;;) {
    const int n = epoll_wait(epoll.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // unreachable in practice: the epoll fd is valid for the thread's life
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t data = events[i].data.u64;
      if (data == wake_token) {
        uint64_t count = 0;
        (void)!read(wake.get(), &count, sizeof count);
        if (process_requests()) return;
        continue;
      }
      auto link = find(data >> 2);
      if (!link) continue;  // retired earlier in this batch
      switch (static_cast<fd_kind>(data & 3)) {
        case from_init_fd: on_readable(link, buf); break;
        case to_init_fd: flush(link); break;
        case death_fd:
          drain(link, buf);
          finish(link, "sandbox exited");
          break;
      }
    }
  }
}

bool reactor_core::process_requests() {
  std::vector<request> reqs;
  std::vector<uint64_t> writes;
  {
    std::lock_guard<std::mutex> lock(mu);
    reqs.swap(requests);
    writes.swap(want_write);
  }
  for (uint64_t token : writes) {
    if (auto link = find(token); link && !link->done.load()) flush(link);
  }
  for (auto& r : reqs) {
    if (r.type == request::kind::stop) {
      std::vector<std::shared_ptr<fifo_link>> all;
      {
        std::lock_guard<std::mutex> lock(mu);
        for (auto& [token, link] : links) all.push_back(link);
      }
      for (auto& link : all) {
        link->done.store(true);
        retire(link);
      }
      return true;
    }
    auto link = find(r.token);
    if (!link) continue;
    if (r.type == request::kind::close) {
      link->done.store(true);
      retire(link);
    } else {
      std::vector<uint8_t> buf(limits.read_chunk_bytes);
      drain(link, buf);
      finish(link, r.reason);
    }
  }
  return false;
}

void reactor_core::deliver(const std::shared_ptr<fifo_link>& link) {
  while (!link->done.load()) {
    auto payload = link->reader.next();
    if (!payload) break;
    link->listener->on_frame(std::move(*payload));
  }
}

void reactor_core::on_readable(const std::shared_ptr<fifo_link>& link, std::vector<uint8_t>& buf) {
  for (int i = 0; i < max_reads_per_event; ++i) {
    if (link->done.load() || !link->from_init) return;
    const ssize_t r = read(link->from_init.get(), buf.data(), buf.size());
    if (r > 0) {
      link->reader.feed(buf.data(), static_cast<std::size_t>(r));
      deliver(link);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    // EOF: nobody holds a write end any more, i.e. the sandbox is gone.
    finish(link, r == 0 ? "sandbox exited (corral-init's output closed)"
                        : std::string("reading corral-init's output: ") + std::strerror(errno));
    return;
  }
}

void reactor_core::drain(const std::shared_ptr<fifo_link>& link, std::vector<uint8_t>& buf) {
  // Bounded: once the sandbox is gone no writer is left, and a pipe holds a finite amount.
  while (!link->done.load() && link->from_init) {
    const ssize_t r = read(link->from_init.get(), buf.data(), buf.size());
    if (r > 0) {
      link->reader.feed(buf.data(), static_cast<std::size_t>(r));
      deliver(link);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    return;
  }
}

void reactor_core::flush(const std::shared_ptr<fifo_link>& link) {
  std::lock_guard<std::mutex> lock(link->mu);
  while (!link->queue.empty() && !link->write_broken && link->to_init) {
    auto& frame = link->queue.front();
    const ssize_t n = write(link->to_init.get(), frame.data() + link->front_offset,
                            frame.size() - link->front_offset);
    if (n > 0) {
      link->front_offset += static_cast<std::size_t>(n);
      link->queued -= static_cast<std::size_t>(n);
      if (link->front_offset == frame.size()) {
        link->queue.pop_front();
        link->front_offset = 0;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!link->write_registered) {
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u64 = event_data(link->token(), to_init_fd);
        if (epoll_ctl(epoll.get(), EPOLL_CTL_ADD, link->to_init.get(), &ev) == 0)
          link->write_registered = true;
      }
      return;
    }
    // EPIPE (no reader: the sandbox is gone) or another error: the pidfd reports the death.
    if (n < 0 && errno == EPIPE) consume_sigpipe();
    link->write_broken = true;
  }
  if (link->write_broken) {
    link->queue.clear();
    link->front_offset = 0;
    link->queued = 0;
  }
  if (link->write_registered) {
    (void)epoll_ctl(epoll.get(), EPOLL_CTL_DEL, link->to_init.get(), nullptr);
    link->write_registered = false;
  }
}

void reactor_core::finish(const std::shared_ptr<fifo_link>& link, const std::string& reason) {
  const bool deliver_closed = !link->done.exchange(true);
  std::string why = reason;
  {
    std::lock_guard<std::mutex> lock(link->mu);
    link->send_closed = true;
    link->queue.clear();
    link->queued = 0;
    if (!link->end_reason.empty()) why = link->end_reason;
  }
  if (deliver_closed && link->listener) link->listener->on_closed(close_reason::died, why);
  retire(link);
}

void reactor_core::retire(const std::shared_ptr<fifo_link>& link) {
  {
    std::lock_guard<std::mutex> lock(link->mu);
    link->send_closed = true;
    if (link->write_registered)
      (void)epoll_ctl(epoll.get(), EPOLL_CTL_DEL, link->to_init.get(), nullptr);
    link->write_registered = false;
    link->to_init.reset();
  }
  if (link->from_init) (void)epoll_ctl(epoll.get(), EPOLL_CTL_DEL, link->from_init.get(), nullptr);
  if (link->death) (void)epoll_ctl(epoll.get(), EPOLL_CTL_DEL, link->death.get(), nullptr);
  link->from_init.reset();
  link->death.reset();
  link->listener.reset();  // breaks listener <-> link reference cycles
  {
    std::lock_guard<std::mutex> lock(mu);
    links.erase(link->token());
    auto it = by_id.find(link->id());
    if (it != by_id.end() && it->second == link->token()) by_id.erase(it);
  }
  retired.notify_all();
}

std::unique_ptr<link_reactor> link_reactor::create(const link_limits& limits, std::string& err) {
  auto core = std::make_shared<reactor_core>();
  core->limits = limits;
  if (core->limits.read_chunk_bytes == 0) core->limits.read_chunk_bytes = 64 * 1024;
  core->epoll.reset(epoll_create1(EPOLL_CLOEXEC));
  core->wake.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!core->epoll || !core->wake) {
    err = std::string("epoll/eventfd: ") + std::strerror(errno);
    return nullptr;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = wake_token;
  if (epoll_ctl(core->epoll.get(), EPOLL_CTL_ADD, core->wake.get(), &ev) != 0) {
    err = std::string("epoll_ctl: ") + std::strerror(errno);
    return nullptr;
  }
  core->thread = std::thread([c = core.get()] { c->run(); });
  return std::unique_ptr<link_reactor>(new link_reactor(std::move(core)));
}

link_reactor::link_reactor(std::shared_ptr<reactor_core> core) : core_(std::move(core)) {}

link_reactor::~link_reactor() {
  core_->post({reactor_core::request::kind::stop, 0, {}});
  if (core_->thread.joinable()) core_->thread.join();
}

std::shared_ptr<init_link> link_reactor::attach(const std::string& id, unique_fd to_init,
                                                unique_fd from_init, unique_fd death,
                                                std::shared_ptr<init_listener> listener,
                                                std::vector<uint8_t> preamble) {
  close(id);
  uint64_t token = 0;
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    token = core_->next_token++;
  }
  auto link = std::make_shared<fifo_link>(core_, token, id);
  link->to_init = std::move(to_init);
  link->from_init = std::move(from_init);
  link->death = std::move(death);
  link->listener = std::move(listener);
  if (!preamble.empty()) {
    link->queued = preamble.size();
    link->queue.push_back(std::move(preamble));
  }
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->links[token] = link;
    core_->by_id[id] = token;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = event_data(token, from_init_fd);
    const bool ok_read = epoll_ctl(core_->epoll.get(), EPOLL_CTL_ADD, link->from_init.get(), &ev) == 0;
    ev.data.u64 = event_data(token, death_fd);
    const bool ok_death = ok_read &&
                          epoll_ctl(core_->epoll.get(), EPOLL_CTL_ADD, link->death.get(), &ev) == 0;
    if (!ok_death) {
      if (ok_read) (void)epoll_ctl(core_->epoll.get(), EPOLL_CTL_DEL, link->from_init.get(), nullptr);
      core_->links.erase(token);
      core_->by_id.erase(id);
      link->done.store(true);
      return nullptr;
    }
  }
  if (link->queued > 0) core_->post_write(token);
  return link;
}

void link_reactor::set_end_reason(const std::string& id, const std::string& reason) {
  std::shared_ptr<fifo_link> link;
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    auto it = core_->by_id.find(id);
    if (it == core_->by_id.end()) return;
    link = core_->links[it->second];
  }
  if (!link) return;
  std::lock_guard<std::mutex> lock(link->mu);
  link->end_reason = reason;
}

void link_reactor::end(const std::string& id, const std::string& reason,
                       std::chrono::steady_clock::time_point deadline) {
  uint64_t token = 0;
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    auto it = core_->by_id.find(id);
    if (it == core_->by_id.end()) return;
    token = it->second;
  }
  core_->post({reactor_core::request::kind::end, token, reason});
  if (!core_->on_io_thread()) core_->wait_retired(token, deadline);
}

void link_reactor::close(const std::string& id) {
  std::shared_ptr<fifo_link> link;
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    auto it = core_->by_id.find(id);
    if (it == core_->by_id.end()) return;
    link = core_->links[it->second];
  }
  if (link) link->close();
}

bool link_reactor::attached(const std::string& id) const {
  std::lock_guard<std::mutex> lock(core_->mu);
  return core_->by_id.count(id) != 0;
}

}  // namespace corral::gvisor_detail
