// The routes of files in a sandbox (docs/openapi.yaml): read, write, remove, list, mkdir.
#include <algorithm>
#include <cstdio>

#include "gateway/call.hpp"

namespace corral::gateway {

namespace {

// GET /v1/sandboxes/{id}/files: the whole file, never cut silently. One fs.read at a time (the
// executor's cap each); a file that one read holds is one ordinary response, a longer one a
// chunked response whose next read is asked for once the client has taken the last. An error
// after the first piece aborts the connection: the client sees a chunked body without its end,
// never a short file.
class file_reader : public std::enable_shared_from_this<file_reader> {
 public:
  file_reader(std::shared_ptr<api::call> c, std::string sb, std::string path)
      : c_(std::move(c)), sb_(std::move(sb)), path_(std::move(path)) {}

  void next() {
    client::fs_request_options o;
    o.path = path_;
    o.offset = offset_;
    o.length = 0;  // the executor's cap
    auto self = shared_from_this();
    c_->fs_op(sb_, "read", o, [self](client::fs_reply_view&& r) { self->on_piece(std::move(r)); },
              [self](const status& e) {
                if (!self->ch_) return self->c_->fail(e);
                std::fprintf(stderr, "corral-gateway: file read of %s cut: %s\n",
                             self->sb_.c_str(), e.message.c_str());
                self->ch_->abort();
              });
  }

 private:
  void on_piece(client::fs_reply_view&& r) {
    const bool last = r.eof || r.data.empty();
    if (!ch_) {
      if (last)
        return c_->send(http::status::ok, std::string(r.data.begin(), r.data.end()),
                        "application/octet-stream");
      c_->finish(200);
      ch_ = c_->res->begin_stream(http::status::ok, "application/octet-stream");
      auto self = shared_from_this();
      // The slot of the request stays taken until the stream ends.
      auto slot = std::move(c_->slot);
      stream_channel::handlers h;
      h.on_drained = [self] {
        if (!self->ended_) self->next();
      };
      h.on_closed = [self, slot] {
        self->ended_ = true;
        if (slot) slot->release();
        if (self->c_->current) self->c_->current->cancel();
        self->c_->current.reset();
        self->ch_.reset();  // ends the cycle channel → handlers → this
      };
      ch_->set_handlers(std::move(h));
    }
    if (ended_ || !ch_) return;
    offset_ = r.next_offset;
    ch_->send(false, std::string(r.data.begin(), r.data.end()));
    if (last) {
      ended_ = true;
      ch_->finish();
    }
  }

  std::shared_ptr<api::call> c_;
  std::string sb_, path_;
  uint64_t offset_ = 0;
  bool ended_ = false;
  std::shared_ptr<stream_channel> ch_;
};

// PUT /v1/sandboxes/{id}/files: the body in fs.write requests of at most `chunk` bytes, one at
// a time: the first truncates (or appends), each next one at the offset the last answered.
void write_file(const std::shared_ptr<api::call>& c, const std::string& sb, const std::string& path,
                bool append, std::size_t at, uint64_t offset, uint64_t written, std::size_t chunk) {
  const auto& data = c->req.body();
  client::fs_request_options o;
  o.path = path;
  o.append = append;
  o.truncate = !append && at == 0;
  o.offset = offset;
  const std::size_t n = std::min(chunk, data.size() - at);
  o.data.assign(data.begin() + static_cast<std::ptrdiff_t>(at),
                data.begin() + static_cast<std::ptrdiff_t>(at + n));
  c->fs_op(sb, "write", o, [c, sb, path, append, at, n, written, chunk](client::fs_reply_view&& r) {
    const uint64_t total = written + r.count;
    if (at + n >= c->req.body().size()) return c->ok({{"written", total}});
    write_file(c, sb, path, append, at + n, r.next_offset, total, chunk);
  });
}

// GET /v1/sandboxes/{id}/files/list: every page of entries.
void list_files(const std::shared_ptr<api::call>& c, const std::string& sb, const std::string& path,
                uint64_t offset, std::shared_ptr<json> entries) {
  client::fs_request_options o;
  o.path = path;
  o.offset = offset;
  c->fs_op(sb, "list", o, [c, sb, path, offset, entries](client::fs_reply_view&& r) {
    for (const auto& e : r.entries)
      entries->push_back({{"name", e.name}, {"type", wire::EnumNameFsFileType(e.type)},
                          {"size", e.size}, {"mode", e.mode}, {"mtime_ms", e.mtime_ms}});
    if (r.eof || r.next_offset <= offset) return c->ok({{"entries", *entries}});
    list_files(c, sb, path, r.next_offset, entries);
  });
}


}  // namespace

// GET /v1/sandboxes/{id}/files?path=
void api::file_read(const call_ptr& c) {
  auto r = std::make_shared<file_reader>(c, c->path[1], c->q("path"));
  c->on_strand([r] { r->next(); });
}

// PUT /v1/sandboxes/{id}/files?path=[&append=1]
void api::file_write(const call_ptr& c) {
  write_file(c, c->path[1], c->q("path"), c->flag("append"), 0, 0, 0, cfg_.max_stdin_chunk_bytes);
}

// DELETE /v1/sandboxes/{id}/files?path=[&recursive=1]
void api::file_remove(const call_ptr& c) {
  client::fs_request_options o;
  o.path = c->q("path");
  o.recursive = c->flag("recursive");
  c->fs_op(c->path[1], "remove", o, [c](client::fs_reply_view&& r) { c->ok({{"removed", r.count}}); });
}

// GET /v1/sandboxes/{id}/files/list?path=
void api::file_list(const call_ptr& c) {
  list_files(c, c->path[1], c->q("path"), 0, std::make_shared<json>(json::array()));
}

// POST /v1/sandboxes/{id}/files/mkdir?path=[&parents=1]
void api::file_mkdir(const call_ptr& c) {
  client::fs_request_options o;
  o.path = c->q("path");
  o.parents = c->flag("parents");
  c->fs_op(c->path[1], "mkdir", o,
           [c](client::fs_reply_view&&) { c->ok({{"ok", true}}, http::status::created); });
}

}  // namespace corral::gateway
