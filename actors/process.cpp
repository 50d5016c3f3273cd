#include "actors/process.hpp"

#include <csignal>
#include <cerrno>

#include "actors/validate.hpp"
#include "actors/wire_build.hpp"
#include "schemas/exit_codes.hpp"

namespace corral {

namespace {

struct process_state {
  context_ptr ctx;
  storage::process_record rec;
  std::shared_ptr<init_link> link;
  caf::actor sandbox;
  exec_address out;  // where its output frames go
  bool finished = false;
  // Set when we asked init to kill the process: the outcome to report when Exited arrives.
  std::optional<process_end_cause> kill_cause;
  uint64_t timer_epoch = 0;  // distinguishes the current kill-grace timer from stale ones
  uint64_t output_dropped = 0;  // bytes past max_output_bytes, never stored or published
  uint64_t stdin_sent = 0;     // stdin bytes sent to init
  uint64_t stdin_written = 0;  // stdin bytes init reports written into the pipe
  std::vector<reply_handle> held_stdin_acks;  // replies held until init catches up
  static inline const char* name = "process";
};

using process_self = process_actor::stateful_pointer<process_state>;

void reply(process_self self, const reply_handle& to, bytes payload) {
  self->state.ctx->out->reply(to, std::move(payload));
}

// Stores the terminal status (sync), publishes the exit frame, tells the sandbox, quits.
void store_exit(process_self self, int attempt);

void finish(process_self self, wire::Outcome outcome, int32_t exit_code, int32_t signal,
            std::string message) {
  auto& st = self->state;
  if (st.finished) return;
  st.finished = true;
  st.rec.finished = true;
  st.rec.outcome = outcome;
  st.rec.exit_code = exit_code;
  st.rec.signal = signal;
  st.rec.message = std::move(message);
  if (st.output_dropped > 0)
    st.rec.message += "; " + std::to_string(st.output_dropped) + " bytes of output dropped";
  st.rec.ended_at_ms = st.ctx->clk->now_ms();
  st.rec.next_seq += 1;  // the exit frame takes one sequence number
  store_exit(self, 1);
}

// Writes the terminal status (synced), then publishes it. A failed write is tried again after
// exec_store_retry_ms, and the exit is published only once it is stored (docs/promises.md P2);
// after exec_store_attempts failures it is published unstored, so that no client waits forever
// (the stored record then still says running, and the next executor's recovery ends it as
// executor_lost).
void store_exit(process_self self, int attempt) {
  auto& st = self->state;
  auto status = st.ctx->store->put_process(st.rec);
  if (!status.ok()) {
    caf::aout(self) << "process " << st.rec.exec_id << ": store failed (attempt " << attempt
                    << "): " << status.message << "\n";
    if (attempt < st.ctx->config.exec_store_attempts) {
      self->delayed_send(self, std::chrono::milliseconds(st.ctx->config.exec_store_retry_ms),
                         store_atom::value, attempt + 1);
      return;
    }
  }
  st.ctx->out->publish_output(st.out, make_exec_exit(st.rec));
  for (const auto& to : st.held_stdin_acks)
    st.ctx->out->reply(to, wire::make_error_reply(wire::ErrorCode::failed_precondition,
                                                  "exec has finished", "exec_id"));
  st.held_stdin_acks.clear();
  // The sandbox drops this actor when it handles proc_done; requests it forwarded until then
  // are answered from the finished record.
  caf::anon_send(st.sandbox, proc_done_atom::value, st.rec);
}

void kill_tree(process_self self, process_end_cause cause) {
  auto& st = self->state;
  if (st.finished || st.kill_cause) return;
  st.kill_cause = std::move(cause);
  if (!st.link || !st.link->send(make_command_signal(st.rec.handle, SIGKILL))) {
    finish(self, st.kill_cause->outcome, st.kill_cause->exit_code, st.kill_cause->signal,
           st.kill_cause->message);
    return;
  }
  // If init never confirms (it is wedged), end the exec anyway after the grace period.
  self->delayed_send(self, std::chrono::milliseconds(st.ctx->config.exec_kill_grace_ms),
                     timeout_atom::value, ++st.timer_epoch);
}


void on_output(process_self self, wire::Stream stream, bytes data) {
  auto& st = self->state;
  if (st.finished || data.empty()) return;
  // The output cap: keep exactly max_output_bytes, then end the exec as output_limit.
  const uint64_t cap = st.ctx->config.max_output_bytes;
  const uint64_t kept = st.rec.stdout_bytes + st.rec.stderr_bytes;
  if (kept + data.size() > cap) {
    const uint64_t room = cap > kept ? cap - kept : 0;
    st.output_dropped += data.size() - room;
    data.resize(room);
    if (!st.kill_cause || st.kill_cause->outcome != wire::Outcome::output_limit) {
      kill_tree(self, process_end_cause{wire::Outcome::output_limit, 0, SIGKILL,
                                        "output limit of " + std::to_string(cap) +
                                            " bytes reached"});
    }
    if (data.empty()) return;
  }
  const bool is_err = stream == wire::Stream::stderr;
  uint64_t& counter = is_err ? st.rec.stderr_bytes : st.rec.stdout_bytes;
  storage::output_chunk chunk;
  chunk.seq = st.rec.next_seq++;
  chunk.stream = is_err ? wire::Stream::stderr : wire::Stream::stdout;
  chunk.offset = counter;
  counter += data.size();
  flatbuffers::FlatBufferBuilder fbb(data.size() + 128);
  auto id = fbb.CreateString(st.rec.exec_id);
  auto d = fbb.CreateVector(data.data(), data.size());
  fbb.Finish(wire::CreateOutputChunk(fbb, id, chunk.seq, chunk.stream, chunk.offset, d),
             wire::OutputChunkIdentifier());
  chunk.data = std::move(data);
  std::vector<storage::output_chunk> batch;
  batch.push_back(std::move(chunk));
  const uint64_t chunk_seq = batch.front().seq, chunk_bytes = batch.front().data.size();
  auto status = st.ctx->store->append_output(st.rec.sandbox_id, st.rec.exec_id, batch);
  if (!status.ok()) {
    caf::aout(self) << "process " << st.rec.exec_id << ": output store failed: " << status.message
                    << "\n";
  } else if (st.ctx->ledger != nullptr) {
    st.ctx->ledger->stored(st.out.tenant, st.rec.sandbox_id, st.rec.exec_id, chunk_seq,
                           chunk_bytes);
  }
  st.ctx->out->publish_output(st.out, wire::release(fbb));
}

void on_event(process_self self, init_process_event& ev) {
  auto& st = self->state;
  if (st.finished) return;
  switch (ev.what) {
    case init_process_event::kind::started:
      break;
    case init_process_event::kind::stdin_written:
      st.stdin_written = std::max(st.stdin_written, ev.stdin_total);
      if (st.stdin_sent - st.stdin_written <= st.ctx->config.stdin_window_bytes) {
        for (const auto& to : st.held_stdin_acks) st.ctx->out->reply(to, wire::make_ack());
        st.held_stdin_acks.clear();
      }
      break;
    case init_process_event::kind::output:
      on_output(self, ev.stream, std::move(ev.data));
      break;
    case init_process_event::kind::exited:
      if (st.kill_cause) {
        const auto c = *st.kill_cause;
        finish(self, c.outcome, c.exit_code, c.signal, c.message);
      } else if (ev.signal != 0) {
        finish(self, wire::Outcome::signaled, 128 + ev.signal, ev.signal,
               std::string("killed by signal ") + std::to_string(ev.signal));
      } else {
        finish(self, wire::Outcome::exited, ev.exit_code, 0, {});
      }
      break;
    case init_process_event::kind::spawn_failed: {
      const int code = (ev.error_number == ENOENT) ? exit_codes::not_found : exit_codes::not_executable;
      finish(self, wire::Outcome::rejected, code, 0,
             ev.message.empty() ? std::string("could not start process") : ev.message);
      break;
    }
  }
}

// Answers a request about an exec that has finished; true when it had.
bool refuse_when_finished(process_self self, const reply_handle& to) {
  if (!self->state.finished) return false;
  reply(self, to, wire::make_error_reply(wire::ErrorCode::failed_precondition, "exec has finished",
                                         "exec_id"));
  return true;
}

void on_stdin(process_self self, const verb::stdin_write& req) {
  auto& st = self->state;
  if (refuse_when_finished(self, req.reply)) return;
  const wire::StdinWrite& msg = *req.msg;
  if (auto e = check_stdin_write(st.ctx->config, msg)) {
    reply(self, req.reply, wire::make_error_reply(e.code, e.why, e.field));
    return;
  }
  const auto* data = msg.data();
  const std::size_t n = data == nullptr ? 0 : data->size();
  if (!st.rec.stdin_open) {
    reply(self, req.reply, wire::make_error_reply(wire::ErrorCode::failed_precondition,
                                                  "exec was started without stdin", "exec_id"));
    return;
  }
  const auto& cfg = st.ctx->config;
  if (st.stdin_sent - st.stdin_written + n > cfg.stdin_max_in_flight_bytes) {
    reply(self, req.reply, wire::make_error_reply(wire::ErrorCode::resource_exhausted,
                                                  "stdin window full: wait for each write's ack",
                                                  "data"));
    return;
  }
  if (st.held_stdin_acks.size() >= cfg.max_held_stdin_acks) {
    reply(self, req.reply,
          wire::make_error_reply(wire::ErrorCode::resource_exhausted,
                                 "too many stdin writes wait for the process to read", "stdin"));
    return;
  }
  if (!st.link ||
      !st.link->send(make_command_stdin(st.rec.handle, n ? data->data() : nullptr, n, msg.eof()))) {
    reply(self, req.reply, wire::make_error_reply(wire::ErrorCode::unavailable,
                                                  "sandbox link is busy or closed"));
    return;
  }
  st.stdin_sent += n;
  // Flow control: past the window the ack waits until init has written enough.
  if (st.stdin_sent - st.stdin_written > cfg.stdin_window_bytes && !req.reply.empty())
    st.held_stdin_acks.push_back(req.reply);
  else
    reply(self, req.reply, wire::make_ack());
}

// Signal and resize: one command to init, acknowledged once the link took it.
void send_command(process_self self, const reply_handle& to, bytes command) {
  auto& st = self->state;
  if (!st.link || !st.link->send(std::move(command))) {
    reply(self, to, wire::make_error_reply(wire::ErrorCode::unavailable,
                                           "sandbox link is busy or closed"));
    return;
  }
  reply(self, to, wire::make_ack());
}

void on_signal(process_self self, const verb::signal& req) {
  if (refuse_when_finished(self, req.reply)) return;
  send_command(self, req.reply, make_command_signal(self->state.rec.handle, req.number));
}

void on_resize(process_self self, const verb::resize& req) {
  if (refuse_when_finished(self, req.reply)) return;
  send_command(self, req.reply, make_command_resize(self->state.rec.handle, req.rows, req.cols));
}

process_actor::behavior_type process_impl(process_self self, context_ptr ctx,
                                          std::string tenant, storage::process_record rec,
                                          std::shared_ptr<init_link> link, caf::actor sandbox) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.out = exec_address{std::move(tenant), rec.sandbox_id, rec.exec_id};
  st.rec = std::move(rec);
  st.link = std::move(link);
  st.sandbox = std::move(sandbox);
  if (st.rec.timeout_ms > 0) {
    self->delayed_send(self, std::chrono::milliseconds(st.rec.timeout_ms), timeout_atom::value,
                       uint64_t{0});
  }
  return {
      [=](event_atom, init_process_event& ev) { on_event(self, ev); },
      [=](end_atom, const process_end_cause& cause) {
        finish(self, cause.outcome, cause.exit_code, cause.signal, cause.message);
      },
      // The exec id is known: re-attach, never a second process.
      [=](const verb::exec& req) {
        reply(self, req.reply, make_exec_reply(self->state.rec, /*reattached=*/true));
      },
      [=](const verb::stdin_write& req) { on_stdin(self, req); },
      [=](const verb::signal& req) { on_signal(self, req); },
      [=](const verb::resize& req) { on_resize(self, req); },
      [=](store_atom, int attempt) { store_exit(self, attempt); },
      [=](timeout_atom, uint64_t epoch) {
        auto& s = self->state;
        if (s.finished) return;
        if (epoch == 0 && !s.kill_cause) {
          // The per-exec timeout: end the whole process tree.
          kill_tree(self, process_end_cause{wire::Outcome::timeout, exit_codes::timed_out, SIGKILL,
                                            "exec timed out after " +
                                                std::to_string(s.rec.timeout_ms) + " ms"});
        } else if (epoch == s.timer_epoch && s.kill_cause) {
          const auto c = *s.kill_cause;
          finish(self, c.outcome, c.exit_code, c.signal,
                 c.message + " (init did not confirm the kill)");
        }
      },
  };
}

}  // namespace

process_actor spawn_process(caf::local_actor* parent, context_ptr ctx, std::string tenant,
                            storage::process_record rec, std::shared_ptr<init_link> link,
                            caf::actor sandbox) {
  return parent->spawn(process_impl, std::move(ctx), std::move(tenant), std::move(rec),
                       std::move(link),
                       std::move(sandbox));
}

}  // namespace corral
