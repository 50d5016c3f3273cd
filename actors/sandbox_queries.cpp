// The sandbox actor's queries: info, wait, replay, tags.
#include "actors/sandbox_state.hpp"
#include "actors/validate.hpp"
#include "schemas/ids.hpp"

namespace corral::sandbox_detail {

void on_info(sandbox_self self, const verb::info& req) {
  reply(self, req.reply, make_sandbox_reply(self->state.rec));
}

void on_wait(sandbox_self self, const verb::wait& req) {
  auto& st = self->state;
  if (wire::is_terminal(st.rec.state) || req.timeout_ms <= 0 ||
      (req.until_ready && st.rec.ready && st.rec.state == wire::SandboxState::running)) {
    reply(self, req.reply, make_sandbox_reply(st.rec));
    return;
  }
  const int64_t timeout_ms = std::min(req.timeout_ms, st.ctx->config.max_wait_ms);
  if (st.waiters.size() >= st.ctx->config.max_waiters)
    return reply_error(self, req.reply, wire::ErrorCode::resource_exhausted,
                       "too many waits on this sandbox at once", "wait");
  const auto id = st.next_waiter++;
  st.waiters.emplace(id, waiter{req.reply, req.until_ready});
  self->delayed_send(self, std::chrono::milliseconds(timeout_ms), wait_atom::value, id);
}

void on_wait_timeout(sandbox_self self, uint64_t waiter_id) {
  auto& s = self->state;
  auto it = s.waiters.find(waiter_id);
  if (it == s.waiters.end()) return;  // answered already
  const auto to = std::move(it->second.reply);
  s.waiters.erase(it);
  reply_error(self, to, wire::ErrorCode::deadline_exceeded,
              "sandbox still " + std::string(wire::to_string(s.rec.state)));
}

// Answers the waiters that wait for readiness.
void answer_ready_waiters(sandbox_self self) {
  auto& st = self->state;
  auto info = make_sandbox_reply(st.rec);
  for (auto it = st.waiters.begin(); it != st.waiters.end();) {
    if (it->second.until_ready) {
      reply(self, it->second.reply, info);
      it = st.waiters.erase(it);
    } else {
      ++it;
    }
  }
}

void on_replay(sandbox_self self, const verb::replay& req) {
  auto& st = self->state;
  const std::string& exec_id = req.exec_id;
  const uint64_t from_seq = req.from_seq;
  if (!wire::valid_token(exec_id)) {
    reply_error(self, req.reply, wire::ErrorCode::not_found, "no such exec", "exec_id");
    return;
  }
  auto proc = st.ctx->store->get_process(st.rec.id, exec_id);
  if (!proc) {
    reply_error(self, req.reply, wire::ErrorCode::not_found, "no such exec", "exec_id");
    return;
  }
  auto chunks = st.ctx->store->read_output(st.rec.id, exec_id, from_seq,
                                           st.ctx->config.replay_batch_bytes);
  if (!chunks) {
    reply_error(self, req.reply, chunks.code(), "cannot read output: " + chunks.error().message);
    return;
  }
  uint64_t next = from_seq;
  // A finished exec whose frames before its exit are asked for but none is stored any more:
  // output retention dropped them. Say so rather than answer with nothing.
  if (chunks->empty() && proc->finished && from_seq + 1 < proc->next_seq) {
    reply_error(self, req.reply, wire::ErrorCode::expired,
                "the output of " + exec_id + " has expired (output retention)", "exec_id");
    return;
  }
  // The oldest chunks were dropped for the stored-output quota (actors/output_ledger.hpp): the
  // asked-for frames are gone, and skipping them would cut the output silently. (The ledger
  // knows it even when nothing after them is stored yet, for a running exec.)
  if (st.ctx->ledger != nullptr) {
    const uint64_t low = st.ctx->ledger->dropped_before(st.rec.id, exec_id);
    if (from_seq < low) {
      reply_error(self, req.reply, wire::ErrorCode::expired,
                  "frames " + std::to_string(from_seq) + ".." + std::to_string(low - 1) +
                      " of " + exec_id + " were dropped (stored-output quota)",
                  "from_seq");
      return;
    }
  }
  if (!chunks->empty() && chunks->front().seq > from_seq) {
    reply_error(self, req.reply, wire::ErrorCode::expired,
                "frames " + std::to_string(from_seq) + ".." +
                    std::to_string(chunks->front().seq - 1) + " of " + exec_id +
                    " were dropped (stored-output quota); stored frames start at " +
                    std::to_string(chunks->front().seq),
                "from_seq");
    return;
  }
  for (const auto& c : *chunks) {
    flatbuffers::FlatBufferBuilder fbb(c.data.size() + 128);
    auto id = fbb.CreateString(exec_id);
    auto d = fbb.CreateVector(c.data.data(), c.data.size());
    fbb.Finish(wire::CreateOutputChunk(fbb, id, c.seq, c.stream, c.offset, d),
               wire::OutputChunkIdentifier());
    reply(self, req.reply, wire::release(fbb));
    next = c.seq + 1;
  }
  // The exit frame's seq follows the last chunk; send it when the replay reached it.
  const bool reached_end = proc->finished && next + 1 >= proc->next_seq;
  if (reached_end) reply(self, req.reply, make_exec_exit(*proc));
  const bool more = !reached_end && proc->finished;
  reply(self, req.reply, wire::make_page_end(more, 0, more ? "more" : "done"));
}

void on_tags(sandbox_self self, const verb::tags& req) {
  auto& st = self->state;
  if (req.set) {
    const wire::SetTags* msg = &**req.set;
    if (auto e = check_tags(st.ctx->config, msg->tags()))
      return reply_error(self, req.reply, e.code, e.message(), e.field);
    // Set replaces the whole set, as Modal's set_tags does.
    const auto stored = st.rec;
    st.rec.tags = wire::pairs_of(msg->tags());
    if (auto written = persist(self, stored); !written.ok())
      return reply_error(self, req.reply, written.code, written.message);
    notify_node(self);
  }
  reply(self, req.reply, make_sandbox_reply(st.rec));
}

}  // namespace corral::sandbox_detail
