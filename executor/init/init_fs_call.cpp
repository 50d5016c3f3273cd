// corral-init: FsCall -> one FsResult (see init_event_loop.hpp). The syscalls are in
// fs_unsafe.cpp; here: validation, limits, errno -> ErrorCode, and the answer.
#include <cerrno>
#include <cstring>
#include <string>

#include "executor/init/init_event_loop.hpp"
#include "executor/init/init_fs.hpp"
#include "schemas/codec.hpp"

namespace corral::init {
namespace {

// Longest path init accepts (PATH_MAX).
constexpr std::size_t max_path_bytes = 4096;

wire::ErrorCode code_of(int error_number) {
  switch (error_number) {
    case ENOENT:
      return wire::ErrorCode::not_found;
    case EEXIST:
      return wire::ErrorCode::already_exists;
    case EISDIR:
      return wire::ErrorCode::is_a_directory;
    case ENOTDIR:
      return wire::ErrorCode::not_a_directory;
    case ENOTEMPTY:
      return wire::ErrorCode::not_empty;
    case EACCES:
    case EPERM:
    case EROFS:
    case ETXTBSY:
      return wire::ErrorCode::permission_denied;
    case EFBIG:
      return wire::ErrorCode::too_large;
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return wire::ErrorCode::resource_exhausted;
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
    case ENXIO:
    case EBUSY:
      return wire::ErrorCode::invalid_argument;
    default:
      return wire::ErrorCode::internal;
  }
}

const char* op_name(wire::FsOp op) {
  const char* name = wire::EnumNameFsOp(op);
  return (name == nullptr || *name == '\0') ? "fs" : name;
}

}  // namespace

void init_event_loop::on_fs_call(const wire::FsCall& call) {
  const uint64_t id = call.call_id();
  const std::string path(wire::str(call.path()));
  fbb_.Clear();
  auto fail = [&](wire::ErrorCode code, int error_number, const std::string& message) {
    fbb_.Clear();
    const auto text = fbb_.CreateString(message);
    wire::FsResultBuilder b(fbb_);
    b.add_call_id(id);
    b.add_error(code);
    b.add_error_number(error_number);
    b.add_message(text);
    finish_event(wire::Event::FsResult, b.Finish().Union());
  };
  auto fail_errno = [&](const fs_error& e) {
    const std::string why = e.reason.empty() ? std::strerror(e.error_number) : e.reason;
    fail(code_of(e.error_number), e.error_number,
         std::string(op_name(call.op())) + " " + path + ": " + why);
  };
  if (path.empty() || path.front() != '/' || std::memchr(path.data(), '\0', path.size()) != nullptr)
    return fail(wire::ErrorCode::invalid_argument, EINVAL,
                "path must be absolute and free of NUL bytes: \"" + path + "\"");
  if (path.size() > max_path_bytes)
    return fail(wire::ErrorCode::invalid_argument, ENAMETOOLONG, "path longer than 4096 bytes");

  auto stat_of = [&](const fs_entry& e) {
    const auto name = fbb_.CreateString(e.name);
    return wire::CreateFsEntry(fbb_, name, e.type, e.size, e.mode, e.mtime_ms);
  };
  switch (call.op()) {
    case wire::FsOp::read: {
      std::size_t max = limits_.fs_max_read_bytes;
      if (call.length() != 0 && call.length() < max) max = static_cast<std::size_t>(call.length());
      std::vector<uint8_t> data;
      bool eof = false;
      fs_entry file;
      if (auto e = fs_read(path, call.offset(), max, data, eof, file); !e.ok()) return fail_errno(e);
      const auto bytes = fbb_.CreateVector(data);
      const auto st = stat_of(file);
      wire::FsResultBuilder b(fbb_);
      b.add_call_id(id);
      b.add_data(bytes);
      b.add_stat(st);
      b.add_eof(eof);
      b.add_next_offset(call.offset() + data.size());
      b.add_count(data.size());
      return finish_event(wire::Event::FsResult, b.Finish().Union());
    }
    case wire::FsOp::write: {
      fs_write_request r;
      r.offset = call.offset();
      if (call.data() != nullptr) {
        r.data = call.data()->data();
        r.size = call.data()->size();
      }
      r.create = call.create();
      r.truncate = call.truncate();
      r.append = call.append();
      r.exclusive = call.exclusive();
      r.mode = call.mode() == 0 ? 0644 : call.mode();
      uint64_t written = 0, next = 0;
      fs_entry file;
      if (auto e = fs_write(path, r, written, next, file); !e.ok()) return fail_errno(e);
      const auto st = stat_of(file);
      wire::FsResultBuilder b(fbb_);
      b.add_call_id(id);
      b.add_stat(st);
      b.add_next_offset(next);
      b.add_count(written);
      return finish_event(wire::Event::FsResult, b.Finish().Union());
    }
    case wire::FsOp::list: {
      std::size_t max = limits_.fs_max_list_entries;
      if (call.length() != 0 && call.length() < max) max = static_cast<std::size_t>(call.length());
      std::vector<fs_entry> entries;
      bool eof = false;
      if (auto e = fs_list(path, call.offset(), max, entries, eof); !e.ok()) return fail_errno(e);
      std::vector<flatbuffers::Offset<wire::FsEntry>> offsets;
      offsets.reserve(entries.size());
      for (const auto& entry : entries) offsets.push_back(stat_of(entry));
      const auto list = fbb_.CreateVector(offsets);
      wire::FsResultBuilder b(fbb_);
      b.add_call_id(id);
      b.add_entries(list);
      b.add_eof(eof);
      b.add_next_offset(call.offset() + entries.size());
      b.add_count(entries.size());
      return finish_event(wire::Event::FsResult, b.Finish().Union());
    }
    case wire::FsOp::stat: {
      fs_entry entry;
      if (auto e = fs_stat(path, entry); !e.ok()) return fail_errno(e);
      const auto st = stat_of(entry);
      wire::FsResultBuilder b(fbb_);
      b.add_call_id(id);
      b.add_stat(st);
      return finish_event(wire::Event::FsResult, b.Finish().Union());
    }
    case wire::FsOp::mkdir: {
      const uint32_t mode = call.mode() == 0 ? 0755 : call.mode();
      if (auto e = fs_mkdir(path, call.parents(), call.exclusive(), mode); !e.ok())
        return fail_errno(e);
      wire::FsResultBuilder b(fbb_);
      b.add_call_id(id);
      return finish_event(wire::Event::FsResult, b.Finish().Union());
    }
    case wire::FsOp::remove: {
      std::size_t max = limits_.fs_max_remove_entries;
      if (call.length() != 0 && call.length() < max) max = static_cast<std::size_t>(call.length());
      uint64_t removed = 0;
      bool done = false;
      if (auto e = fs_remove(path, call.recursive(), max, removed, done); !e.ok())
        return fail_errno(e);
      wire::FsResultBuilder b(fbb_);
      b.add_call_id(id);
      b.add_eof(done);
      b.add_count(removed);
      return finish_event(wire::Event::FsResult, b.Finish().Union());
    }
    default:
      return fail(wire::ErrorCode::invalid_argument, EINVAL,
                  "unknown file operation " + std::to_string(static_cast<int>(call.op())));
  }
}

}  // namespace corral::init
