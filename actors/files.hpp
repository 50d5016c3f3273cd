#pragma once
// File operations on a running sandbox (verb::fs: read, write, list, stat, mkdir, remove), carried out inside the
// sandbox by corral-init, so host-side code never resolves a path of the sandbox's tree
// (docs/architecture.md). One file_ops per sandbox actor; used only on that actor's thread.
//
// Guarantees:
// - Every request with a reply handle is answered exactly once: at once with an ErrorReply when
//   it is refused (invalid_argument: a path that is not absolute, holds a NUL byte or is over max_path_bytes; too_large: a read length or write data
//   over fs_max_read_bytes / fs_max_write_bytes; failed_precondition: the sandbox is not running;
//   resource_exhausted: fs_max_pending_calls are waiting; unavailable: the link refused it), or
//   later with init's FsResult turned into an FsReply or a typed ErrorReply (internal when the
//   FsReply would not fit one message), or by fail_all (unavailable).
// - List and remove entry counts are clamped to fs_max_list_entries / fs_max_remove_entries.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "actors/context.hpp"
#include "actors/messages.hpp"

namespace corral {

class file_ops {
 public:
  // A file operation. `link` is the sandbox's link to init (null when none); `running`
  // whether the sandbox is running. Answers req.reply now or when init answers.
  void on_request(const context_ptr& ctx, init_link* link, bool running, const verb::fs& req);
  // An event from init. Returns true when it was a file-operation event (consumed).
  bool on_event(const context_ptr& ctx, const wire::InitEvent& event);
  // The sandbox ended or its link closed: every call still waiting for init is answered with
  // an error.
  void fail_all(const context_ptr& ctx, std::string_view why);

 private:
  struct pending_call {
    reply_handle reply;  // may be empty: nobody to answer
    wire::FsOp op = wire::FsOp::none;
    std::string path;
  };
  std::map<uint64_t, pending_call> pending_;  // by call id
  uint64_t next_call_id_ = 1;
};

}  // namespace corral
