#include "client/client.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "client/errors.hpp"
#include "client/output_sequencer.hpp"
#include "client/replies.hpp"
#include "client/requests.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral::client {

namespace {

using clock_type = std::chrono::steady_clock;

// The sandbox in a reply that should carry a SandboxReply, or the call's error.
result<sandbox_view> sandbox_of(result<bus::message>&& r) {
  if (!r) return r.error();
  auto v = sandbox_reply_of(r->data.data(), r->data.size());
  if (!v) return failure(wire::ErrorCode::malformed, "unexpected reply");
  return std::move(*v);
}

// Messages received on a subscription, handed to the calling thread.
struct mailbox {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<bus::message> q;
  void push(bus::message&& m) {
    {
      std::lock_guard<std::mutex> lock(mu);
      q.push_back(std::move(m));
    }
    cv.notify_one();
  }
  std::optional<bus::message> pop(clock_type::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_until(lock, deadline, [&] { return !q.empty(); })) return std::nullopt;
    auto m = std::move(q.front());
    q.pop_front();
    return m;
  }
};

}  // namespace

std::string format_age(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 10'000) return std::to_string(ms / 1000) + "." + std::to_string((ms % 1000) / 100) + "s";
  if (ms < 120'000) return std::to_string(ms / 1000) + "s";
  if (ms < 7'200'000) return std::to_string(ms / 60'000) + "m";
  if (ms < 172'800'000) return std::to_string(ms / 3'600'000) + "h";
  return std::to_string(ms / 86'400'000) + "d";
}

session::session(config cfg, std::shared_ptr<bus::connection> conn)
    : cfg_(std::move(cfg)), conn_(std::move(conn)) {}

std::unique_ptr<session> session::over(std::shared_ptr<bus::connection> conn, const config& cfg) {
  if (!conn || !wire::valid_token(cfg.tenant)) return nullptr;
  return std::unique_ptr<session>(new session(cfg, std::move(conn)));
}

status session::setup_jobs() {
  auto r = call(wire::subjects::jobs_setup(cfg_.tenant), {}, cfg_.request_timeout_ms,
                request_kind::jobs, {});
  return r.error();
}

result<session::results_page> session::read_results(
    const std::string& batch, uint64_t from_seq,
    const std::function<void(std::vector<uint8_t>&&)>& on_result) {
  auto box = std::make_shared<mailbox>();
  const auto inbox = conn_->new_inbox();
  auto sub = conn_->subscribe(inbox, "", [box](bus::message&& m) { box->push(std::move(m)); });
  if (!sub) return failure(wire::ErrorCode::unavailable, "NATS: " + sub.error().message);
  const auto payload = results_read_bytes(batch, from_seq);
  if (auto st = conn_->publish(wire::subjects::results_read(cfg_.tenant), inbox, payload.data(),
                               payload.size());
      !st)
    return failure(wire::ErrorCode::unavailable, "NATS: " + st.error().message);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms);
  for (;;) {
    auto m = box->pop(deadline);
    if (!m)
      return failure(wire::ErrorCode::deadline_exceeded, "no executor answered the read in time");
    if (auto e = error_in(*m)) return std::move(*e);
    if (wire::verify<wire::Ack>(m->data.data(), m->data.size()) != nullptr) {
      auto page = results_page_of(m->data.data(), m->data.size());
      if (!page || page->next < from_seq)
        return failure(wire::ErrorCode::malformed, "an unreadable end of a results read");
      return *page;
    }
    on_result(std::move(m->data));
  }
}

std::unique_ptr<session> session::connect(const config& cfg, std::string* error) {
  if (!wire::valid_token(cfg.tenant)) {
    if (error) *error = "invalid tenant: " + cfg.tenant;
    return nullptr;
  }
  bus::options opts;
  opts.urls = {cfg.nats_url};
  opts.name = "corral-cli";
  opts.nkey_seed_file = cfg.nats_creds;
  opts.tls_ca_file = cfg.nats_ca;
  opts.inbox_prefix = cfg.inbox_prefix.empty() ? wire::subjects::tenant_inbox_prefix(cfg.tenant)
                                               : cfg.inbox_prefix;
  opts.max_reconnect = 60;
  opts.delivery_pool_threads = 0;
  auto conn = bus::connection::connect(opts, error);
  if (!conn) return nullptr;
  return std::unique_ptr<session>(new session(cfg, std::move(conn)));
}

result<bus::message> session::call(const std::string& subject, const std::vector<uint8_t>& payload,
                                   int64_t timeout_ms, request_kind kind, const std::string& what) {
  auto r = conn_->request(subject, payload.data(), payload.size(), timeout_ms);
  if (!r) return wire_error(kind, transport_failure_of(r.error().code), what, r.error().message);
  if (auto e = error_in(r.value())) return std::move(*e);
  return std::move(r).value();
}

result<sandbox_view> session::sandbox_call(const std::string& id, const std::string& op,
                                           const std::vector<uint8_t>& payload,
                                           int64_t timeout_ms) {
  if (!wire::valid_id(id, "sb-")) return failure(wire::ErrorCode::not_found, "no such sandbox: " + id);
  auto r = call(wire::subjects::sandbox_op(cfg_.tenant, id, op), payload, timeout_ms,
                request_kind::sandbox, id);
  if (!r && r.code() == wire::ErrorCode::not_found) {
    status e = r.error();
    e.message = "no such sandbox: " + id;
    return e;
  }
  return sandbox_of(std::move(r));
}

result<sandbox_view> session::create(const create_options& o) {
  if (!o.node.empty() && !wire::valid_token(o.node))
    return failure(wire::ErrorCode::invalid_argument, "invalid node: " + o.node);
  auto r = call(o.node.empty() ? wire::subjects::create(cfg_.tenant, cfg_.pool)
                               : wire::subjects::node_create(cfg_.tenant, o.node),
                create_request_bytes(o), cfg_.request_timeout_ms,
                o.node.empty() ? request_kind::create : request_kind::create_on_node,
                o.node.empty() ? cfg_.pool : o.node);
  return sandbox_of(std::move(r));
}

result<sandbox_view> session::info(const std::string& id) {
  return sandbox_call(id, "info", {}, cfg_.request_timeout_ms);
}

result<sandbox_view> session::terminate(const std::string& id) {
  return sandbox_call(id, "terminate", {}, cfg_.request_timeout_ms);
}

result<sandbox_view> session::wait(const std::string& id, int64_t timeout_ms, bool until_ready) {
  // In rounds of at most wait_round_ms: the executor answers one wait within its max_wait_ms
  // (and NATS keeps a request's reply mapping only so long: docs/security.md).
  constexpr int64_t wait_round_ms = 5 * 60 * 1000;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const int64_t left = std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(
               deadline - std::chrono::steady_clock::now())
               .count());
    const int64_t round = std::min(left, wait_round_ms);
    auto r = sandbox_call(id, "wait", sandbox_query_bytes(round, until_ready), round + 5000);
    if (!r || round == left || wire::is_terminal(r->state) ||
        (until_ready && r->ready && r->state == wire::SandboxState::running))
      return r;
  }
}

result<sandbox_view> session::tags(
    const std::string& id,
    const std::optional<std::vector<std::pair<std::string, std::string>>>& set) {
  if (!set) return sandbox_call(id, "tags", {}, cfg_.request_timeout_ms);
  return sandbox_call(id, "tags", set_tags_bytes(*set), cfg_.request_timeout_ms);
}

result<std::vector<sandbox_view>> session::list(
    bool include_ended, const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& tags) {
  const auto payload = list_request_bytes(include_ended, name, tags);
  auto r = conn_->request_many(wire::subjects::list(cfg_.tenant), payload.data(), payload.size(),
                               /*gather_timeout_ms=*/300, /*max_replies=*/1024);
  std::vector<sandbox_view> out;
  if (!r) {
    if (r.error().code == bus::errc::no_responders) return out;  // no executor: nothing to list
    return failure(wire::ErrorCode::unavailable, "NATS: " + r.error().message);
  }
  for (const auto& m : r.value()) add_sandbox_list(m.data.data(), m.data.size(), out);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.created_at_ms < b.created_at_ms; });
  return out;
}

result<usage_report> session::usage(const std::string& sandbox_id) {
  const auto payload = usage_request_bytes(sandbox_id);
  auto r = conn_->request_many(wire::subjects::usage(cfg_.tenant), payload.data(), payload.size(),
                               /*gather_timeout_ms=*/300, /*max_replies=*/1024);
  usage_report out;
  if (!r) {
    if (r.error().code == bus::errc::no_responders) return out;  // no executor: nothing used
    return failure(wire::ErrorCode::unavailable, "NATS: " + r.error().message);
  }
  for (const auto& m : r.value()) add_usage_reply(m.data.data(), m.data.size(), out);
  std::sort(out.sandboxes.begin(), out.sandboxes.end(),
            [](const auto& a, const auto& b) { return a.sandbox_id < b.sandbox_id; });
  return out;
}

result<exec_result> session::exec(const std::string& sandbox_id, const exec_options& o,
                                  const output_fn& on_output, stdin_fn stdin_source) {
  if (!wire::valid_id(sandbox_id, "sb-"))
    return failure(wire::ErrorCode::not_found, "no such sandbox: " + sandbox_id);
  const std::string exec_id = o.exec_id.empty() ? wire::new_exec_id() : o.exec_id;
  // Subscribe before the exec starts so no chunk can be missed; gaps are replayed anyway.
  auto box = std::make_shared<mailbox>();
  auto sub = conn_->subscribe(wire::subjects::output(cfg_.tenant, sandbox_id, exec_id), "",
                              [box](bus::message&& m) { box->push(std::move(m)); });
  if (!sub) return failure(wire::ErrorCode::unavailable, "subscribe: " + sub.error().message);
  // No flush needed: the server handles this connection's SUB before its later PUB of the
  // exec request, and the executor publishes output only after receiving that request.
  const auto exec_payload = exec_request_bytes(exec_id, o);
  // What the silence check sends: a re-attach that can never start the process again, even if
  // the exec's record is gone by then.
  const auto attach_payload = wire::make_attach_request(exec_id);
  const auto exec_subject = wire::subjects::sandbox_op(cfg_.tenant, sandbox_id, "exec");
  auto first = call(exec_subject, exec_payload, cfg_.request_timeout_ms, request_kind::sandbox,
                    sandbox_id);
  if (!first) {
    status e = first.error();
    if (e.code == wire::ErrorCode::not_found) e.message = "no such sandbox: " + sandbox_id;
    return e;
  }

  std::thread stdin_thread;
  if (stdin_source && o.stdin_open) {
    // The pump may outlive this call and this client (see below): it holds its own share of the
    // connection and copies of what it needs, never `this`.
    stdin_thread = std::thread([conn = conn_, timeout = cfg_.request_timeout_ms, stdin_source,
                                subject = wire::subjects::sandbox_op(cfg_.tenant, sandbox_id, "stdin"),
                                exec_id] {
      // One StdinWrite carries at most this much; each waits for its ack (flow control).
      constexpr std::size_t max_write = 256 * 1024;
      std::vector<uint8_t> carry;
      for (;;) {
        std::optional<std::vector<uint8_t>> chunk;
        if (!carry.empty()) {
          chunk = std::move(carry);
          carry.clear();
        } else {
          chunk = stdin_source();
        }
        if (chunk && chunk->size() > max_write) {
          carry.assign(chunk->begin() + max_write, chunk->end());
          chunk->resize(max_write);
        }
        const auto payload = chunk ? stdin_write_bytes(exec_id, chunk->data(), chunk->size(), false)
                                   : stdin_write_bytes(exec_id, nullptr, 0, true);
        auto r = conn->request(subject, payload.data(), payload.size(), timeout);
        if (!r || error_in(r.value()) || !chunk) return;  // the exec ended or refused stdin; or EOF sent
      }
    });
  }

  output_sequencer seq;
  std::optional<exec_result> done;
  const output_sequencer::emit_fn emit = [&](const output_frame& f) {
    if (f.exit != nullptr) done = result_of(f.exit->status());
    else if (on_output) on_output(f.stream, f.data, f.size);
  };
  std::optional<status> gone;  // the replay answered expired / not found
  auto gap_since = clock_type::time_point::max();
  auto last_heard = clock_type::now();

  auto offer = [&](bus::message&& m) {
    (void)seq.offer(std::move(m.data), emit);
    gap_since = !seq.needs_replay() ? clock_type::time_point::max()
                                    : std::min(gap_since, clock_type::now());
  };
  // Asks the executor for the stored frames from `next` on (exactly the missing frames).
  auto replay = [&]() -> bool {
    for (int round = 0; round < 1000 && !seq.ended(); ++round) {
      auto rbox = std::make_shared<mailbox>();
      const auto inbox = conn_->new_inbox();
      auto rsub = conn_->subscribe(inbox, "", [rbox](bus::message&& m) { rbox->push(std::move(m)); });
      if (!rsub) return false;
      const auto payload = replay_request_bytes(exec_id, seq.next());
      seq.replay_asked();
      if (auto st = conn_->publish(wire::subjects::sandbox_op(cfg_.tenant, sandbox_id, "replay"),
                                   inbox, payload.data(), payload.size());
          !st) {
        std::fprintf(stderr, "corral: replay request failed: %s\n", st.error().message.c_str());
        return false;
      }
      bool more = false;
      const auto deadline = clock_type::now() + std::chrono::seconds(10);
      for (;;) {
        auto m = rbox->pop(deadline);
        if (!m) return false;
        if (auto e = error_in(*m)) {
          if (e->code == wire::ErrorCode::expired || e->code == wire::ErrorCode::not_found) {
            gone = *e;  // final: nothing more can be had
            seq.expire(failure(e->code, e->message));
            return false;
          }
          std::fprintf(stderr, "corral: replay of %s failed: %s: %s\n", exec_id.c_str(),
                       wire::to_string(e->code), e->message.c_str());
          return false;
        }
        if (auto end = wire::page_end_of(m->data.data(), m->data.size())) {
          more = end->more;
          break;
        }
        offer(std::move(*m));
      }
      if (!more) return true;
    }
    return true;
  };

  // Re-attached to a known exec: what it wrote before we subscribed is in the store.
  if (exec_reply_reattached(first->data.data(), first->data.size()).value_or(false)) {
    (void)replay();  // a failed replay is retried on the next gap or silence check
  }
  // A pty exec's terminal size, sent again whenever o.window_changed reports a new one.
  const bool watch_window = o.pty && o.window_changed;
  auto send_window_size = [&] {
    uint16_t rows = 0, cols = 0;
    if (!o.window_changed(rows, cols)) return;
    // A refused resize (the exec has just ended) changes nothing: the exit follows.
    (void)call(wire::subjects::sandbox_op(cfg_.tenant, sandbox_id, "resize"),
               resize_request_bytes(exec_id, rows, cols), cfg_.request_timeout_ms,
               request_kind::exec, "resize");
  };
  const auto pop_wait = std::chrono::milliseconds(watch_window ? exec_options::window_poll_ms : 250);
  std::optional<status> lost;  // the sandbox or the exec went away while we waited
  while (!seq.ended()) {
    if (watch_window) send_window_size();
    auto m = box->pop(clock_type::now() + pop_wait);
    const auto now = clock_type::now();
    if (m) {
      last_heard = now;
      offer(std::move(*m));
      continue;
    }
    if (seq.needs_replay() && now - gap_since > std::chrono::milliseconds(300)) {
      (void)replay();  // a failed replay is retried on the next gap check
      gap_since = !seq.needs_replay() ? clock_type::time_point::max() : now;
      continue;
    }
    if (now - last_heard > std::chrono::seconds(5)) {
      // Silence: ask for the exec's state by re-attaching with the same id, attach-only (never
      // a process), and replay what is stored past the last frame we have: chunks published
      // while the connection was down are not re-sent, and a live exec may send nothing more
      // that would reveal the gap.
      last_heard = now;
      auto r = call(exec_subject, attach_payload, cfg_.request_timeout_ms, request_kind::sandbox,
                    sandbox_id);
      if (!r) {
        if (r.code() == wire::ErrorCode::not_found) {
          lost = failure(wire::ErrorCode::unavailable,
                         "the sandbox or the exec is gone: " + r.error().message);
          break;
        }
        continue;
      }
      if (exec_reply_reattached(r->data.data(), r->data.size())) (void)replay();
    }
  }
  // The stdin pump may be blocked reading a source that never ends (a terminal, an open pipe):
  // it must not hold up the exit status. It holds its own share of the connection, so neither
  // the end of this call nor the client's destruction pulls it from under it.
  if (stdin_thread.joinable()) stdin_thread.detach();
  if (done) return *done;
  if (gone) return *gone;
  if (lost) return *lost;
  return failure(wire::ErrorCode::internal, "the exec ended without an exit status");
}

status session::stdin_write(const std::string& sandbox_id, const std::string& exec_id,
                            const uint8_t* data, std::size_t n, bool eof) {
  if (!wire::valid_id(sandbox_id, "sb-"))
    return failure(wire::ErrorCode::not_found, "no such sandbox: " + sandbox_id);
  auto r = call(wire::subjects::sandbox_op(cfg_.tenant, sandbox_id, "stdin"),
                stdin_write_bytes(exec_id, data, n, eof), cfg_.request_timeout_ms, request_kind::exec,
                "stdin");
  return r.error();
}

}  // namespace corral::client

// -- file operations ----------------------------------------------------------------------------

namespace corral::client {
result<fs_reply_view> session::fs_call(const std::string& sandbox_id, const std::string& op,
                                       const fs_request_options& o) {
  if (!wire::valid_id(sandbox_id, "sb-"))
    return failure(wire::ErrorCode::not_found, "no such sandbox: " + sandbox_id);
  auto r = call(wire::subjects::sandbox_op(cfg_.tenant, sandbox_id, "fs." + op), fs_request_bytes(o),
                cfg_.request_timeout_ms, request_kind::sandbox, sandbox_id);
  if (!r) {
    status e = r.error();
    // A missing sandbox, not a missing file (whose error names the field: path).
    if (e.code == wire::ErrorCode::not_found && e.field.empty() &&
        e.message.rfind("no such sandbox", 0) == 0)
      e.message = "no such sandbox: " + sandbox_id;
    return e;
  }
  auto v = fs_reply_of(r->data.data(), r->data.size());
  if (!v) return failure(wire::ErrorCode::malformed, "unexpected reply to fs." + op);
  return std::move(*v);
}

result<uint64_t> session::fs_read(const std::string& sandbox_id, const std::string& path,
                                  const bytes_fn& sink, uint64_t max_bytes) {
  fs_request_options o;
  o.path = path;
  uint64_t delivered = 0;
  for (;;) {
    o.length = 0;  // the executor's cap
    auto r = fs_call(sandbox_id, "read", o);
    if (!r) return r.error();
    std::size_t n = r->data.size();
    if (max_bytes != 0 && delivered + n > max_bytes) n = static_cast<std::size_t>(max_bytes - delivered);
    if (n > 0) sink(r->data.data(), n);
    delivered += n;
    if (r->eof || r->data.empty() || (max_bytes != 0 && delivered >= max_bytes)) break;
    o.offset = r->next_offset;
  }
  return delivered;
}

result<uint64_t> session::fs_write(const std::string& sandbox_id, const std::string& path,
                                   const stdin_fn& source, bool append) {
  const std::size_t chunk_max = cfg_.fs_write_chunk_bytes == 0 ? 256 * 1024 : cfg_.fs_write_chunk_bytes;
  fs_request_options o;
  o.path = path;
  o.append = append;
  o.truncate = !append;  // the first request only
  uint64_t written = 0;
  std::vector<uint8_t> pending;
  bool source_done = false;
  bool sent_any = false;
  for (;;) {
    while (!source_done && pending.size() < chunk_max) {
      auto more = source();
      if (!more) {
        source_done = true;
        break;
      }
      pending.insert(pending.end(), more->begin(), more->end());
    }
    if (pending.empty() && source_done && sent_any) break;
    const std::size_t n = std::min(pending.size(), chunk_max);
    o.data.assign(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = fs_call(sandbox_id, "write", o);
    if (!r) return r.error();
    sent_any = true;
    written += r->count;
    o.offset = r->next_offset;
    o.truncate = false;
  }
  return written;
}

result<std::vector<fs_entry_view>> session::fs_list(const std::string& sandbox_id,
                                                    const std::string& path) {
  fs_request_options o;
  o.path = path;
  std::vector<fs_entry_view> all;
  for (;;) {
    auto r = fs_call(sandbox_id, "list", o);
    if (!r) return r.error();
    for (auto& e : r->entries) all.push_back(std::move(e));
    if (r->eof || r->next_offset <= o.offset) break;
    o.offset = r->next_offset;
  }
  return all;
}

result<fs_entry_view> session::fs_stat(const std::string& sandbox_id, const std::string& path) {
  fs_request_options o;
  o.path = path;
  auto r = fs_call(sandbox_id, "stat", o);
  if (!r) return r.error();
  if (!r->stat) return failure(wire::ErrorCode::malformed, "fs.stat reply without a stat");
  return *r->stat;
}

status session::fs_mkdir(const std::string& sandbox_id, const std::string& path,
                         bool parents) {
  fs_request_options o;
  o.path = path;
  o.parents = parents;
  return fs_call(sandbox_id, "mkdir", o).error();
}

result<uint64_t> session::fs_remove(const std::string& sandbox_id, const std::string& path,
                                    bool recursive) {
  fs_request_options o;
  o.path = path;
  o.recursive = recursive;
  uint64_t removed = 0;
  for (;;) {
    auto r = fs_call(sandbox_id, "remove", o);
    if (!r) return r.error();
    removed += r->count;
    if (r->eof) break;
    if (r->count == 0)
      return failure(wire::ErrorCode::internal, "remove of " + path + " made no progress");
  }
  return removed;
}

}  // namespace corral::client
