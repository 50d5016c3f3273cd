#include "executor/request_decode.hpp"

#include <type_traits>

#include "actors/validate.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral::bridge {

std::vector<uint8_t> refusal::reply() const { return wire::make_error_reply(code, message, field); }

namespace {

using bytes = std::vector<uint8_t>;

template <class T>
decoded<T> refuse(wire::ErrorCode code, std::string message, std::string field = {}) {
  decoded<T> d;
  d.refused.code = code;
  d.refused.message = std::move(message);
  d.refused.field = std::move(field);
  return d;
}

template <class T, class Verb>
decoded<T> accept(Verb verb) {
  decoded<T> d;
  d.verb.emplace(std::move(verb));
  return d;
}

// `data` verified as a Table, kept whole; null when it is not one.
template <class Table>
std::optional<verified<Table>> verify_as(bytes& data) {
  if (wire::verify<Table>(data.data(), data.size()) == nullptr) return std::nullopt;
  return verified<Table>::adopt(std::move(data));
}

wire::FsOp fs_op_of(std::string_view name) {
  if (name == "read") return wire::FsOp::read;
  if (name == "write") return wire::FsOp::write;
  if (name == "list") return wire::FsOp::list;
  if (name == "stat") return wire::FsOp::stat;
  if (name == "mkdir") return wire::FsOp::mkdir;
  if (name == "remove") return wire::FsOp::remove;
  return wire::FsOp::none;
}

// Whether the subject ends in ".fs.{op}".
bool is_fs(std::string_view subject, std::string_view op) {
  return subject.size() > op.size() + 4 &&
         subject.compare(subject.size() - op.size() - 4, 4, ".fs.") == 0;
}

decoded<sandbox_verb> decode_fs(std::string_view op, bytes data) {
  const wire::FsOp fs_op = fs_op_of(op);
  if (fs_op == wire::FsOp::none)
    return refuse<sandbox_verb>(wire::ErrorCode::invalid_argument,
                                "unknown file operation fs." + std::string(op) +
                                    " (read, write, list, stat, mkdir, remove)",
                                "op");
  auto msg = verify_as<wire::FsRequest>(data);
  if (!msg) return refuse<sandbox_verb>(wire::ErrorCode::malformed, "not an FsRequest");
  return accept<sandbox_verb>(verb::fs{fs_op, std::move(*msg), {}});
}

decoded<sandbox_verb> decode_sandbox_request_impl(std::string_view subject, bytes data) {
  const auto op = wire::subjects::last_token(subject);
  if (is_fs(subject, op)) return decode_fs(op, std::move(data));
  if (op == "info") return accept<sandbox_verb>(verb::info{});
  if (op == "terminate") return accept<sandbox_verb>(verb::terminate{});
  if (op == "exec") {
    auto msg = verify_as<wire::ExecRequest>(data);
    if (!msg) return refuse<sandbox_verb>(wire::ErrorCode::malformed, "not an ExecRequest");
    return accept<sandbox_verb>(verb::exec{std::move(*msg), {}});
  }
  if (op == "stdin") {
    auto msg = verify_as<wire::StdinWrite>(data);
    if (!msg) return refuse<sandbox_verb>(wire::ErrorCode::malformed, "not a StdinWrite");
    std::string exec_id(wire::str((*msg)->exec_id()));
    return accept<sandbox_verb>(verb::stdin_write{std::move(exec_id), std::move(*msg), {}});
  }
  if (op == "signal") {
    const auto* msg = wire::verify<wire::SignalRequest>(data.data(), data.size());
    if (msg == nullptr) return refuse<sandbox_verb>(wire::ErrorCode::malformed, "not a SignalRequest");
    if (auto e = check_signal(*msg)) return refuse<sandbox_verb>(e.code, e.why, e.field);
    return accept<sandbox_verb>(
        verb::signal{std::string(wire::str(msg->exec_id())), msg->signal(), {}});
  }
  if (op == "resize") {
    const auto* msg = wire::verify<wire::ResizeRequest>(data.data(), data.size());
    if (msg == nullptr) return refuse<sandbox_verb>(wire::ErrorCode::malformed, "not a ResizeRequest");
    return accept<sandbox_verb>(verb::resize{std::string(wire::str(msg->exec_id())), msg->rows(),
                                               msg->cols(), {}});
  }
  if (op == "wait") {
    verb::wait w;
    if (!data.empty()) {
      const auto* q = wire::verify<wire::SandboxQuery>(data.data(), data.size());
      if (q == nullptr) return refuse<sandbox_verb>(wire::ErrorCode::malformed, "not a SandboxQuery");
      w.timeout_ms = q->wait_timeout_ms();
      w.until_ready = q->until_ready();
    }
    return accept<sandbox_verb>(std::move(w));
  }
  if (op == "replay") {
    const auto* msg = wire::verify<wire::ReplayRequest>(data.data(), data.size());
    if (msg == nullptr) return refuse<sandbox_verb>(wire::ErrorCode::malformed, "not a ReplayRequest");
    return accept<sandbox_verb>(verb::replay{std::string(wire::str(msg->exec_id())),
                                               msg->from_seq(), {}});
  }
  if (op == "tags") {
    verb::tags t;
    if (!data.empty()) {
      t.set = verify_as<wire::SetTags>(data);
      if (!t.set) return refuse<sandbox_verb>(wire::ErrorCode::malformed, "not a SetTags");
    }
    return accept<sandbox_verb>(std::move(t));
  }
  return refuse<sandbox_verb>(wire::ErrorCode::invalid_argument,
                              "unknown sandbox operation: " + std::string(op));
}

decoded<verb::create> decode_create_impl(std::string_view subject, bytes data) {
  std::string tenant(wire::subjects::tenant_of(subject));
  if (!wire::valid_token(tenant))
    return refuse<verb::create>(wire::ErrorCode::invalid_argument, "invalid tenant");
  auto msg = verify_as<wire::CreateSandbox>(data);
  if (!msg) return refuse<verb::create>(wire::ErrorCode::malformed, "not a CreateSandbox");
  return accept<verb::create>(verb::create{std::move(tenant), std::move(*msg), {}});
}

decoded<verb::list> decode_list_impl(std::string_view subject, bytes data) {
  verb::list l;
  l.tenant = std::string(wire::subjects::tenant_of(subject));
  if (!data.empty()) {
    l.filter = verify_as<wire::ListSandboxes>(data);
    if (!l.filter) return refuse<verb::list>(wire::ErrorCode::malformed, "not a ListSandboxes");
  }
  return accept<verb::list>(std::move(l));
}

decoded<verb::usage> decode_usage_impl(std::string_view subject, bytes data) {
  std::string tenant(wire::subjects::tenant_of(subject));
  if (!wire::valid_token(tenant))
    return refuse<verb::usage>(wire::ErrorCode::invalid_argument, "invalid tenant");
  verb::usage u{std::move(tenant), {}, {}};
  if (!data.empty()) {
    const auto* msg = wire::verify<wire::UsageRequest>(data.data(), data.size());
    if (msg == nullptr) return refuse<verb::usage>(wire::ErrorCode::malformed, "not a UsageRequest");
    u.sandbox_id = std::string(wire::str(msg->sandbox_id()));
  }
  return accept<verb::usage>(std::move(u));
}

// The reply handle goes into the verb, or into the refusal (moved, never copied).
template <class T, class Impl>
decoded<T> with_reply(Impl impl, std::string_view subject, bytes data, reply_handle reply) {
  auto d = impl(subject, std::move(data));
  if (!d) {
    d.refused.to = std::move(reply);
  } else if constexpr (std::is_same_v<T, sandbox_verb>) {
    std::visit([&](auto& verb) { verb.reply = std::move(reply); }, *d.verb);
  } else {
    d.verb->reply = std::move(reply);
  }
  return d;
}

}  // namespace

decoded<sandbox_verb> decode_sandbox_request(std::string_view subject, bytes data,
                                             reply_handle reply) {
  return with_reply<sandbox_verb>(decode_sandbox_request_impl, subject, std::move(data),
                                  std::move(reply));
}

decoded<verb::create> decode_create(std::string_view subject, bytes data, reply_handle reply) {
  return with_reply<verb::create>(decode_create_impl, subject, std::move(data), std::move(reply));
}

decoded<verb::list> decode_list(std::string_view subject, bytes data, reply_handle reply) {
  return with_reply<verb::list>(decode_list_impl, subject, std::move(data), std::move(reply));
}

decoded<verb::usage> decode_usage(std::string_view subject, bytes data, reply_handle reply) {
  return with_reply<verb::usage>(decode_usage_impl, subject, std::move(data), std::move(reply));
}

}  // namespace corral::bridge
