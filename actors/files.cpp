#include "actors/files.hpp"

namespace corral {
namespace {

flatbuffers::Offset<wire::FsEntry> copy_entry(flatbuffers::FlatBufferBuilder& fbb,
                                              const wire::FsEntry* e) {
  if (e == nullptr) return 0;
  const auto name = fbb.CreateString(wire::str(e->name()));
  return wire::CreateFsEntry(fbb, name, e->type(), e->size(), e->mode(), e->mtime_ms());
}

// The FsReply for a successful FsResult.
bytes make_fs_reply(const wire::FsResult& r) {
  const std::size_t data_size = r.data() == nullptr ? 0 : r.data()->size();
  flatbuffers::FlatBufferBuilder fbb(data_size + 1024);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
  if (r.data() != nullptr) data = fbb.CreateVector(r.data()->data(), data_size);
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::FsEntry>>> entries;
  if (r.entries() != nullptr) {
    std::vector<flatbuffers::Offset<wire::FsEntry>> list;
    list.reserve(r.entries()->size());
    for (const auto* e : *r.entries()) list.push_back(copy_entry(fbb, e));
    entries = fbb.CreateVector(list);
  }
  const auto stat = copy_entry(fbb, r.stat());
  wire::FsReplyBuilder b(fbb);
  b.add_data(data);
  b.add_entries(entries);
  b.add_stat(stat);
  b.add_eof(r.eof());
  b.add_next_offset(r.next_offset());
  b.add_count(r.count());
  fbb.Finish(b.Finish(), wire::FsReplyIdentifier());
  return wire::release(fbb);
}

}  // namespace

void file_ops::on_request(const context_ptr& ctx, init_link* link, bool running,
                          const verb::fs& req) {
  auto refuse = [&](wire::ErrorCode code, const std::string& message, std::string_view field = {}) {
    ctx->out->reply(req.reply, wire::make_error_reply(code, message, field));
  };
  const wire::FsOp op = req.op;
  const std::string_view op_name = wire::EnumNameFsOp(op);
  const wire::FsRequest* r = &*req.msg;
  const auto& cfg = ctx->config;
  const std::string_view path = wire::str(r->path());
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string_view::npos)
    return refuse(wire::ErrorCode::invalid_argument,
                  "path must be absolute and free of NUL bytes: \"" + std::string(path) + "\"",
                  "path");
  if (path.size() > cfg.max_path_bytes)
    return refuse(wire::ErrorCode::invalid_argument,
                  "path longer than " + std::to_string(cfg.max_path_bytes) + " bytes", "path");
  uint64_t length = r->length();
  switch (op) {
    case wire::FsOp::read:
      if (length > cfg.fs_max_read_bytes)
        return refuse(wire::ErrorCode::too_large,
                      "read of " + std::to_string(length) + " bytes of " + std::string(path) +
                          ": at most " + std::to_string(cfg.fs_max_read_bytes) +
                          " per request (read on from next_offset)",
                      "length");
      if (length == 0) length = cfg.fs_max_read_bytes;
      break;
    case wire::FsOp::write:
      if (r->data() != nullptr && r->data()->size() > cfg.fs_max_write_bytes)
        return refuse(wire::ErrorCode::too_large,
                      "write of " + std::to_string(r->data()->size()) + " bytes to " +
                          std::string(path) + ": at most " +
                          std::to_string(cfg.fs_max_write_bytes) + " per request",
                      "data");
      break;
    case wire::FsOp::list:
      if (length == 0 || length > cfg.fs_max_list_entries) length = cfg.fs_max_list_entries;
      break;
    case wire::FsOp::remove:
      if (length == 0 || length > cfg.fs_max_remove_entries) length = cfg.fs_max_remove_entries;
      break;
    default:
      break;
  }
  if (!running || link == nullptr)
    return refuse(wire::ErrorCode::failed_precondition,
                  "fs." + std::string(op_name) + " " + std::string(path) +
                      ": the sandbox is not running");
  if (pending_.size() >= cfg.fs_max_pending_calls)
    return refuse(wire::ErrorCode::resource_exhausted,
                  std::to_string(pending_.size()) +
                      " file operations are already waiting on this sandbox: retry later");

  const uint64_t id = next_call_id_++;
  const std::size_t data_size = r->data() == nullptr ? 0 : r->data()->size();
  flatbuffers::FlatBufferBuilder fbb(data_size + path.size() + 256);
  const auto path_offset = fbb.CreateString(path.data(), path.size());
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
  if (op == wire::FsOp::write && r->data() != nullptr)
    data = fbb.CreateVector(r->data()->data(), data_size);
  wire::FsCallBuilder b(fbb);
  b.add_call_id(id);
  b.add_op(op);
  b.add_path(path_offset);
  b.add_offset(r->offset());
  b.add_length(length);
  b.add_data(data);
  b.add_create(r->create());
  b.add_truncate(r->truncate());
  b.add_append(r->append());
  b.add_exclusive(r->exclusive());
  b.add_parents(r->parents());
  b.add_recursive(r->recursive());
  b.add_mode(r->mode() & 07777);
  const auto call = b.Finish();
  fbb.Finish(wire::CreateInitCommand(fbb, wire::Command::FsCall, call.Union()),
             wire::InitCommandIdentifier());
  if (!link->send(wire::release(fbb)))
    return refuse(wire::ErrorCode::unavailable,
                  "fs." + std::string(op_name) + " " + std::string(path) +
                      ": the link to the sandbox refused it (closed or congested)");
  pending_[id] = pending_call{req.reply, op, std::string(path)};
}

bool file_ops::on_event(const context_ptr& ctx, const wire::InitEvent& event) {
  const auto* r = event.event_as_FsResult();
  if (r == nullptr) return false;
  auto it = pending_.find(r->call_id());
  if (it == pending_.end()) return true;  // answered already (fail_all) or never asked
  const pending_call call = std::move(it->second);
  pending_.erase(it);
  if (call.reply.empty()) return true;
  if (r->error() != wire::ErrorCode::ok) {
    std::string message(wire::str(r->message()));
    if (message.empty()) message = std::string(wire::to_string(r->error())) + ": " + call.path;
    ctx->out->reply(call.reply, wire::make_error_reply(r->error(), message, "path"));
    return true;
  }
  auto reply = make_fs_reply(*r);
  // init's own caps keep a result well within a message; a larger one (a frame of up to
  // max_frame_payload that is not init's doing) could not be published, and the client would
  // wait for an answer that never comes.
  if (reply.size() > wire::max_message_bytes)
    reply = wire::make_error_reply(wire::ErrorCode::internal,
                                   "fs." + std::string(wire::EnumNameFsOp(call.op)) + " " +
                                       call.path + ": the sandbox's answer is larger than a message",
                                   "path");
  ctx->out->reply(call.reply, std::move(reply));
  return true;
}

void file_ops::fail_all(const context_ptr& ctx, std::string_view why) {
  for (auto& [id, call] : pending_) {
    if (call.reply.empty()) continue;
    ctx->out->reply(call.reply,
                    wire::make_error_reply(wire::ErrorCode::unavailable,
                                           "fs." + std::string(wire::EnumNameFsOp(call.op)) + " " +
                                               call.path + ": abandoned: " + std::string(why)));
  }
  pending_.clear();
}

}  // namespace corral
