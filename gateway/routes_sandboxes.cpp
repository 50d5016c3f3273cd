// The routes of sandboxes (docs/openapi.yaml): create, list, info, terminate, wait, tags, and the
// tenant's usage.
#include <algorithm>

#include "gateway/call.hpp"

namespace corral::gateway {

namespace {
// Answers the call with the sandbox.
std::function<void(client::sandbox_view&&)> sandbox_answer(const std::shared_ptr<api::call>& c,
                                                           http::status st = http::status::ok) {
  return [c, st](client::sandbox_view&& v) { c->ok(sandbox_json(v), st); };
}
}  // namespace

// GET /v1/usage
void api::usage(const call_ptr& c) {
  c->gather(wire::subjects::usage(c->tenant), client::usage_request_bytes(c->q("sandbox_id")),
            [c](std::vector<bus::message>&& replies) {
              client::usage_report report;
              for (const auto& m : replies) client::add_usage_reply(m.data.data(), m.data.size(), report);
              std::sort(report.sandboxes.begin(), report.sandboxes.end(),
                        [](const auto& a, const auto& b) { return a.sandbox_id < b.sandbox_id; });
              json sbs = json::array();
              for (const auto& s : report.sandboxes)
                sbs.push_back({{"sandbox_id", s.sandbox_id}, {"node", s.node},
                               {"cpu_core_seconds", s.usage.cpu_core_seconds},
                               {"gib_seconds", s.usage.gib_seconds}, {"cost", s.usage.cost}});
              const auto& t = report.total;
              c->ok({{"tenant", c->tenant}, {"sandboxes", sbs},
                     {"total", {{"cpu_core_seconds", t.cpu_core_seconds},
                                {"gib_seconds", t.gib_seconds}, {"cost", t.cost}}}});
            });
}

// POST /v1/sandboxes
void api::sandbox_create(const call_ptr& c) {
  json body;
  if (!c->json_body(body)) return;
  auto opts = create_options_of(body);
  if (!opts) return c->fail(opts.error());
  c->ask(wire::subjects::create(c->tenant, cfg_.pool), client::create_request_bytes(*opts),
         cfg_.request_timeout_ms, client::request_kind::create, cfg_.pool, [c](bus::message&& m) {
           auto v = client::sandbox_reply_of(m.data.data(), m.data.size());
           if (!v) return c->fail(wire::ErrorCode::malformed, "unexpected reply");
           c->ok(sandbox_json(*v), http::status::created);
         });
}

// GET /v1/sandboxes
void api::sandbox_list(const call_ptr& c) {
  pairs tags;
  if (auto it = c->query.find("tag"); it != c->query.end())
    for (const auto& t : it->second) {
      auto colon = t.find(':');
      if (colon == std::string::npos || colon == 0)
        return c->fail(wire::ErrorCode::invalid_argument, "tag must be key:value");
      tags.emplace_back(t.substr(0, colon), t.substr(colon + 1));
    }
  c->gather(wire::subjects::list(c->tenant), client::list_request_bytes(c->flag("all"), c->q("name"), tags),
            [c](std::vector<bus::message>&& replies) {
              std::vector<client::sandbox_view> all;
              for (const auto& m : replies) client::add_sandbox_list(m.data.data(), m.data.size(), all);
              std::sort(all.begin(), all.end(),
                        [](const auto& a, const auto& b) { return a.created_at_ms < b.created_at_ms; });
              json arr = json::array();
              for (const auto& v : all) arr.push_back(sandbox_json(v));
              c->ok({{"sandboxes", arr}});
            });
}

// GET /v1/sandboxes/{id}
void api::sandbox_info(const call_ptr& c) {
  c->sandbox_op(c->path[1], "info", {}, cfg_.request_timeout_ms, sandbox_answer(c));
}

// POST /v1/sandboxes/{id}/terminate[?wait=1]
void api::sandbox_terminate(const call_ptr& c) {
  const std::string sb = c->path[1];
  const bool wait = c->flag("wait");
  if (wait && !take_stream(c)) return;  // a long-poll
  const int64_t max_wait = cfg_.max_wait_ms;
  c->sandbox_op(sb, "terminate", {}, cfg_.request_timeout_ms, [c, sb, wait, max_wait](client::sandbox_view&& v) {
    if (!wait || v.has_return_code) return c->ok(sandbox_json(v));
    auto first = std::make_shared<client::sandbox_view>(std::move(v));
    c->sandbox_op(sb, "wait", client::sandbox_query_bytes(max_wait, false), max_wait + 5000,
                  [c](client::sandbox_view&& w) { c->ok(sandbox_json(w)); },
                  [c, first](const status&) { c->ok(sandbox_json(*first)); });
  });
}

// GET /v1/sandboxes/{id}/wait[?timeout=S&ready=1]
void api::sandbox_wait(const call_ptr& c) {
  int64_t timeout_ms = 60'000;
  if (auto t = c->q("timeout"); !t.empty()) {
    auto ms = seconds_param_ms(t, cfg_.max_wait_ms);
    if (!ms) return c->fail(ms.code(), "timeout " + ms.error().message);
    timeout_ms = *ms;
  } else if (timeout_ms > cfg_.max_wait_ms) {
    return c->fail(wire::ErrorCode::invalid_argument, "timeout out of range");
  }
  if (!take_stream(c)) return;
  c->sandbox_op(c->path[1], "wait", client::sandbox_query_bytes(timeout_ms, c->flag("ready")),
                timeout_ms + 5000, sandbox_answer(c));
}

// GET or PUT /v1/sandboxes/{id}/tags
void api::sandbox_tags(const call_ptr& c) {
  std::vector<uint8_t> payload;
  if (c->req.method() == http::verb::put) {
    json body;
    if (!c->json_body(body)) return;
    auto tags = pairs_of(body.contains("tags") ? body : json{{"tags", body}}, "tags");
    if (!tags) return c->fail(tags.error());
    payload = client::set_tags_bytes(*tags);
  }
  c->sandbox_op(c->path[1], "tags", std::move(payload), cfg_.request_timeout_ms, sandbox_answer(c));
}

}  // namespace corral::gateway
