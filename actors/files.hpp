#pragma once
// File operations on a running sandbox (corral.v1.{t}.sbx.{sb}.fs.{op}), carried out inside the
// sandbox by corral-init, so host-side code never resolves a path of the sandbox's tree
// (RELIABILITY.md P13). One file_ops per sandbox actor; used only on that actor's thread.
#include <string_view>

#include "actors/context.hpp"
#include "actors/messages.hpp"

namespace corral {

class file_ops {
 public:
  // A request on ...fs.{op}. `link` is the sandbox's link to init (null when none); `running`
  // whether the sandbox is running. Replies on req.reply now or when init answers.
  void on_request(const context_ptr& ctx, init_link* link, bool running, bus_request& req);
  // An event from init. Returns true when it was a file-operation event (consumed).
  bool on_event(const context_ptr& ctx, const wire::InitEvent& event);
  // The sandbox ended or its link closed: every call still waiting for init is answered with
  // an error.
  void fail_all(const context_ptr& ctx, std::string_view why);
};

}  // namespace corral
