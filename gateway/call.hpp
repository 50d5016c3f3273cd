#pragma once
// One request of the HTTP API in flight (api::call), shared by the route files
// (gateway/routes_*.cpp): its answer, its NATS requests (ask, gather, sandbox_op, fs_op) and
// what stops when its client leaves; and the small HTTP helpers the routes share.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/dispatch.hpp>

#include "client/client.hpp"
#include "client/errors.hpp"
#include "client/replies.hpp"
#include "client/requests.hpp"
#include "gateway/api.hpp"
#include "gateway/json_mapping.hpp"
#include "gateway/nats_request.hpp"
#include "schemas/subjects.hpp"

namespace corral::gateway {

using clock_type = std::chrono::steady_clock;

// A gather (list, usage): every executor's answer within this long.
inline constexpr int64_t gather_ms = 300;
inline constexpr std::size_t gather_max_replies = 1024;
inline std::string_view sv(boost::beast::string_view v) { return {v.data(), v.size()}; }

// The answer of a method and path no route serves (docs/openapi.yaml lists the routes).
inline std::string route_unknown(const std::string& method, std::string_view target) {
  return "no such route: " + method + " " + std::string(target.substr(0, target.find('?')));
}

inline http_response json_response(http::status st, unsigned version, bool keep_alive, const json& body) {
  http_response r{st, version};
  r.set(http::field::content_type, "application/json");
  r.keep_alive(keep_alive);
  r.body() = dump(body);
  r.prepare_payload();
  return r;
}

inline http_response error_response(http::status st, unsigned version, const std::string& code,
                             const std::string& message) {
  return json_response(st, version, false, json{{"error", {{"code", code}, {"message", message}}}});
}

inline bool announces_body(const http::request_header<>& head) {
  if (head.find(http::field::transfer_encoding) != head.end()) return true;
  auto it = head.find(http::field::content_length);
  return it != head.end() && it->value() != "0";
}

inline std::string bearer_of(const http::request_header<>& head) {
  auto it = head.find(http::field::authorization);
  if (it == head.end()) return {};
  const std::string_view v = sv(it->value());
  constexpr std::string_view bearer = "Bearer ";
  if (v.substr(0, bearer.size()) != bearer) return {};
  return std::string(v.substr(bearer.size()));
}

// One request in flight. Its NATS calls, and everything after its first one, run on the
// connection's strand (res->executor()); handle() and route() run on a worker and only start
// them (ask, gather, or a post), touching nothing of the strand's state.
struct api::call : std::enable_shared_from_this<api::call> {
  http_request req;
  std::shared_ptr<responder> res;
  std::string route = "unknown";
  clock_type::time_point started = clock_type::now();
  std::vector<std::string> path;  // segments after /v1
  std::map<std::string, std::vector<std::string>> query;
  std::string tenant;
  token_entry who;
  bus::connection* conn = nullptr;
  client::reply_router* router = nullptr;
  metrics* m = nullptr;
  const gateway_config* cfg = nullptr;
  // In flight, or a stream (a long-poll's, given back with the answer; an output stream's is
  // moved into the stream). Released once, by the answer or by the client leaving.
  std::shared_ptr<tenant_slots::slot> slot;
  bool stream_slot = false;  // slot is a stream's (admit() saw a request that lasts)
  std::atomic<bool> answered{false};
  // On the strand:
  bool gone = false;                       // the client left before the answer
  std::shared_ptr<nats_request> current;   // the NATS call being waited for
  std::function<void()> on_abandon;        // what else stops when the client leaves

  std::string q(const std::string& k, const std::string& dflt = {}) const {
    auto it = query.find(k);
    return it == query.end() || it->second.empty() ? dflt : it->second.front();
  }
  bool flag(const std::string& k) const {
    auto v = q(k);
    return v == "1" || v == "true" || v == "yes";
  }
  void send(http::status st, std::string body, const char* type = "application/json") {
    http_response r{st, req.version()};
    r.set(http::field::content_type, type);
    if (st == http::status::too_many_requests)
      r.set(http::field::retry_after, std::to_string(cfg->retry_after_s));
    r.keep_alive(req.keep_alive());
    r.body() = std::move(body);
    r.prepare_payload();
    finish(static_cast<unsigned>(st));
    if (slot) slot->release();
    res->reply(std::move(r));
  }
  void ok(const json& j, http::status st = http::status::ok) { send(st, dump(j)); }
  void fail(wire::ErrorCode code, const std::string& message) {
    send(status_of(code), dump(error_json(code, message)));
  }
  void fail(const status& e) { fail(e.code, e.message); }
  // The body as a JSON object (an empty body: {}); false, with 400 answered, when it is not one.
  bool json_body(json& out) {
    if (req.body().empty()) {
      out = json::object();
      return true;
    }
    out = json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
    if (out.is_discarded() || !out.is_object()) {
      fail(wire::ErrorCode::invalid_argument, "the body must be a JSON object");
      return false;
    }
    return true;
  }
  void finish(unsigned status) {
    if (answered.exchange(true)) return;
    m->observe(route, status, std::chrono::duration<double>(clock_type::now() - started).count());
  }

  // On the strand: the client left before its answer. Its NATS call is dropped (a late answer
  // goes nowhere), its slot given back, and what else was started for it stopped.
  void abandon() {
    if (gone || answered) return;
    gone = true;
    finish(499);  // nginx's "client closed request"
    if (current) current->cancel();
    current.reset();
    if (slot) slot->release();
    if (auto f = std::move(on_abandon)) f();
    on_abandon = nullptr;
  }

  // Runs f on the strand unless the client has left.
  void on_strand(std::function<void()> f) {
    boost::asio::dispatch(res->executor(), [self = shared_from_this(), f = std::move(f)] {
      if (!self->gone) f();
    });
  }

  using reply_then = std::function<void(bus::message&&)>;
  using error_then = std::function<void(const status&)>;
  // One NATS request, from any thread; `then` gets its reply on the strand. An ErrorReply, or
  // the wire error of a request of this kind that got no answer (client::wire_error), goes to
  // on_error, or answers the call.
  void ask(std::string subject, std::vector<uint8_t> payload, int64_t timeout_ms,
           client::request_kind kind, std::string what, reply_then then, error_then on_error = {}) {
    on_strand([self = shared_from_this(), subject = std::move(subject), payload = std::move(payload),
               timeout_ms, kind, what = std::move(what), then = std::move(then),
               on_error = std::move(on_error)]() mutable {
      auto got = std::make_shared<std::optional<bus::message>>();
      self->current = nats_request::start(
          *self->router, self->res->executor(), subject, payload, timeout_ms,
          [got](bus::message&& m) {
            *got = std::move(m);
            return true;
          },
          [self, got, kind, what = std::move(what), then = std::move(then),
           on_error = std::move(on_error)](nats_request::end e, const std::string& detail) {
            self->current.reset();
            std::optional<status> err;
            if (e == nats_request::end::done) {
              err = client::error_in(**got);
              if (!err) return then(std::move(**got));
            } else {
              err = client::wire_error(kind, nats_request::failure_of(e), what, detail);
            }
            if (on_error) on_error(*err);
            else self->fail(*err);
          });
    });
  }

  // A sandbox operation whose answer is a SandboxReply.
  void sandbox_op(const std::string& sb, const std::string& op, std::vector<uint8_t> payload,
                  int64_t timeout_ms, std::function<void(client::sandbox_view&&)> then,
                  error_then on_error = {}) {
    ask(wire::subjects::sandbox_op(tenant, sb, op), std::move(payload), timeout_ms,
        client::request_kind::sandbox, sb,
        [self = shared_from_this(), then = std::move(then)](bus::message&& m) {
          auto v = client::sandbox_reply_of(m.data.data(), m.data.size());
          if (!v) return self->fail(wire::ErrorCode::malformed, "unexpected reply");
          then(std::move(*v));
        },
        std::move(on_error));
  }

  // A file operation whose answer is an FsReply.
  void fs_op(const std::string& sb, const std::string& op, const client::fs_request_options& o,
             std::function<void(client::fs_reply_view&&)> then, error_then on_error = {}) {
    ask(wire::subjects::sandbox_op(tenant, sb, "fs." + op), client::fs_request_bytes(o),
        cfg->request_timeout_ms, client::request_kind::sandbox, sb,
        [self = shared_from_this(), then = std::move(then), op](bus::message&& m) {
          auto v = client::fs_reply_of(m.data.data(), m.data.size());
          if (!v) return self->fail(wire::ErrorCode::malformed, "unexpected reply to fs." + op);
          then(std::move(*v));
        },
        std::move(on_error));
  }

  // Scatter/gather: every answer within gather_ms (no executor answering is none).
  void gather(std::string subject, std::vector<uint8_t> payload,
              std::function<void(std::vector<bus::message>&&)> then) {
    on_strand([self = shared_from_this(), subject = std::move(subject), payload = std::move(payload),
               then = std::move(then)]() mutable {
      auto all = std::make_shared<std::vector<bus::message>>();
      self->current = nats_request::start(
          *self->router, self->res->executor(), subject, payload, gather_ms,
          [all](bus::message&& m) {
            all->push_back(std::move(m));
            return all->size() >= gather_max_replies;
          },
          [self, all, then = std::move(then)](nats_request::end e, const std::string& detail) {
            self->current.reset();
            if (e == nats_request::end::failed)
              return self->fail(wire::ErrorCode::unavailable, "NATS: " + detail);
            if (e == nats_request::end::no_responders) all->clear();
            then(std::move(*all));
          });
    });
  }

  // Fire and forget, on the strand or not: ends a sandbox the call made (run), also after the
  // client left.
  void terminate_quietly(const std::string& sb) {
    boost::asio::dispatch(res->executor(), [self = shared_from_this(), sb] {
      (void)nats_request::start(*self->router, self->res->executor(),
                                wire::subjects::sandbox_op(self->tenant, sb, "terminate"), {},
                                self->cfg->request_timeout_ms, nullptr, nullptr);
    });
  }
};

}  // namespace corral::gateway
