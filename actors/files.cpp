#include "actors/files.hpp"

namespace corral {

void file_ops::on_request(const context_ptr& ctx, init_link*, bool, bus_request& req) {
  if (!req.reply.empty())
    ctx->out->publish(req.reply, wire::make_error_reply(wire::ErrorCode::unavailable,
                                                        "file operations are not available yet"));
}

bool file_ops::on_event(const context_ptr&, const wire::InitEvent&) { return false; }

void file_ops::fail_all(const context_ptr&, std::string_view) {}

}  // namespace corral
