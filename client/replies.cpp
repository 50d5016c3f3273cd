#include "client/replies.hpp"

#include <cerrno>
#include <cstdlib>

namespace corral::client {
namespace {

fs_entry_view entry_view(const wire::FsEntry& e) {
  fs_entry_view v;
  v.name = std::string(wire::str(e.name()));
  v.type = e.type();
  v.size = e.size();
  v.mode = e.mode();
  v.mtime_ms = e.mtime_ms();
  return v;
}

// The bytes view_of copies out of a SandboxInfo, counted without copying.
std::size_t info_bytes(const wire::SandboxInfo& i) {
  std::size_t n = 0;
  for (const auto* s : {i.id(), i.tenant(), i.name(), i.node(), i.image(), i.message()})
    n += wire::str(s).size();
  if (i.tags() != nullptr)
    for (const auto* kv : *i.tags()) n += wire::str(kv->key()).size() + wire::str(kv->value()).size();
  return n;
}

}  // namespace

// A reply's strings are never more than its bytes: a FlatBuffer whose offsets share their
// targets verifies, yet decodes to many times its size. Such a reply is treated as malformed
// (not decoded), so a few KiB never become GiB in a client.

std::optional<status> error_reply_of(const uint8_t* data, std::size_t size) {
  if (!wire::has_identifier<wire::ErrorReply>(data, size)) return std::nullopt;
  const auto* e = wire::verify<wire::ErrorReply>(data, size);
  if (e == nullptr) return status{wire::ErrorCode::malformed, "malformed error reply"};
  return status{e->code(), std::string(wire::str(e->message())), std::string(wire::str(e->field()))};
}

sandbox_view view_of(const wire::SandboxInfo& i) {
  sandbox_view v;
  v.id = std::string(wire::str(i.id()));
  v.tenant = std::string(wire::str(i.tenant()));
  v.name = std::string(wire::str(i.name()));
  v.node = std::string(wire::str(i.node()));
  v.image = std::string(wire::str(i.image()));
  v.message = std::string(wire::str(i.message()));
  v.state = i.state();
  v.created_at_ms = i.created_at_ms();
  v.started_at_ms = i.started_at_ms();
  v.ended_at_ms = i.ended_at_ms();
  v.timeout_ms = i.timeout_ms();
  v.has_return_code = i.has_return_code();
  v.return_code = i.return_code();
  v.tags = wire::pairs_of(i.tags());
  v.ready = i.ready();
  return v;
}

exec_result result_of(const wire::ExitStatus* s) {
  exec_result r;
  if (s == nullptr) return r;
  r.outcome = s->outcome();
  r.exit_code = s->exit_code();
  r.signal = s->signal();
  r.message = std::string(wire::str(s->message()));
  r.stdout_bytes = s->stdout_bytes();
  r.stderr_bytes = s->stderr_bytes();
  return r;
}

std::optional<sandbox_view> sandbox_reply_of(const uint8_t* data, std::size_t size) {
  const auto* rep = wire::verify<wire::SandboxReply>(data, size);
  if (rep == nullptr || rep->sandbox() == nullptr || info_bytes(*rep->sandbox()) > size)
    return std::nullopt;
  return view_of(*rep->sandbox());
}

void add_sandbox_list(const uint8_t* data, std::size_t size, std::vector<sandbox_view>& out) {
  const auto* l = wire::verify<wire::SandboxList>(data, size);
  if (l == nullptr || l->sandboxes() == nullptr) return;
  std::size_t n = 0;
  for (const auto* i : *l->sandboxes()) n += info_bytes(*i);
  if (n > size) return;
  for (const auto* i : *l->sandboxes()) out.push_back(view_of(*i));
}

void add_usage_reply(const uint8_t* data, std::size_t size, usage_report& out) {
  auto amount = [](const wire::UsageAmount* a) {
    usage_amount u;
    if (a != nullptr) u = usage_amount{a->cpu_core_seconds(), a->gib_seconds(), a->cost()};
    return u;
  };
  const auto* reply = wire::verify<wire::UsageReply>(data, size);
  if (reply == nullptr) return;
  if (reply->sandboxes() != nullptr) {
    std::size_t n = 0;  // each sandbox is copied with the node's name
    for (const auto* s : *reply->sandboxes())
      n += wire::str(s->sandbox_id()).size() + wire::str(reply->node()).size();
    if (n > size) return;
  }
  const auto t = amount(reply->total());
  out.total.cpu_core_seconds += t.cpu_core_seconds;
  out.total.gib_seconds += t.gib_seconds;
  out.total.cost += t.cost;
  if (reply->sandboxes() == nullptr) return;
  for (const auto* s : *reply->sandboxes())
    out.sandboxes.push_back(sandbox_usage_view{std::string(wire::str(s->sandbox_id())),
                                               std::string(wire::str(reply->node())),
                                               amount(s->usage())});
}

std::optional<fs_reply_view> fs_reply_of(const uint8_t* data, std::size_t size) {
  const auto* rep = wire::verify<wire::FsReply>(data, size);
  if (rep == nullptr) return std::nullopt;
  // FlatBuffers may point many fields at one string: what would be copied out is counted
  // first, and a reply that decodes to more than its own size is refused (no amplification).
  std::size_t n = (rep->data() != nullptr ? rep->data()->size() : 0) +
                  (rep->stat() != nullptr ? wire::str(rep->stat()->name()).size() : 0);
  if (rep->entries() != nullptr)
    for (const auto* e : *rep->entries()) n += wire::str(e->name()).size();
  if (n > size) return std::nullopt;
  fs_reply_view v;
  if (rep->data() != nullptr) v.data.assign(rep->data()->begin(), rep->data()->end());
  if (rep->entries() != nullptr)
    for (const auto* e : *rep->entries()) v.entries.push_back(entry_view(*e));
  if (rep->stat() != nullptr) v.stat = entry_view(*rep->stat());
  v.eof = rep->eof();
  v.next_offset = rep->next_offset();
  v.count = rep->count();
  return v;
}

std::optional<std::string> ack_of(const uint8_t* data, std::size_t size) {
  const auto* a = wire::verify<wire::Ack>(data, size);
  if (a == nullptr) return std::nullopt;
  return std::string(wire::str(a->message()));
}

std::optional<bool> exec_reply_reattached(const uint8_t* data, std::size_t size) {
  const auto* rep = wire::verify<wire::ExecReply>(data, size);
  if (rep == nullptr) return std::nullopt;
  return rep->reattached();
}

std::optional<uint64_t> output_seq_of(const uint8_t* data, std::size_t size) {
  if (const auto* c = wire::verify<wire::OutputChunk>(data, size)) return c->seq();
  if (const auto* x = wire::verify<wire::ExecExit>(data, size)) return x->seq();
  return std::nullopt;
}

std::optional<session::results_page> results_page_of(const uint8_t* data, std::size_t size) {
  auto end = wire::page_end_of(data, size);
  if (!end || end->next == 0) return std::nullopt;
  return session::results_page{end->next, end->more};
}

}  // namespace corral::client
