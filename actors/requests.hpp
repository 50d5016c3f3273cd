#pragma once
// The verbs the actors accept from clients, as typed messages. The executor's bridge decodes
// each request that arrives (executor/request_decode.hpp): it reads what is asked from where it
// arrived, verifies the payload as the verb's wire table, and refuses what does not decode, so
// an actor gets only a well-formed verb and an opaque handle to answer it by (outbox::reply).
// The policy checks (limits, quotas, state) stay with the actor that owns them.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "schemas/codec.hpp"

namespace corral {

// Where the answer to a request goes. Opaque to the actors: only the outbox reads it. Empty
// when nobody waits for an answer.
class reply_handle {
 public:
  reply_handle() = default;
  explicit reply_handle(std::string address) : address_(std::move(address)) {}
  [[nodiscard]] bool empty() const { return address_.empty(); }
  // For the outbox that made it.
  [[nodiscard]] const std::string& address() const { return address_; }

 private:
  std::string address_;
};

// The bytes of a wire table that the decoder has verified as a T (kept whole, never copied
// into fields: the actor reads it in place).
template <class T>
class verified {
 public:
  verified() = default;
  // `data` must have passed wire::verify<T>.
  static verified adopt(std::vector<uint8_t> data) {
    verified v;
    v.data_ = std::move(data);
    return v;
  }
  const T& operator*() const { return *flatbuffers::GetRoot<T>(data_.data()); }
  const T* operator->() const { return flatbuffers::GetRoot<T>(data_.data()); }

 private:
  std::vector<uint8_t> data_;
};

// The verbs, one type each (used as verb::exec, verb::stdin_write, ...).
namespace verb {

// -- the node: creates and lists, for any tenant --------------------------------------------

struct create {
  std::string tenant;  // a valid token
  verified<wire::CreateSandbox> msg;
  reply_handle reply;
};

struct list {
  std::string tenant;
  std::optional<verified<wire::ListSandboxes>> filter;  // none: every live sandbox
  reply_handle reply;
};

// -- the usage meter -------------------------------------------------------------------------

struct usage {
  std::string tenant;      // a valid token
  std::string sandbox_id;  // empty: all of the tenant's sandboxes
  reply_handle reply;
};

// -- one sandbox -----------------------------------------------------------------------------

struct info {
  reply_handle reply;
};

struct exec {
  verified<wire::ExecRequest> msg;
  reply_handle reply;
};

// stdin, signal and resize name a running exec: the sandbox hands them to its process actor.
struct stdin_write {
  std::string exec_id;
  verified<wire::StdinWrite> msg;
  reply_handle reply;
};

struct signal {
  std::string exec_id;
  int32_t number = 0;  // 1..64 (check_signal)
  reply_handle reply;
};

struct resize {
  std::string exec_id;
  uint16_t rows = 0, cols = 0;
  reply_handle reply;
};

struct terminate {
  reply_handle reply;
};

struct wait {
  int64_t timeout_ms = 0;    // <= 0: answer at once
  bool until_ready = false;  // answer once the readiness probe passed, not only at the end
  reply_handle reply;
};

struct replay {
  std::string exec_id;
  uint64_t from_seq = 0;
  reply_handle reply;
};

struct tags {
  std::optional<verified<wire::SetTags>> set;  // none: only answer the sandbox's info
  reply_handle reply;
};

struct fs {
  wire::FsOp op = wire::FsOp::none;  // never none
  verified<wire::FsRequest> msg;
  reply_handle reply;
};

}  // namespace verb

// Which output stream an exec's frames go to.
struct exec_address {
  std::string tenant;
  std::string sandbox_id;
  std::string exec_id;
};

}  // namespace corral
