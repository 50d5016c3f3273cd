#include "gateway/api.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <limits>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>

#include "client/base64.hpp"
#include "client/client.hpp"
#include "client/errors.hpp"
#include "client/replies.hpp"
#include "client/requests.hpp"
#include "gateway/json_mapping.hpp"
#include "gateway/nats_request.hpp"
#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral::gateway {

namespace {

using clock_type = std::chrono::steady_clock;

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

// A gather (list, usage): every executor's answer within this long.
constexpr int64_t gather_ms = 300;
constexpr std::size_t gather_max_replies = 1024;

}  // namespace

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

namespace {
std::string_view sv(boost::beast::string_view v) { return {v.data(), v.size()}; }

// The answer of a method and path no route serves (docs/openapi.yaml lists the routes).
std::string route_unknown(const std::string& method, std::string_view target) {
  return "no such route: " + method + " " + std::string(target.substr(0, target.find('?')));
}

http_response json_response(http::status st, unsigned version, bool keep_alive, const json& body) {
  http_response r{st, version};
  r.set(http::field::content_type, "application/json");
  r.keep_alive(keep_alive);
  r.body() = dump(body);
  r.prepare_payload();
  return r;
}

http_response error_response(http::status st, unsigned version, const std::string& code,
                             const std::string& message) {
  return json_response(st, version, false, json{{"error", {{"code", code}, {"message", message}}}});
}

bool announces_body(const http::request_header<>& head) {
  if (head.find(http::field::transfer_encoding) != head.end()) return true;
  auto it = head.find(http::field::content_length);
  return it != head.end() && it->value() != "0";
}

std::string bearer_of(const http::request_header<>& head) {
  auto it = head.find(http::field::authorization);
  if (it == head.end()) return {};
  const std::string_view v = sv(it->value());
  constexpr std::string_view bearer = "Bearer ";
  if (v.substr(0, bearer.size()) != bearer) return {};
  return std::string(v.substr(bearer.size()));
}
}  // namespace

api::api(const gateway_config& cfg, token_store& tokens, metrics& m)
    : cfg_(cfg), tokens_(tokens), metrics_(m), slots_(cfg.max_open_streams) {}

bus::options api::nats_options() const {
  bus::options o;
  o.urls = {cfg_.nats_url};
  o.name = "corral-gateway";
  o.nkey_seed_file = cfg_.nats_creds;
  o.tls_ca_file = cfg_.nats_ca;
  o.inbox_prefix = std::string(wire::subjects::gateway_inbox_prefix);
  o.delivery_pool_threads = cfg_.nats_delivery_threads;
  return o;
}

api::tenant_link* api::link_for(const std::string& tenant, std::string* why) {
  std::shared_ptr<tenant_link> l;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = links_[tenant];
    if (!slot) slot = std::make_shared<tenant_link>();
    l = slot;
  }
  // The map keeps every link: the pointer returned stays valid for the api's life.
  if (l->up.load(std::memory_order_acquire)) return l.get();
  std::lock_guard<std::mutex> connecting(l->connecting);
  if (l->up.load(std::memory_order_acquire)) return l.get();  // made while this one waited
  auto conn = bus::connection::connect(nats_options(), why);
  if (!conn) return nullptr;  // the next request of the tenant tries again
  auto router = client::reply_router::create(*conn, why);
  if (!router) return nullptr;
  l->conn = std::move(conn);
  l->router = std::move(router);
  l->up.store(true, std::memory_order_release);
  return l.get();
}

std::size_t api::tenant_links() {
  std::lock_guard<std::mutex> lock(mu_);
  return links_.size();
}

bool api::nats_connected() {
  // The gateway's own connection, not a tenant's: a tenant named like it shares nothing.
  std::lock_guard<std::mutex> lock(health_mu_);
  if (!health_conn_) {
    auto o = nats_options();
    o.name = "corral-gateway-health";
    std::string why;
    health_conn_ = bus::connection::connect(o, &why);
    if (!health_conn_) return false;
  }
  return health_conn_->is_connected();
}

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

admission api::admit_metrics_listener(const http::request_header<>& head) {
  admission a;
  const std::string_view target = sv(head.target());
  const std::string_view path = target.substr(0, target.find('?'));
  if (head.method() != http::verb::get || (path != "/metrics" && path != "/healthz"))
    a.refuse = error_response(http::status::not_found, head.version(), "not_found",
                              route_unknown(std::string(head.method_string()), target));
  else if (announces_body(head))
    a.refuse = error_response(http::status::bad_request, head.version(), "invalid_argument",
                              "no body expected");
  return a;
}

void api::answer_health(const std::shared_ptr<responder>& res, unsigned version, bool keep_alive) {
  const auto started = clock_type::now();
  const bool up = nats_connected();
  const auto st = up ? http::status::ok : http::status::service_unavailable;
  metrics_.observe("/healthz", static_cast<unsigned>(st),
                   std::chrono::duration<double>(clock_type::now() - started).count());
  res->reply(json_response(st, version, keep_alive, json{{"status", up ? "ok" : "nats_unavailable"}}));
}

void api::answer_metrics(const std::shared_ptr<responder>& res, unsigned version, bool keep_alive) {
  metrics::sampled now;
  now.nats_connected = nats_connected();
  now.open_streams = slots_.total(tenant_slots::kind::stream);
  now.inflight = slots_.total(tenant_slots::kind::inflight);
  metrics_.observe("/metrics", 200, 0);
  http_response r{http::status::ok, version};
  r.set(http::field::content_type, "text/plain; version=0.0.4");
  r.keep_alive(keep_alive);
  r.body() = metrics_.render(now);
  r.prepare_payload();
  res->reply(std::move(r));
}

void api::handle_metrics_listener(http_request&& req, std::shared_ptr<responder> res) {
  const std::string_view target = sv(req.target());
  if (target.substr(0, target.find('?')) == "/metrics")
    return answer_metrics(res, req.version(), req.keep_alive());
  answer_health(res, req.version(), req.keep_alive());
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
  auto* link = link_for(c->tenant, &why);
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

namespace {

// Writes `data` to an exec's stdin, one StdinWrite of at most `chunk` bytes at a time, each
// waiting for its acknowledgement (the executor's flow control), on the call's strand; then
// done(error or nothing). Holds no thread while the process does not read.
class stdin_feed : public std::enable_shared_from_this<stdin_feed> {
 public:
  using done_fn = std::function<void(std::optional<status>)>;
  template <class Call>
  static void start(std::shared_ptr<Call> c, std::string sb, std::string eid,
                    std::shared_ptr<const std::string> data, bool eof, std::size_t chunk, done_fn done) {
    auto f = std::shared_ptr<stdin_feed>(new stdin_feed());
    f->next_ = [f_weak = std::weak_ptr<stdin_feed>(f), c, sb, eid, data, eof, chunk,
                done = std::move(done)](std::size_t at) mutable {
      auto self = f_weak.lock();
      if (!self) return;
      const std::size_t n = std::min(chunk, data->size() - at);
      const bool last = at + n >= data->size();
      c->ask(wire::subjects::sandbox_op(c->tenant, sb, "stdin"),
             client::stdin_write_bytes(eid, reinterpret_cast<const uint8_t*>(data->data()) + at, n,
                                       eof && last),
             c->cfg->request_timeout_ms, client::request_kind::exec, "stdin",
             [self, at, n, last, done](bus::message&&) {
               if (last) {
                 auto d = done;
                 self->next_ = nullptr;  // ends the feed's self-reference
                 return d(std::nullopt);
               }
               self->next_(at + n);
             },
             [self, done](const status& e) {
               auto d = done;
               self->next_ = nullptr;
               d(e);
             });
    };
    f->next_(0);
  }

 private:
  std::function<void(std::size_t)> next_;
};

}  // namespace

// POST /v1/run: a sandbox, one exec in it with the given stdin, its whole output, the sandbox
// ended. On the call's strand; the output comes through an output_pump (in order, gap-free),
// each stream kept up to `cap` bytes (truncated says when anything was not kept).
class run_job : public std::enable_shared_from_this<run_job> {
 public:
  run_job(std::shared_ptr<api::call> c, client::create_options co, client::exec_options xo,
          std::string input, std::size_t cap, pump_limits lim, int64_t deadline_ms)
      : c_(std::move(c)), co_(std::move(co)), xo_(std::move(xo)),
        input_(std::make_shared<const std::string>(std::move(input))), cap_(cap), lim_(lim),
        deadline_ms_(deadline_ms), timer_(c_->res->executor()) {
    xo_.timeout_ms = co_.timeout_ms;
    xo_.stdin_open = !input_->empty();
  }

  void start() {
    auto self = shared_from_this();
    c_->on_abandon = [self] { self->stop(); };
    timer_.expires_after(std::chrono::milliseconds(deadline_ms_));
    timer_.async_wait([weak = std::weak_ptr<run_job>(self)](const boost::system::error_code& ec) {
      if (auto s = weak.lock(); s && !ec)
        s->fail({wire::ErrorCode::deadline_exceeded, "the run did not end in time"});
    });
    c_->ask(wire::subjects::create(c_->tenant, c_->cfg->pool), client::create_request_bytes(co_),
            c_->cfg->request_timeout_ms, client::request_kind::create, c_->cfg->pool,
            [self](bus::message&& m) {
              auto v = client::sandbox_reply_of(m.data.data(), m.data.size());
              if (!v) return self->fail({wire::ErrorCode::malformed, "unexpected reply"});
              self->sb_ = v->id;
              self->exec();
            },
            [self](const status& e) { self->fail(e); });
  }

 private:
  void exec() {
    if (done_) return;
    auto self = shared_from_this();
    eid_ = wire::new_exec_id();
    c_->ask(wire::subjects::sandbox_op(c_->tenant, sb_, "exec"), client::exec_request_bytes(eid_, xo_),
            c_->cfg->request_timeout_ms, client::request_kind::sandbox, sb_,
            [self](bus::message&&) { self->follow(); }, [self](const status& e) { self->fail(e); });
  }

  void follow() {
    if (done_) return;
    auto self = shared_from_this();
    pump_target t{c_->tenant, sb_, eid_};
    t.follow = true;
    output_pump::sink s;
    s.open = [](const std::shared_ptr<output_pump>& p) { p->opened(); };
    s.data = [self](wire::Stream st, uint64_t, const uint8_t* d, std::size_t n) {
      auto& dst = st == wire::Stream::stderr ? self->err_ : self->out_;
      (st == wire::Stream::stderr ? self->err_seen_ : self->out_seen_) += n;
      if (dst.size() + n > self->cap_) {
        self->truncated_ = true;
        n = self->cap_ - dst.size();
      }
      dst.append(reinterpret_cast<const char*>(d), n);
    };
    s.exit = [self](const wire::ExitStatus* x) { self->exited(client::result_of(x)); };
    s.error = [self](const status& e, bool) { self->fail(e); };
    s.queued_bytes = [] { return std::size_t{0}; };  // kept here, up to cap_, not queued
    pump_ = output_pump::create(c_->res->executor(), *c_->conn, *c_->router, std::move(t), lim_,
                                std::move(s));
    pump_->start();
    if (!input_->empty())
      // A process that does not read its stdin is not an error of the run: its output says.
      stdin_feed::start(c_, sb_, eid_, input_, true, c_->cfg->max_stdin_chunk_bytes,
                        [](std::optional<status>) {});
  }

  void exited(const client::exec_result& r) {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    pump_.reset();
    c_->terminate_quietly(sb_);
    // Honest about what was not kept: bytes past the cap, or fewer than the executor counted.
    const bool truncated = truncated_ || out_seen_ < r.stdout_bytes || err_seen_ < r.stderr_bytes;
    c_->ok({{"sandbox_id", sb_}, {"stdout", out_}, {"stderr", err_}, {"returncode", r.exit_code},
            {"status", wire::EnumNameOutcome(r.outcome)}, {"message", r.message},
            {"truncated", truncated}});
  }

  void fail(const status& e) {
    if (done_) return;
    stop();
    c_->fail(e);
  }

  // The client left, the deadline passed or an error: the sandbox goes too.
  void stop() {
    if (std::exchange(done_, true)) return;
    timer_.cancel();
    if (pump_) (void)pump_->stop();
    pump_.reset();
    if (!sb_.empty()) c_->terminate_quietly(sb_);
  }

  std::shared_ptr<api::call> c_;
  client::create_options co_;
  client::exec_options xo_;
  std::shared_ptr<const std::string> input_;
  std::size_t cap_;
  pump_limits lim_;
  int64_t deadline_ms_;
  boost::asio::steady_timer timer_;
  std::string sb_, eid_, out_, err_;
  uint64_t out_seen_ = 0, err_seen_ = 0;
  bool truncated_ = false, done_ = false;
  std::shared_ptr<output_pump> pump_;
};

// GET /v1/sandboxes/{id}/files: the whole file, never cut silently. One fs.read at a time (the
// executor's cap each); a file that one read holds is one ordinary response, a longer one a
// chunked response whose next read is asked for once the client has taken the last. An error
// after the first piece aborts the connection: the client sees a chunked body without its end,
// never a short file.
class file_read : public std::enable_shared_from_this<file_read> {
 public:
  file_read(std::shared_ptr<api::call> c, std::string sb, std::string path)
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

namespace {

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

void api::route(const std::shared_ptr<call>& cp) {
  call& c = *cp;
  const auto& p = c.path;
  const auto method = c.req.method();
  const auto req_timeout = cfg_.request_timeout_ms;
  const auto unknown = [&] {
    c.fail(wire::ErrorCode::not_found, route_unknown(std::string(c.req.method_string()), sv(c.req.target())));
  };
  json body;
  auto parse_body = [&]() -> bool {
    if (c.req.body().empty()) {
      body = json::object();
      return true;
    }
    body = json::parse(c.req.body(), nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) {
      c.fail(wire::ErrorCode::invalid_argument, "the body must be a JSON object");
      return false;
    }
    return true;
  };
  auto sandbox_answer = [cp](http::status st = http::status::ok) {
    return [cp, st](client::sandbox_view&& v) { cp->ok(sandbox_json(v), st); };
  };
  try {
    // /v1/usage
    if (p.size() == 1 && p[0] == "usage" && method == http::verb::get) {
      c.route = "/v1/usage";
      return c.gather(wire::subjects::usage(c.tenant), client::usage_request_bytes(c.q("sandbox_id")),
                      [cp](std::vector<bus::message>&& replies) {
                        client::usage_report report;
                        for (const auto& m : replies)
                          client::add_usage_reply(m.data.data(), m.data.size(), report);
                        std::sort(report.sandboxes.begin(), report.sandboxes.end(),
                                  [](const auto& a, const auto& b) { return a.sandbox_id < b.sandbox_id; });
                        json sbs = json::array();
                        for (const auto& s : report.sandboxes)
                          sbs.push_back({{"sandbox_id", s.sandbox_id}, {"node", s.node},
                                         {"cpu_core_seconds", s.usage.cpu_core_seconds},
                                         {"gib_seconds", s.usage.gib_seconds}, {"cost", s.usage.cost}});
                        const auto& t = report.total;
                        cp->ok({{"tenant", cp->tenant}, {"sandboxes", sbs},
                                {"total", {{"cpu_core_seconds", t.cpu_core_seconds},
                                           {"gib_seconds", t.gib_seconds}, {"cost", t.cost}}}});
                      });
    }
    // /v1/run
    if (p.size() == 1 && p[0] == "run" && method == http::verb::post) {
      c.route = "/v1/run";
      if (!parse_body()) return;
      auto args = strings_of(body, "args");
      if (args.empty()) return c.fail(wire::ErrorCode::invalid_argument, "args must not be empty");
      client::create_options co;
      co.timeout_ms = ms_of(body, "timeout");
      co.cpu_millis = uint_of(body, "cpu", 1000);
      co.memory_mib = uint_of(body, "memory");
      client::exec_options xo;
      xo.argv = std::move(args);
      xo.env = pairs_of(body, "env");
      xo.workdir = body.value("workdir", "");
      std::string input = body.value("stdin", "");
      if (!take_stream(cp)) return;
      const int64_t deadline = co.timeout_ms > 0
                                   ? std::min(cfg_.max_wait_ms, co.timeout_ms + cfg_.request_timeout_ms)
                                   : cfg_.max_wait_ms;
      auto job = std::make_shared<run_job>(cp, std::move(co), std::move(xo), std::move(input),
                                           cfg_.max_body_bytes, limits(), deadline);
      return c.on_strand([job] { job->start(); });
    }
    if (p.empty() || p[0] != "sandboxes") return unknown();
    // /v1/sandboxes
    if (p.size() == 1) {
      c.route = "/v1/sandboxes";
      if (method == http::verb::post) {
        if (!parse_body()) return;
        const auto pool = cfg_.pool;
        return c.ask(wire::subjects::create(c.tenant, pool), client::create_request_bytes(create_options_of(body)),
                     req_timeout, client::request_kind::create, pool,
                     [cp](bus::message&& m) {
                       auto v = client::sandbox_reply_of(m.data.data(), m.data.size());
                       if (!v) return cp->fail(wire::ErrorCode::malformed, "unexpected reply");
                       cp->ok(sandbox_json(*v), http::status::created);
                     });
      }
      if (method == http::verb::get) {
        pairs tags;
        if (auto it = c.query.find("tag"); it != c.query.end())
          for (const auto& t : it->second) {
            auto colon = t.find(':');
            if (colon == std::string::npos || colon == 0)
              return c.fail(wire::ErrorCode::invalid_argument, "tag must be key:value");
            tags.emplace_back(t.substr(0, colon), t.substr(colon + 1));
          }
        return c.gather(wire::subjects::list(c.tenant),
                        client::list_request_bytes(c.flag("all"), c.q("name"), tags),
                        [cp](std::vector<bus::message>&& replies) {
                          std::vector<client::sandbox_view> all;
                          for (const auto& m : replies)
                            client::add_sandbox_list(m.data.data(), m.data.size(), all);
                          std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
                            return a.created_at_ms < b.created_at_ms;
                          });
                          json arr = json::array();
                          for (const auto& v : all) arr.push_back(sandbox_json(v));
                          cp->ok({{"sandboxes", arr}});
                        });
      }
      return unknown();
    }
    const std::string sb = p[1];
    if (!wire::valid_id(sb, "sb-")) return c.fail(wire::ErrorCode::not_found, "no such sandbox: " + sb);
    if (p.size() == 2 && method == http::verb::get) {
      c.route = "/v1/sandboxes/{id}";
      return c.sandbox_op(sb, "info", {}, req_timeout, sandbox_answer());
    }
    if (p.size() == 3 && p[2] == "terminate" && method == http::verb::post) {
      c.route = "/v1/sandboxes/{id}/terminate";
      const bool wait = c.flag("wait");
      if (wait && !take_stream(cp)) return;  // a long-poll
      const int64_t max_wait = cfg_.max_wait_ms;
      return c.sandbox_op(sb, "terminate", {}, req_timeout, [cp, sb, wait, max_wait](client::sandbox_view&& v) {
        if (!wait || v.has_return_code) return cp->ok(sandbox_json(v));
        auto first = std::make_shared<client::sandbox_view>(std::move(v));
        cp->sandbox_op(sb, "wait", client::sandbox_query_bytes(max_wait, false), max_wait + 5000,
                       [cp](client::sandbox_view&& w) { cp->ok(sandbox_json(w)); },
                       [cp, first](const status&) { cp->ok(sandbox_json(*first)); });
      });
    }
    if (p.size() == 3 && p[2] == "wait" && method == http::verb::get) {
      c.route = "/v1/sandboxes/{id}/wait";
      int64_t timeout_ms = 60'000;
      if (auto t = c.q("timeout"); !t.empty()) {
        auto ms = seconds_param_ms(t, cfg_.max_wait_ms);
        if (!ms) return c.fail(ms.code(), "timeout " + ms.error().message);
        timeout_ms = *ms;
      } else if (timeout_ms > cfg_.max_wait_ms) {
        return c.fail(wire::ErrorCode::invalid_argument, "timeout out of range");
      }
      if (!take_stream(cp)) return;
      return c.sandbox_op(sb, "wait", client::sandbox_query_bytes(timeout_ms, c.flag("ready")), timeout_ms + 5000,
                          sandbox_answer());
    }
    if (p.size() == 3 && p[2] == "tags" && (method == http::verb::put || method == http::verb::get)) {
      c.route = "/v1/sandboxes/{id}/tags";
      std::vector<uint8_t> payload;
      if (method == http::verb::put) {
        if (!parse_body()) return;
        auto set = pairs_of(body.contains("tags") ? body : json{{"tags", body}}, "tags");
        payload = client::set_tags_bytes(set);
      }
      return c.sandbox_op(sb, "tags", std::move(payload), req_timeout, sandbox_answer());
    }
    if (p.size() == 3 && p[2] == "exec" && method == http::verb::post) {
      c.route = "/v1/sandboxes/{id}/exec";
      if (!parse_body()) return;
      auto args = strings_of(body, "args");
      if (args.empty()) return c.fail(wire::ErrorCode::invalid_argument, "args must not be empty");
      std::string eid = body.value("exec_id", "");
      if (eid.empty()) eid = wire::new_exec_id();
      if (!wire::valid_token(eid))
        return c.fail(wire::ErrorCode::invalid_argument, "exec_id must be 1..64 of [A-Za-z0-9_-]");
      client::exec_options xo;
      xo.argv = std::move(args);
      xo.env = pairs_of(body, "env");
      xo.workdir = body.value("workdir", "");
      xo.timeout_ms = ms_of(body, "timeout");
      xo.stdin_open = body.value("stdin", true);
      xo.pty = body.value("pty", false);
      return c.ask(wire::subjects::sandbox_op(c.tenant, sb, "exec"), client::exec_request_bytes(eid, xo),
                   req_timeout, client::request_kind::sandbox, sb,
                   [cp, eid](bus::message&& m) {
                     auto re = client::exec_reply_reattached(m.data.data(), m.data.size());
                     if (!re) return cp->fail(wire::ErrorCode::internal, "unexpected exec reply");
                     cp->ok({{"exec_id", eid}, {"reattached", *re}}, http::status::created);
                   });
    }
    if (p.size() >= 4 && p[2] == "execs") {
      const std::string eid = p[3];
      if (!wire::valid_token(eid)) return c.fail(wire::ErrorCode::not_found, "no such exec: " + eid);
      if (p.size() == 4 && method == http::verb::get) {
        c.route = "/v1/sandboxes/{id}/execs/{eid}";
        // Existence first (a replay past the end answers not_found, or the exit when finished),
        // then an attach-only re-attach with the same id for the counts: never a process.
        auto attach = [cp, sb, eid, req_timeout] {
          cp->ask(wire::subjects::sandbox_op(cp->tenant, sb, "exec"), wire::make_attach_request(eid),
                  req_timeout, client::request_kind::sandbox, sb, [cp, eid](bus::message&& m) {
                    const auto* rep = wire::verify<wire::ExecReply>(m.data.data(), m.data.size());
                    if (rep == nullptr) return cp->fail(wire::ErrorCode::internal, "unexpected exec reply");
                    json j{{"exec_id", eid}, {"finished", rep->finished()},
                           {"stdout_bytes", rep->stdout_bytes()}, {"stderr_bytes", rep->stderr_bytes()}};
                    if (rep->finished()) {
                      auto x = exit_json(rep->status());
                      j["status"] = x["status"];
                      j["returncode"] = x["returncode"];
                      j["message"] = x["message"];
                    } else {
                      j["status"] = "running";
                      j["returncode"] = nullptr;
                    }
                    cp->ok(j);
                  });
        };
        auto replay_end = [cp, sb, eid, req_timeout, attach](client::sandbox_view&&) {
          auto error = std::make_shared<std::optional<status>>();
          cp->current = nats_request::start(
              *cp->router, cp->res->executor(), wire::subjects::sandbox_op(cp->tenant, sb, "replay"),
              client::replay_request_bytes(eid, std::numeric_limits<uint64_t>::max() - 1), req_timeout,
              [error](bus::message&& m) {
                if ((*error = client::error_in(m))) return true;
                return client::ack_of(m.data.data(), m.data.size()).has_value();
              },
              [cp, error, attach, sb](nats_request::end e, const std::string& detail) {
                cp->current.reset();
                if (e != nats_request::end::done)
                  return cp->fail(client::wire_error(client::request_kind::sandbox,
                                                     nats_request::failure_of(e), sb, detail));
                if (*error) return cp->fail(**error);
                attach();
              });
        };
        return c.sandbox_op(sb, "info", {}, req_timeout, replay_end);
      }
      if (p.size() == 5 && p[4] == "output" && method == http::verb::get) {
        c.route = "/v1/sandboxes/{id}/execs/{eid}/output";
        const auto which = c.q("stream", "both");
        if (which != "stdout" && which != "stderr" && which != "both")
          return c.fail(wire::ErrorCode::invalid_argument, "stream must be stdout, stderr or both");
        pump_target t{c.tenant, sb, eid};
        t.want_stdout = which != "stderr";
        t.want_stderr = which != "stdout";
        if (auto o = c.q("offset"); !o.empty()) t.offset = std::stoull(o);
        t.follow = c.flag("follow");
        return stream_output(cp, std::move(t));
      }
      if (p.size() == 5 && p[4] == "ws" && method == http::verb::get) {
        c.route = "/v1/sandboxes/{id}/execs/{eid}/ws";
        if (!boost::beast::websocket::is_upgrade(c.req))
          return c.fail(wire::ErrorCode::invalid_argument, "a WebSocket upgrade request is needed");
        pump_target t{c.tenant, sb, eid};
        if (auto o = c.q("offset"); !o.empty()) t.offset = std::stoull(o);
        t.follow = true;
        return stream_websocket(cp, std::move(t));
      }
      if (p.size() == 5 && p[4] == "stdin" && method == http::verb::post) {
        c.route = "/v1/sandboxes/{id}/execs/{eid}/stdin";
        const bool eof = c.flag("eof");
        // The body stays in the request (the call holds it) while the feed runs.
        auto data = std::shared_ptr<const std::string>(cp, &c.req.body());
        const auto size = data->size();
        return c.on_strand([cp, sb, eid, data, eof, size, chunk = cfg_.max_stdin_chunk_bytes] {
          stdin_feed::start(cp, sb, eid, data, eof, chunk, [cp, size, eof](std::optional<status> e) {
            if (e) return cp->fail(*e);
            cp->ok({{"written", size}, {"eof", eof}});
          });
        });
      }
      if (p.size() == 5 && p[4] == "signal" && method == http::verb::post) {
        c.route = "/v1/sandboxes/{id}/execs/{eid}/signal";
        if (!parse_body()) return;
        if (!body.contains("signal") || !body["signal"].is_number_integer() ||
            body["signal"].get<int>() < 1 || body["signal"].get<int>() > 64)
          return c.fail(wire::ErrorCode::invalid_argument, "signal must be 1..64");
        return c.ask(wire::subjects::sandbox_op(c.tenant, sb, "signal"),
                     client::signal_request_bytes(eid, body["signal"].get<int>()), req_timeout,
                     client::request_kind::exec, "signal", [cp](bus::message&&) { cp->ok({{"ok", true}}); });
      }
    }
    if (p.size() >= 3 && p[2] == "files") {
      const auto path = c.q("path");
      if (path.empty()) return c.fail(wire::ErrorCode::invalid_argument, "path is required");
      if (p.size() == 3) {
        c.route = "/v1/sandboxes/{id}/files";
        if (method == http::verb::get) {
          auto r = std::make_shared<file_read>(cp, sb, path);
          return c.on_strand([r] { r->next(); });
        }
        if (method == http::verb::put)
          return write_file(cp, sb, path, c.flag("append"), 0, 0, 0, cfg_.max_stdin_chunk_bytes);
        if (method == http::verb::delete_) {
          client::fs_request_options o;
          o.path = path;
          o.recursive = c.flag("recursive");
          return c.fs_op(sb, "remove", o, [cp](client::fs_reply_view&& r) { cp->ok({{"removed", r.count}}); });
        }
      }
      if (p.size() == 4 && p[3] == "list" && method == http::verb::get) {
        c.route = "/v1/sandboxes/{id}/files/list";
        return list_files(cp, sb, path, 0, std::make_shared<json>(json::array()));
      }
      if (p.size() == 4 && p[3] == "mkdir" && method == http::verb::post) {
        c.route = "/v1/sandboxes/{id}/files/mkdir";
        client::fs_request_options o;
        o.path = path;
        o.parents = c.flag("parents");
        return c.fs_op(sb, "mkdir", o, [cp](client::fs_reply_view&&) { cp->ok({{"ok", true}}, http::status::created); });
      }
    }
    return unknown();
  } catch (const std::exception& e) {
    // Untrusted input that did not fit (a JSON field of the wrong type, a bad number).
    return c.fail(wire::ErrorCode::invalid_argument, e.what());
  }
}

// What both kinds of output stream share: the sink's end, its queue and the stream's slot (given
// back when the pump ends, whichever way), and the pump started on the connection's strand.
void api::run_pump(const std::shared_ptr<call>& c,
                   const std::shared_ptr<std::shared_ptr<stream_channel>>& ch, pump_target target,
                   output_pump::sink s) {
  auto slot = std::move(c->slot);
  s.end = [ch] { (*ch)->finish(); };
  s.queued_bytes = [ch] { return *ch ? (*ch)->queued_bytes() : std::size_t{0}; };
  s.closed = [slot] {
    if (slot) slot->release();
  };
  auto p = output_pump::create(c->res->executor(), *c->conn, *c->router, std::move(target),
                               limits(), std::move(s));
  c->on_strand([c, p] {
    // Until the stream opens, a client that leaves stops the pump (then its channel does).
    c->on_abandon = [p] { (void)p->stop(); };
    p->start();
  });
}

void api::stream_output(const std::shared_ptr<call>& c, pump_target target) {
  if (!take_stream(c)) return;
  // The response begins with the executor's first answer: an unknown sandbox or exec still
  // gets its status code.
  auto ch = std::make_shared<std::shared_ptr<stream_channel>>();
  const std::string what = target.sandbox + "/" + target.exec_id;
  output_pump::sink s;
  s.open = [c, ch, what](const std::shared_ptr<output_pump>& p) {
    c->finish(200);
    *ch = c->res->begin_stream(http::status::ok, "application/x-ndjson");
    // The channel holds the pump while it is open (and the pump the channel, through its sink:
    // the cycle ends when either ends).
    stream_channel::handlers h;
    h.on_drained = [p] { p->drained(); };
    h.on_closed = [p, what] {
      if (p->stop())
        std::fprintf(stderr, "corral-gateway: output stream of %s ended: client gone or too slow\n",
                     what.c_str());
    };
    (*ch)->set_handlers(std::move(h));
    p->opened();
  };
  auto line = [ch](const json& j) {
    (*ch)->send(false, j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
  };
  s.data = [line](wire::Stream st, uint64_t at, const uint8_t* d, std::size_t n) {
    line(json{{"stream", st == wire::Stream::stdout ? "stdout" : "stderr"}, {"offset", at},
              {"data", client::base64_encode(d, n)}});
  };
  s.exit = [line, ch](const wire::ExitStatus* x) {
    line(json{{"exit", exit_json(x)}});
    (*ch)->finish();
  };
  s.error = [c, ch, line](const status& e, bool opened) {
    if (!opened) return c->fail(e.code, e.message);
    line(error_json(e.code, e.message));
    (*ch)->finish();
  };
  run_pump(c, ch, std::move(target), std::move(s));
}

namespace {

// A WebSocket's incoming frames are the exec's stdin: binary frames are bytes, the text frame
// "eof" closes it. One StdinWrite in flight at a time (each at most max_stdin_chunk_bytes); the
// next frame is read only once it is acknowledged, so a client that sends faster than the
// process reads is held back by TCP, not buffered here. On the channel's strand.
class websocket_stdin : public std::enable_shared_from_this<websocket_stdin> {
 public:
  websocket_stdin(std::shared_ptr<stream_channel> ch, client::reply_router& router, std::string subject,
                  std::string exec_id, std::size_t chunk_max, int64_t timeout_ms)
      : ch_(std::move(ch)), router_(router), subject_(std::move(subject)),
        exec_id_(std::move(exec_id)), chunk_max_(chunk_max), timeout_ms_(timeout_ms),
        timer_(ch_->executor()) {}
  ~websocket_stdin() { router_.close(ticket_); }

  void on_message(stream_channel::message&& m) {
    if (stopped_) return;
    const bool eof = !m.binary && m.data == "eof";
    if ((!m.binary && !eof) || eof_sent_) return ch_->read_next();
    data_ = eof ? std::string() : std::move(m.data);
    at_ = 0;
    eof_ = eof;
    send_next();
  }
  void stop() {
    stopped_ = true;
    router_.close(ticket_);
    ticket_ = 0;
    timer_.cancel();
    ch_.reset();
  }

 private:
  void send_next() {
    n_ = std::min(chunk_max_, data_.size() - at_);
    const bool last = at_ + n_ >= data_.size();
    std::weak_ptr<websocket_stdin> weak = shared_from_this();
    auto ex = ch_->executor();
    auto t = router_.open([weak, ex](uint64_t id, bus::message&&) {
      boost::asio::post(ex, [weak, id] {
        if (auto s = weak.lock()) s->on_answer(id);
      });
    });
    ticket_ = t.id;
    // A refused write (the exec ended) or one that fails is dropped, as the process would
    // not read it anyway; the stream goes on.
    if (!router_.publish(subject_, t,
                         client::stdin_write_bytes(
                             exec_id_, reinterpret_cast<const uint8_t*>(data_.data()) + at_, n_,
                             eof_ && last))) return on_answer(t.id);
    timer_.expires_after(std::chrono::milliseconds(timeout_ms_));
    timer_.async_wait([weak, id = t.id](const boost::system::error_code& ec) {
      if (auto s = weak.lock(); s && !ec) s->on_answer(id);
    });
  }
  void on_answer(uint64_t id) {
    if (stopped_ || id != ticket_) return;
    router_.close(ticket_);
    ticket_ = 0;
    timer_.cancel();
    at_ += n_;
    if (at_ < data_.size()) return send_next();
    eof_sent_ = eof_;
    data_.clear();
    ch_->read_next();
  }

  std::shared_ptr<stream_channel> ch_;
  client::reply_router& router_;
  std::string subject_, exec_id_;
  std::size_t chunk_max_;
  int64_t timeout_ms_;
  boost::asio::steady_timer timer_;
  std::string data_;
  std::size_t at_ = 0, n_ = 0;
  bool eof_ = false, eof_sent_ = false, stopped_ = false;
  uint64_t ticket_ = 0;
};

}  // namespace

void api::stream_websocket(const std::shared_ptr<call>& c, pump_target target) {
  if (!take_stream(c)) return;
  auto ch = std::make_shared<std::shared_ptr<stream_channel>>();
  const auto subject = wire::subjects::sandbox_op(c->tenant, target.sandbox, "stdin");
  const auto eid = target.exec_id;
  const auto chunk_max = cfg_.max_stdin_chunk_bytes;
  const auto timeout = cfg_.request_timeout_ms;
  output_pump::sink s;
  // The handshake follows the executor's first answer: an unknown sandbox or exec answers its
  // HTTP status instead of an upgrade.
  s.open = [c, ch, subject, eid, chunk_max, timeout](const std::shared_ptr<output_pump>& p) {
    // The handshake, then the channel, hold the pump (and the pump the channel, through its
    // sink: the cycle ends when either ends).
    c->res->accept_websocket(c->req, [c, ch, p, subject, eid, chunk_max,
                                      timeout](std::shared_ptr<stream_channel> ws) {
      c->finish(101);
      if (!ws) {
        p->stop();
        return;
      }
      *ch = ws;
      auto in = std::make_shared<websocket_stdin>(ws, *c->router, subject, eid, chunk_max, timeout);
      stream_channel::handlers h;
      h.on_drained = [p] { p->drained(); };
      h.on_closed = [p, in] {
        in->stop();
        p->stop();
      };
      h.on_message = [in](stream_channel::message&& m) { in->on_message(std::move(m)); };
      ws->set_handlers(std::move(h));
      ws->read_next();
      p->opened();
    });
  };
  s.data = [ch](wire::Stream st, uint64_t, const uint8_t* d, std::size_t n) {
    std::string frame;
    frame.reserve(n + 1);
    frame.push_back(static_cast<char>(st == wire::Stream::stdout ? 1 : 2));
    frame.append(reinterpret_cast<const char*>(d), n);
    (*ch)->send(true, std::move(frame));
  };
  s.exit = [ch](const wire::ExitStatus* x) {
    (*ch)->send(false, exit_json(x).dump(-1, ' ', false, json::error_handler_t::replace));
    (*ch)->finish();
  };
  s.error = [c, ch](const status& e, bool opened) {
    if (!opened) return c->fail(e.code, e.message);
    (*ch)->send(false, error_json(e.code, e.message).dump(-1, ' ', false, json::error_handler_t::replace));
    (*ch)->finish();
  };
  run_pump(c, ch, std::move(target), std::move(s));
}

}  // namespace corral::gateway
