#pragma once
// The executor's side of every sandbox's corral-init connection: one epoll thread per runtime
// that owns the FIFO ends and the sandbox pidfds. Implemented in link_reactor_unsafe.cpp.
//
// Per link:
// - send() (any thread) frames the payload and, when nothing is queued, writes it at once on
//   the calling thread (non-blocking); whatever is left goes into the link's queue and the I/O
//   thread writes it when the FIFO has room. Frames go out whole and in order. The queue is
//   bounded by max_send_queue_bytes.
// - Bytes from init are parsed with wire::frame_reader and each payload is handed to
//   listener->on_frame on the I/O thread.
// - When the sandbox process exits (its pidfd becomes readable) or init's output reaches EOF,
//   what init wrote before is still delivered, then on_closed(reason) once, and the link's fds
//   are closed.
// - close() stops every callback (none after it returns, unless called from a callback of
//   the I/O thread itself, where none follows the current one) and closes the fds. It does not
//   call on_closed: the caller knows.
// SIGPIPE: the I/O thread blocks it, send() blocks it around its write, and both consume it
// after EPIPE, so a sandbox that vanished never kills the executor.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/ports.hpp"
#include "executor/unique_fd.hpp"

namespace corral::gvisor_detail {

struct reactor_core;

struct link_limits {
  std::size_t max_send_queue_bytes = 8u * 1024 * 1024;
  std::size_t read_chunk_bytes = 64 * 1024;
};

class link_reactor {
 public:
  // Starts the I/O thread; null and err set on failure.
  static std::unique_ptr<link_reactor> create(const link_limits& limits, std::string& err);
  // Stops the thread; every link is closed without further callbacks.
  ~link_reactor();
  link_reactor(const link_reactor&) = delete;
  link_reactor& operator=(const link_reactor&) = delete;

  // Starts serving a sandbox's link. to_init: O_WRONLY|O_NONBLOCK end of init's stdin;
  // from_init: O_RDONLY|O_NONBLOCK end of init's stdout; death: pidfd of the sandbox process.
  // preamble bytes are written before any send() (the adopt resync filler). A link already
  // attached under this id is closed first (no more callbacks to its listener).
  [[nodiscard]] std::shared_ptr<init_link> attach(const std::string& id, unique_fd to_init,
                                                  unique_fd from_init, unique_fd death,
                                                  std::shared_ptr<init_listener> listener,
                                                  std::vector<uint8_t> preamble);

  // The reason on_closed will give when the sandbox of id dies (destroy sets it before
  // killing). No-op when no link is attached.
  void set_end_reason(const std::string& id, const std::string& reason);

  // Ends the link of id now (after delivering what init already wrote): on_closed(reason).
  // Waits, up to the deadline, for that to happen unless called on the I/O thread.
  void end(const std::string& id, const std::string& reason,
           std::chrono::steady_clock::time_point deadline);

  // Closes the link of id without callbacks (as init_link::close()).
  void close(const std::string& id);

  [[nodiscard]] bool attached(const std::string& id) const;

 private:
  explicit link_reactor(std::shared_ptr<reactor_core> core);
  std::shared_ptr<reactor_core> core_;
};

}  // namespace corral::gvisor_detail
