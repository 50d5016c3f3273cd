#include "gateway/api.hpp"

#include <string>

#include "gateway/call.hpp"
#include "schemas/ids.hpp"

namespace corral::gateway {

namespace {

// What admit() found in a request's headers, handed to handle() with the request.
struct admitted {
  token_entry who;
  std::shared_ptr<tenant_slots::slot> slot;
  bool stream = false;  // the slot is a stream's
};

// Whether a /v1 request lasts (an output stream, a WebSocket, a long-poll): it then takes a
// stream slot from its headers on, instead of one in flight.
bool lasts(http::verb method, std::string_view path, std::string_view query) {
  std::vector<std::string_view> seg;
  for (std::size_t i = 4; i <= path.size();) {
    auto slash = path.find('/', i);
    if (slash == std::string_view::npos) slash = path.size();
    seg.push_back(path.substr(i, slash - i));
    i = slash + 1;
  }
  if (method == http::verb::post && seg.size() == 1 && seg[0] == "run") return true;
  if (seg.empty() || seg[0] != "sandboxes") return false;
  if (method == http::verb::get && seg.size() == 3 && seg[2] == "wait") return true;
  if (method == http::verb::get && seg.size() == 5 && seg[2] == "execs" &&
      (seg[4] == "output" || seg[4] == "ws"))
    return true;
  if (method == http::verb::post && seg.size() == 3 && seg[2] == "terminate") {
    for (std::string_view w : {"wait=1", "wait=true", "wait=yes"})
      for (std::size_t at = query.find(w); at != std::string_view::npos; at = query.find(w, at + 1))
        if ((at == 0 || query[at - 1] == '&') &&
            (at + w.size() == query.size() || query[at + w.size()] == '&'))
          return true;
  }
  return false;
}

}  // namespace

api::api(const gateway_config& cfg, token_store& tokens, metrics& m)
    : cfg_(cfg), tokens_(tokens), metrics_(m), slots_(cfg.max_open_streams), links_(cfg) {}

admission api::admit(const http::request_header<>& head) {
  admission a;
  const std::string_view target = sv(head.target());
  const std::string_view path = target.substr(0, target.find('?'));
  const unsigned v = head.version();
  const std::string method(head.method_string());
  if (path == "/healthz" || path == "/metrics") {
    if (head.method() != http::verb::get) {
      a.refuse = error_response(http::status::not_found, v, "not_found", route_unknown(method, target));
    } else if (announces_body(head)) {
      a.refuse = error_response(http::status::bad_request, v, "invalid_argument", "no body expected");
    } else if (path == "/metrics") {
      // Gateway-wide figures: an operator's token only (or the metrics listener).
      auto who = tokens_.lookup(bearer_of(head));
      if (!who) {
        a.refuse = error_response(http::status::unauthorized, v, "unauthenticated",
                                  "/metrics needs an operator token (role=admin)");
        a.refuse->set(http::field::www_authenticate, "Bearer");
      } else if (!who->admin) {
        a.refuse = error_response(http::status::forbidden, v, "permission_denied",
                                  "/metrics needs an operator token (role=admin)");
      }
    }
    return a;
  }
  if (path.substr(0, 4) != "/v1/") {
    a.refuse = error_response(http::status::not_found, v, "not_found", route_unknown(method, target));
    return a;
  }
  // Authentication before routing, and before the body: without a token every /v1 path
  // answers 401.
  auto who = tokens_.lookup(bearer_of(head));
  if (!who) {
    a.refuse = error_response(http::status::unauthorized, v, "unauthenticated",
                              "missing or unknown bearer token");
    a.refuse->set(http::field::www_authenticate, "Bearer");
    return a;
  }
  if (who->admin) {
    a.refuse = error_response(http::status::forbidden, v, "permission_denied",
                              "an operator token is for /metrics only");
    return a;
  }
  const auto qpos = target.find('?');
  const bool stream = lasts(head.method(), path,
                            qpos == std::string_view::npos ? std::string_view() : target.substr(qpos + 1));
  bool all_full = false;
  auto slot = stream ? slots_.take(who->tenant, tenant_slots::kind::stream,
                                   who->max_streams.value_or(cfg_.tenant_max_streams), &all_full)
                     : slots_.take(who->tenant, tenant_slots::kind::inflight,
                                   who->max_inflight.value_or(cfg_.tenant_max_inflight));
  if (!slot) {
    ++metrics_.tenant_limited;
    a.refuse = error_response(http::status::too_many_requests, v, "resource_exhausted",
                              !stream ? "too many requests of this tenant in flight"
                              : all_full ? "too many open streams on this gateway"
                                         : "too many open streams of this tenant");
    a.refuse->set(http::field::retry_after, std::to_string(cfg_.retry_after_s));
    return a;
  }
  a.hold = std::make_shared<admitted>(admitted{std::move(*who), std::move(slot), stream});
  return a;
}

void api::handle(http_request&& req, std::shared_ptr<responder> res, std::shared_ptr<void> hold) {
  const std::string target(req.target());
  const auto qpos = target.find('?');
  const std::string path = target.substr(0, qpos);
  if (path == "/healthz") return answer_health(res, req.version(), req.keep_alive());
  if (path == "/metrics") return answer_metrics(res, req.version(), req.keep_alive());
  auto c = std::make_shared<call>();
  c->req = std::move(req);
  c->res = std::move(res);
  c->m = &metrics_;
  c->cfg = &cfg_;
  auto adm = std::static_pointer_cast<admitted>(hold);
  if (!adm) {  // admit() lets no /v1 request through without one
    c->route = "unauthenticated";
    return c->fail(wire::ErrorCode::internal, "request not admitted");
  }
  c->who = adm->who;
  c->tenant = adm->who.tenant;
  c->slot = std::move(adm->slot);
  c->stream_slot = adm->stream;
  if (qpos != std::string::npos) {
    std::string_view qs(target);
    qs.remove_prefix(qpos + 1);
    while (!qs.empty()) {
      auto amp = qs.find('&');
      auto part = qs.substr(0, amp);
      auto eq = part.find('=');
      c->query[percent_decode(part.substr(0, eq))].push_back(
          eq == std::string_view::npos ? std::string() : percent_decode(part.substr(eq + 1)));
      if (amp == std::string_view::npos) break;
      qs.remove_prefix(amp + 1);
    }
  }
  for (std::size_t i = 4; i <= path.size();) {
    auto slash = path.find('/', i);
    if (slash == std::string::npos) slash = path.size();
    c->path.push_back(percent_decode(std::string_view(path).substr(i, slash - i)));
    i = slash + 1;
  }
  std::string why;
  auto* link = links_.get(c->tenant, &why);
  if (link == nullptr) return c->fail(wire::ErrorCode::unavailable, "NATS: " + why);
  c->conn = link->conn.get();
  c->router = link->router.get();
  route(c);
  // After route(): the client leaving is handled on the strand, after everything route() did
  // (a client already gone gets it at once).
  std::weak_ptr<call> weak = c;
  c->res->on_client_gone([weak] {
    if (auto c = weak.lock()) c->abandon();
  });
}


const std::vector<api::route_entry>& api::routes() {
  using v = http::verb;
  static const std::vector<route_entry> table = {
      {v::get, {"usage"}, "/v1/usage", &api::usage},
      {v::post, {"run"}, "/v1/run", &api::run},
      {v::post, {"sandboxes"}, "/v1/sandboxes", &api::sandbox_create},
      {v::get, {"sandboxes"}, "/v1/sandboxes", &api::sandbox_list},
      {v::get, {"sandboxes", "*"}, "/v1/sandboxes/{id}", &api::sandbox_info},
      {v::post, {"sandboxes", "*", "terminate"}, "/v1/sandboxes/{id}/terminate", &api::sandbox_terminate},
      {v::get, {"sandboxes", "*", "wait"}, "/v1/sandboxes/{id}/wait", &api::sandbox_wait},
      {v::get, {"sandboxes", "*", "tags"}, "/v1/sandboxes/{id}/tags", &api::sandbox_tags},
      {v::put, {"sandboxes", "*", "tags"}, "/v1/sandboxes/{id}/tags", &api::sandbox_tags},
      {v::post, {"sandboxes", "*", "exec"}, "/v1/sandboxes/{id}/exec", &api::exec_start},
      {v::get, {"sandboxes", "*", "execs", "*"}, "/v1/sandboxes/{id}/execs/{eid}", &api::exec_status},
      {v::get, {"sandboxes", "*", "execs", "*", "output"}, "/v1/sandboxes/{id}/execs/{eid}/output",
       &api::exec_output},
      {v::get, {"sandboxes", "*", "execs", "*", "ws"}, "/v1/sandboxes/{id}/execs/{eid}/ws",
       &api::exec_websocket},
      {v::post, {"sandboxes", "*", "execs", "*", "stdin"}, "/v1/sandboxes/{id}/execs/{eid}/stdin",
       &api::exec_stdin},
      {v::post, {"sandboxes", "*", "execs", "*", "signal"}, "/v1/sandboxes/{id}/execs/{eid}/signal",
       &api::exec_signal},
      {v::get, {"sandboxes", "*", "files"}, "/v1/sandboxes/{id}/files", &api::file_read},
      {v::put, {"sandboxes", "*", "files"}, "/v1/sandboxes/{id}/files", &api::file_write},
      {v::delete_, {"sandboxes", "*", "files"}, "/v1/sandboxes/{id}/files", &api::file_remove},
      {v::get, {"sandboxes", "*", "files", "list"}, "/v1/sandboxes/{id}/files/list", &api::file_list},
      {v::post, {"sandboxes", "*", "files", "mkdir"}, "/v1/sandboxes/{id}/files/mkdir", &api::file_mkdir},
  };
  return table;
}

void api::route(const call_ptr& c) {
  const auto& p = c->path;
  // What every route under a sandbox, an exec or the files needs, checked first whatever the
  // method: an unknown sandbox or exec is 404, a file operation without a path 400.
  if (p.size() >= 2 && p[0] == "sandboxes" && !wire::valid_id(p[1], "sb-"))
    return c->fail(wire::ErrorCode::not_found, "no such sandbox: " + p[1]);
  if (p.size() >= 4 && p[0] == "sandboxes" && p[2] == "execs" && !wire::valid_token(p[3]))
    return c->fail(wire::ErrorCode::not_found, "no such exec: " + p[3]);
  if (p.size() >= 3 && p[0] == "sandboxes" && p[2] == "files" && c->q("path").empty())
    return c->fail(wire::ErrorCode::invalid_argument, "path is required");
  const auto method = c->req.method();
  for (const auto& r : routes()) {
    if (r.method != method || r.path.size() != p.size()) continue;
    bool match = true;
    for (std::size_t i = 0; i < p.size() && match; ++i) match = r.path[i] == "*" || r.path[i] == p[i];
    if (!match) continue;
    c->route = r.name;
    // The routes answer bad input with a status (gateway/json_mapping.hpp); what may still throw
    // here is the standard library out of resources (bad_alloc), answered as internal.
    try {
      (this->*r.run)(c);
    } catch (const std::exception& e) {
      c->fail(wire::ErrorCode::internal, e.what());
    }
    return;
  }
  c->fail(wire::ErrorCode::not_found, route_unknown(std::string(c->req.method_string()), sv(c->req.target())));
}

bool api::take_stream(const std::shared_ptr<call>& c) {
  if (c->stream_slot) return true;  // taken from the headers (admit)
  bool all_full = false;
  auto s = slots_.take(c->tenant, tenant_slots::kind::stream,
                       c->who.max_streams.value_or(cfg_.tenant_max_streams), &all_full);
  if (!s) {
    ++metrics_.tenant_limited;
    c->fail(wire::ErrorCode::resource_exhausted,
            all_full ? "too many open streams on this gateway"
                     : "too many open streams of this tenant");
    return false;
  }
  // Streams count as streams, not as requests in flight.
  if (c->slot) c->slot->release();
  c->slot = std::move(s);
  c->stream_slot = true;
  return true;
}

pump_limits api::limits() const {
  pump_limits l;
  l.max_queued_bytes = cfg_.max_stream_queued_bytes;
  l.request_timeout_ms = cfg_.request_timeout_ms;
  return l;
}


}  // namespace corral::gateway
