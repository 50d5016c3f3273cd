#include "gateway/api.hpp"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <condition_variable>
#include <deque>
#include <limits>
#include <thread>

#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>

#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral::gateway {

namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;
using pairs = std::vector<std::pair<std::string, std::string>>;

struct api_error {
  wire::ErrorCode code;
  std::string message;
};

http::status status_of(wire::ErrorCode c) {
  switch (c) {
    case wire::ErrorCode::not_found: return http::status::not_found;
    case wire::ErrorCode::invalid_argument:
    case wire::ErrorCode::malformed:
    case wire::ErrorCode::is_a_directory:
    case wire::ErrorCode::not_a_directory: return http::status::bad_request;
    case wire::ErrorCode::too_large: return http::status::payload_too_large;
    case wire::ErrorCode::already_exists:
    case wire::ErrorCode::failed_precondition:
    case wire::ErrorCode::not_empty: return http::status::conflict;
    case wire::ErrorCode::permission_denied: return http::status::forbidden;
    case wire::ErrorCode::resource_exhausted: return http::status::too_many_requests;
    case wire::ErrorCode::unavailable: return http::status::service_unavailable;
    case wire::ErrorCode::deadline_exceeded: return http::status::gateway_timeout;
    case wire::ErrorCode::expired: return http::status::gone;
    default: return http::status::internal_server_error;
  }
}

json error_json(wire::ErrorCode code, const std::string& message) {
  return json{{"error", {{"code", wire::to_string(code)}, {"message", message}}}};
}

std::string base64(const uint8_t* p, std::size_t n) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (std::size_t i = 0; i < n; i += 3) {
    uint32_t v = uint32_t(p[i]) << 16;
    if (i + 1 < n) v |= uint32_t(p[i + 1]) << 8;
    if (i + 2 < n) v |= p[i + 2];
    out.push_back(t[(v >> 18) & 63]);
    out.push_back(t[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? t[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? t[v & 63] : '=');
  }
  return out;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') out.push_back(' ');
    else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
             std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else out.push_back(s[i]);
  }
  return out;
}

const char* state_name(wire::SandboxState s) { return wire::EnumNameSandboxState(s); }

json sandbox_json(const cli::sandbox_view& v) {
  json tags = json::object();
  for (const auto& [k, val] : v.tags) tags[k] = val;
  json j{{"id", v.id},           {"name", v.name},
         {"status", state_name(v.state)},
         {"node", v.node},       {"created_at_ms", v.created_at_ms},
         {"started_at_ms", v.started_at_ms}, {"ended_at_ms", v.ended_at_ms},
         {"timeout_ms", v.timeout_ms}, {"tags", tags}, {"ready", v.ready},
         {"message", v.message}};
  j["returncode"] = v.has_return_code ? json(v.return_code) : json(nullptr);
  return j;
}

json exit_json(const wire::ExitStatus* s) {
  if (s == nullptr) return json{{"status", "internal"}, {"returncode", 255}};
  return json{{"status", wire::EnumNameOutcome(s->outcome())},
              {"returncode", s->exit_code()},
              {"signal", s->signal()},
              {"message", std::string(wire::str(s->message()))},
              {"stdout_bytes", s->stdout_bytes()},
              {"stderr_bytes", s->stderr_bytes()}};
}

// Messages of one subscription, bounded in bytes: past max_bytes they are dropped and
// `overflowed` set (the reader then replays from the executor's store instead).
struct mailbox {
  explicit mailbox(std::size_t max_queued_bytes) : max_bytes(max_queued_bytes) {}
  std::size_t max_bytes;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<bus::message> q;
  std::size_t bytes = 0;
  bool overflowed = false;
  void push(bus::message&& m) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (bytes + m.data.size() > max_bytes) {
        overflowed = true;
        q.clear();
        bytes = 0;
      } else {
        bytes += m.data.size();
        q.push_back(std::move(m));
      }
    }
    cv.notify_one();
  }
  std::optional<bus::message> pop(clock_type::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_until(lock, deadline, [&] { return !q.empty(); })) return std::nullopt;
    auto m = std::move(q.front());
    q.pop_front();
    bytes -= m.data.size();
    return m;
  }
};

std::optional<api_error> error_in(const bus::message& m) {
  if (!wire::has_identifier<wire::ErrorReply>(m.data.data(), m.data.size())) return std::nullopt;
  const auto* e = wire::verify<wire::ErrorReply>(m.data.data(), m.data.size());
  if (e == nullptr) return api_error{wire::ErrorCode::malformed, "malformed error reply"};
  return api_error{e->code(), std::string(wire::str(e->message()))};
}

}  // namespace

// One request in flight.
struct api::call {
  http_request req;
  std::shared_ptr<responder> res;
  std::string route = "unknown";
  clock_type::time_point started = clock_type::now();
  std::vector<std::string> path;  // segments after /v1
  std::map<std::string, std::vector<std::string>> query;
  std::string tenant;
  cli::client* client = nullptr;
  bus::connection* streams = nullptr;  // output streams' connection
  reply_router* router = nullptr;      // over *streams
  metrics* m = nullptr;
  bool answered = false;

  std::string q(const std::string& k, const std::string& dflt = {}) const {
    auto it = query.find(k);
    return it == query.end() || it->second.empty() ? dflt : it->second.front();
  }
  bool flag(const std::string& k) const {
    auto v = q(k);
    return v == "1" || v == "true" || v == "yes";
  }
  void send(http::status st, const std::string& body, const char* type = "application/json") {
    http_response r{st, req.version()};
    r.set(http::field::content_type, type);
    r.keep_alive(req.keep_alive());
    r.body() = body;
    r.prepare_payload();
    finish(static_cast<unsigned>(st));
    res->reply(std::move(r));
  }
  void ok(const json& j, http::status st = http::status::ok) { send(st, j.dump(-1, ' ', false, json::error_handler_t::replace)); }
  void fail(wire::ErrorCode code, const std::string& message) {
    send(status_of(code), error_json(code, message).dump(-1, ' ', false, json::error_handler_t::replace));
  }
  void fail(const cli::call_error& e) { fail(e.code, e.message); }
  void finish(unsigned status) {
    if (answered) return;
    answered = true;
    m->observe(route, status,
               std::chrono::duration<double>(clock_type::now() - started).count());
  }
};

namespace {
// The answer of a method and path no route serves (docs/openapi.yaml lists the routes).
std::string route_unknown(const http_request& req) {
  return "no such route: " + std::string(req.method_string()) + " " +
         std::string(req.target().substr(0, req.target().find('?')));
}
}  // namespace

api::api(const gateway_config& cfg, token_store& tokens, metrics& m)
    : cfg_(cfg), tokens_(tokens), metrics_(m) {}

api::tenant_link* api::link_for(const std::string& tenant, std::string* why) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& l = links_[tenant];
  if (!l.client) {
    cli::client::config cc;
    cc.nats_url = cfg_.nats_url;
    cc.nats_creds = cfg_.nats_creds;
    cc.nats_ca = cfg_.nats_ca;
    cc.inbox_prefix = std::string(wire::subjects::gateway_inbox_prefix);
    cc.tenant = tenant;
    cc.pool = cfg_.pool;
    cc.request_timeout_ms = cfg_.request_timeout_ms;
    auto c = cli::client::connect(cc, why);
    bus::options o;
    o.urls = {cfg_.nats_url};
    o.name = "corral-gateway";
    o.nkey_seed_file = cfg_.nats_creds;
    o.tls_ca_file = cfg_.nats_ca;
    o.inbox_prefix = std::string(wire::subjects::gateway_inbox_prefix);
    o.delivery_pool_threads = cfg_.nats_delivery_threads;
    std::unique_ptr<bus::connection> streams;
    if (c) streams = bus::connection::connect(o, why);
    std::unique_ptr<reply_router> r;
    if (streams) r = reply_router::create(*streams, why);
    if (!r) {
      links_.erase(tenant);
      return nullptr;
    }
    l.client = std::move(c);
    l.streams = std::move(streams);
    l.router = std::move(r);
  }
  return &l;
}

bool api::nats_connected() {
  std::string why;
  auto* l = link_for("gateway", &why);
  return l != nullptr && l->client->conn().is_connected();
}

void api::handle(http_request&& req, std::shared_ptr<responder> res) {
  auto c = std::make_shared<call>();
  c->req = std::move(req);
  c->res = std::move(res);
  c->m = &metrics_;
  const std::string target(c->req.target());
  const auto qpos = target.find('?');
  const std::string path = target.substr(0, qpos);
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
  const auto method = c->req.method();
  if (path == "/healthz" && method == http::verb::get) {
    c->route = "/healthz";
    const bool up = nats_connected();
    return c->send(up ? http::status::ok : http::status::service_unavailable,
                   json{{"status", up ? "ok" : "nats_unavailable"}}.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  if (path == "/metrics" && method == http::verb::get) {
    c->route = "/metrics";
    return c->send(http::status::ok, metrics_.render(nats_connected()), "text/plain; version=0.0.4");
  }
  if (path.rfind("/v1/", 0) != 0) {
    return c->fail(wire::ErrorCode::not_found, route_unknown(c->req));
  }
  for (std::size_t i = 4; i <= path.size();) {
    auto slash = path.find('/', i);
    if (slash == std::string::npos) slash = path.size();
    c->path.push_back(percent_decode(std::string_view(path).substr(i, slash - i)));
    i = slash + 1;
  }
  // Authentication before routing: without a token every /v1 path answers 401.
  const auto auth = std::string(c->req[http::field::authorization]);
  const std::string bearer = "Bearer ";
  std::optional<std::string> tenant;
  if (auth.rfind(bearer, 0) == 0) tenant = tokens_.tenant_of(auth.substr(bearer.size()));
  if (!tenant) {
    c->route = "unauthenticated";
    c->finish(401);
    http_response r{http::status::unauthorized, c->req.version()};
    r.set(http::field::content_type, "application/json");
    r.set(http::field::www_authenticate, "Bearer");
    r.keep_alive(c->req.keep_alive());
    r.body() = json{{"error", {{"code", "unauthenticated"},
                               {"message", "missing or unknown bearer token"}}}}.dump(-1, ' ', false, json::error_handler_t::replace);
    r.prepare_payload();
    return c->res->reply(std::move(r));
  }
  c->tenant = *tenant;
  std::string why;
  auto* link = link_for(c->tenant, &why);
  if (link == nullptr) return c->fail(wire::ErrorCode::unavailable, "NATS: " + why);
  c->client = link->client.get();
  c->streams = link->streams.get();
  c->router = link->router.get();
  dispatch(c);
}


namespace {

pairs pairs_of(const json& j, const char* field) {
  pairs out;
  if (!j.contains(field)) return out;
  const auto& o = j.at(field);
  if (!o.is_object()) throw std::invalid_argument(std::string(field) + " must be an object");
  for (auto it = o.begin(); it != o.end(); ++it) {
    if (!it.value().is_string()) throw std::invalid_argument(std::string(field) + " values must be strings");
    out.emplace_back(it.key(), it.value().get<std::string>());
  }
  return out;
}

std::vector<std::string> strings_of(const json& j, const char* field) {
  std::vector<std::string> out;
  if (!j.contains(field)) return out;
  const auto& a = j.at(field);
  if (!a.is_array()) throw std::invalid_argument(std::string(field) + " must be an array of strings");
  for (const auto& v : a) {
    if (!v.is_string()) throw std::invalid_argument(std::string(field) + " must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// Seconds (a number) in `field` as milliseconds; 0 when absent.
int64_t ms_of(const json& j, const char* field) {
  if (!j.contains(field)) return 0;
  if (!j.at(field).is_number() || j.at(field).get<double>() < 0 || j.at(field).get<double>() > 1e7)
    throw std::invalid_argument(std::string(field) + " must be a number of seconds");
  return static_cast<int64_t>(j.at(field).get<double>() * 1000);
}

uint32_t uint_of(const json& j, const char* field, double scale = 1) {
  if (!j.contains(field)) return 0;
  if (!j.at(field).is_number() || j.at(field).get<double>() < 0 || j.at(field).get<double>() * scale > 4e9)
    throw std::invalid_argument(std::string(field) + " must be a non-negative number");
  return static_cast<uint32_t>(j.at(field).get<double>() * scale);
}

cli::create_options create_options_of(const json& j) {
  cli::create_options o;
  o.name = j.value("name", "");
  o.timeout_ms = ms_of(j, "timeout");
  o.idle_timeout_ms = ms_of(j, "idle_timeout");
  o.cpu_millis = uint_of(j, "cpu", 1000);  // cores
  o.memory_mib = uint_of(j, "memory");       // MiB
  o.cpu_request_millis = uint_of(j, "cpu_request", 1000);
  o.memory_request_mib = uint_of(j, "memory_request");
  o.workdir = j.value("workdir", "");
  o.tags = pairs_of(j, "tags");
  o.env = pairs_of(j, "env");
  o.entrypoint = strings_of(j, "entrypoint");
  o.probe_command = strings_of(j, "probe_command");
  o.probe_tcp_port = static_cast<int32_t>(uint_of(j, "probe_tcp_port"));
  o.probe_interval_ms = ms_of(j, "probe_interval");
  return o;
}

// Sends a replay request and hands each frame to on_frame until the executor's Ack; returns
// "done", "more", or an error.
struct replay_result {
  std::optional<api_error> error;
  bool more = false;
};
replay_result replay_once(bus::connection& conn, const std::string& tenant, const std::string& sb,
                          const std::string& eid, uint64_t from_seq,
                          const std::function<void(bus::message&&)>& on_frame,
                          int64_t timeout_ms) {
  replay_result out;
  auto box = std::make_shared<mailbox>(std::numeric_limits<std::size_t>::max());
  const auto inbox = conn.new_inbox();
  auto sub = conn.subscribe(inbox, "", [box](bus::message&& m) { box->push(std::move(m)); });
  if (!sub) {
    out.error = api_error{wire::ErrorCode::unavailable, "NATS: " + sub.detail};
    return out;
  }
  flatbuffers::FlatBufferBuilder b(128);
  auto id = b.CreateString(eid);
  b.Finish(wire::CreateReplayRequest(b, id, from_seq), wire::ReplayRequestIdentifier());
  auto payload = wire::release(b);
  if (auto st = conn.publish(wire::subjects::sandbox_op(tenant, sb, "replay"), inbox,
                             payload.data(), payload.size());
      !st) {
    out.error = api_error{wire::ErrorCode::unavailable, "NATS: " + st.detail};
    return out;
  }
  const auto deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto m = box->pop(deadline);
    if (!m) {
      out.error = api_error{wire::ErrorCode::deadline_exceeded, "no replay answer in time"};
      return out;
    }
    if (auto e = error_in(*m)) {
      out.error = e;
      return out;
    }
    if (const auto* a = wire::verify<wire::Ack>(m->data.data(), m->data.size())) {
      out.more = wire::str(a->message()) == "more";
      return out;
    }
    on_frame(std::move(*m));
  }
}

std::vector<uint8_t> exec_request(const std::string& eid, const std::vector<std::string>& argv,
                                  const pairs& env, const std::string& workdir, int64_t timeout_ms,
                                  bool stdin_open, bool pty, uint16_t rows, uint16_t cols) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  auto id = fbb.CreateString(eid);
  auto a = fbb.CreateVectorOfStrings(argv);
  auto e = wire::build_pairs(fbb, env);
  auto wd = fbb.CreateString(workdir);
  fbb.Finish(wire::CreateExecRequest(fbb, id, a, e, wd, timeout_ms, stdin_open, pty, rows, cols),
             wire::ExecRequestIdentifier());
  return wire::release(fbb);
}

}  // namespace

bool api::reserve_stream(const std::shared_ptr<call>& c) {
  if (++metrics_.open_streams > static_cast<int64_t>(cfg_.max_open_streams)) {
    --metrics_.open_streams;
    c->fail(wire::ErrorCode::resource_exhausted, "too many open streams on this gateway");
    return false;
  }
  return true;
}

pump_limits api::limits() const {
  pump_limits l;
  l.max_queued_bytes = cfg_.max_stream_queued_bytes;
  l.request_timeout_ms = cfg_.request_timeout_ms;
  return l;
}

void api::start_long(const std::shared_ptr<call>& c, std::function<void(call&)> fn) {
  if (!reserve_stream(c)) return;
  std::thread([this, c, fn = std::move(fn)] {
    try {
      fn(*c);
    } catch (const std::exception& e) {
      if (!c->answered) c->fail(wire::ErrorCode::internal, e.what());
    }
    --metrics_.open_streams;
  }).detach();
}

void api::dispatch(const std::shared_ptr<call>& cp) {
  call& c = *cp;
  const auto& p = c.path;
  const auto method = c.req.method();
  auto& cl = *c.client;
  const auto req_timeout = cfg_.request_timeout_ms;
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
  try {
    // /v1/usage
    if (p.size() == 1 && p[0] == "usage" && method == http::verb::get) {
      c.route = "/v1/usage";
      auto r = cl.usage(c.q("sandbox_id"));
      if (!r) return c.fail(r.error);
      json sbs = json::array();
      for (const auto& s : r.value->sandboxes)
        sbs.push_back({{"sandbox_id", s.sandbox_id}, {"node", s.node},
                       {"cpu_core_seconds", s.usage.cpu_core_seconds},
                       {"gib_seconds", s.usage.gib_seconds}, {"cost", s.usage.cost}});
      const auto& t = r.value->total;
      return c.ok({{"tenant", c.tenant}, {"sandboxes", sbs},
                   {"total", {{"cpu_core_seconds", t.cpu_core_seconds},
                              {"gib_seconds", t.gib_seconds}, {"cost", t.cost}}}});
    }
    // /v1/run
    if (p.size() == 1 && p[0] == "run" && method == http::verb::post) {
      c.route = "/v1/run";
      if (!parse_body()) return;
      auto args = strings_of(body, "args");
      if (args.empty()) return c.fail(wire::ErrorCode::invalid_argument, "args must not be empty");
      cli::create_options co;
      co.timeout_ms = ms_of(body, "timeout");
      co.cpu_millis = uint_of(body, "cpu", 1000);
      co.memory_mib = uint_of(body, "memory");
      cli::exec_options eo;
      eo.argv = args;
      eo.env = pairs_of(body, "env");
      eo.workdir = body.value("workdir", "");
      eo.timeout_ms = co.timeout_ms;
      std::string input = body.value("stdin", "");
      eo.stdin_open = !input.empty();
      const std::size_t cap = cfg_.max_body_bytes;
      return start_long(cp, [co, eo, input, cap](call& c) {
        auto sb = c.client->create(co);
        if (!sb) return c.fail(sb.error);
        std::string out, err;
        bool truncated = false;
        bool fed = false;
        auto r = c.client->exec(
            sb.value->id, eo,
            [&](wire::Stream s, const uint8_t* d, std::size_t n) {
              auto& dst = s == wire::Stream::stderr ? err : out;
              if (dst.size() + n > cap) { truncated = true; n = cap - dst.size(); }
              dst.append(reinterpret_cast<const char*>(d), n);
            },
            [input, fed]() mutable -> std::optional<std::vector<uint8_t>> {
              if (fed) return std::nullopt;
              fed = true;
              return std::vector<uint8_t>(input.begin(), input.end());
            });
        (void)c.client->terminate(sb.value->id);
        if (!r) return c.fail(r.error);
        c.ok({{"sandbox_id", sb.value->id}, {"stdout", out}, {"stderr", err},
              {"returncode", r.value->exit_code},
              {"status", wire::EnumNameOutcome(r.value->outcome)},
              {"message", r.value->message}, {"truncated", truncated}});
      });
    }
    if (p.empty() || p[0] != "sandboxes")
      return c.fail(wire::ErrorCode::not_found, route_unknown(c.req));
    // /v1/sandboxes
    if (p.size() == 1) {
      c.route = "/v1/sandboxes";
      if (method == http::verb::post) {
        if (!parse_body()) return;
        auto r = cl.create(create_options_of(body));
        if (!r) return c.fail(r.error);
        return c.ok(sandbox_json(*r.value), http::status::created);
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
        auto r = cl.list(c.flag("all"), c.q("name"), tags);
        if (!r) return c.fail(r.error);
        json arr = json::array();
        for (const auto& v : *r.value) arr.push_back(sandbox_json(v));
        return c.ok({{"sandboxes", arr}});
      }
      return c.fail(wire::ErrorCode::not_found, route_unknown(c.req));
    }
    const std::string& sb = p[1];
    if (!wire::valid_id(sb, "sb-")) return c.fail(wire::ErrorCode::not_found, "no such sandbox: " + sb);
    if (p.size() == 2 && method == http::verb::get) {
      c.route = "/v1/sandboxes/{id}";
      auto r = cl.info(sb);
      if (!r) return c.fail(r.error);
      return c.ok(sandbox_json(*r.value));
    }
    if (p.size() == 3 && p[2] == "terminate" && method == http::verb::post) {
      c.route = "/v1/sandboxes/{id}/terminate";
      const bool wait = c.flag("wait");
      return start_long(cp, [sb, wait, this](call& c) {
        auto r = c.client->terminate(sb);
        if (!r) return c.fail(r.error);
        if (wait && !r.value->has_return_code) {
          auto w = c.client->wait(sb, cfg_.max_wait_ms);
          if (w) r = w;
        }
        c.ok(sandbox_json(*r.value));
      });
    }
    if (p.size() == 3 && p[2] == "wait" && method == http::verb::get) {
      c.route = "/v1/sandboxes/{id}/wait";
      int64_t timeout_ms = 60'000;
      if (auto t = c.q("timeout"); !t.empty()) timeout_ms = static_cast<int64_t>(std::stod(t) * 1000);
      if (timeout_ms < 0 || timeout_ms > cfg_.max_wait_ms)
        return c.fail(wire::ErrorCode::invalid_argument, "timeout out of range");
      const bool ready = c.flag("ready");
      return start_long(cp, [sb, timeout_ms, ready](call& c) {
        auto r = c.client->wait(sb, timeout_ms, ready);
        if (!r) return c.fail(r.error);
        c.ok(sandbox_json(*r.value));
      });
    }
    if (p.size() == 3 && p[2] == "tags" && (method == http::verb::put || method == http::verb::get)) {
      c.route = "/v1/sandboxes/{id}/tags";
      std::optional<pairs> set;
      if (method == http::verb::put) {
        if (!parse_body()) return;
        set = pairs_of(body.contains("tags") ? body : json{{"tags", body}}, "tags");
      }
      auto r = cl.tags(sb, set);
      if (!r) return c.fail(r.error);
      return c.ok(sandbox_json(*r.value));
    }
    if (p.size() == 3 && p[2] == "exec" && method == http::verb::post) {
      c.route = "/v1/sandboxes/{id}/exec";
      if (!parse_body()) return;
      auto args = strings_of(body, "args");
      if (args.empty()) return c.fail(wire::ErrorCode::invalid_argument, "args must not be empty");
      std::string eid = body.value("exec_id", "");
      if (eid.empty()) eid = wire::new_id("ex-");
      if (!wire::valid_token(eid))
        return c.fail(wire::ErrorCode::invalid_argument, "exec_id must be 1..64 of [A-Za-z0-9_-]");
      auto payload = exec_request(eid, args, pairs_of(body, "env"), body.value("workdir", ""),
                                  ms_of(body, "timeout"), body.value("stdin", true),
                                  body.value("pty", false), 0, 0);
      auto r = cl.conn().request(wire::subjects::sandbox_op(c.tenant, sb, "exec"), payload.data(),
                                 payload.size(), req_timeout);
      if (!r) return c.fail(r.error == bus::bus_error::no_responders ? wire::ErrorCode::not_found
                                                                     : wire::ErrorCode::unavailable,
                            r.error == bus::bus_error::no_responders ? "no such sandbox: " + sb
                                                                     : "NATS: " + r.detail);
      if (auto e = error_in(r.value)) return c.fail(e->code, e->message);
      const auto* rep = wire::verify<wire::ExecReply>(r.value.data.data(), r.value.data.size());
      if (rep == nullptr) return c.fail(wire::ErrorCode::internal, "unexpected exec reply");
      return c.ok({{"exec_id", eid}, {"reattached", rep->reattached()}}, http::status::created);
    }
    if (p.size() >= 4 && p[2] == "execs") {
      const std::string& eid = p[3];
      if (!wire::valid_token(eid)) return c.fail(wire::ErrorCode::not_found, "no such exec: " + eid);
      if (p.size() == 4 && method == http::verb::get) {
        c.route = "/v1/sandboxes/{id}/execs/{eid}";
        // Existence first (a replay past the end answers not_found, or the exit when finished),
        // then an attach-only re-attach with the same id for the counts: never a process.
        auto info = cl.info(sb);
        if (!info) return c.fail(info.error);
        std::optional<api_error> gone;
        auto rr = replay_once(cl.conn(), c.tenant, sb, eid, std::numeric_limits<uint64_t>::max() - 1,
                              [](bus::message&&) {}, req_timeout);
        if (rr.error) return c.fail(rr.error->code, rr.error->message);
        auto payload = wire::make_attach_request(eid);
        auto r = cl.conn().request(wire::subjects::sandbox_op(c.tenant, sb, "exec"), payload.data(),
                                   payload.size(), req_timeout);
        if (!r) return c.fail(wire::ErrorCode::unavailable, "NATS: " + r.detail);
        if (auto e = error_in(r.value)) return c.fail(e->code, e->message);
        const auto* rep = wire::verify<wire::ExecReply>(r.value.data.data(), r.value.data.size());
        if (rep == nullptr) return c.fail(wire::ErrorCode::internal, "unexpected exec reply");
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
        return c.ok(j);
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
        const auto& data = c.req.body();
        const auto subject = wire::subjects::sandbox_op(c.tenant, sb, "stdin");
        std::size_t at = 0;
        do {
          const std::size_t n = std::min(cfg_.max_stdin_chunk_bytes, data.size() - at);
          const bool last = at + n >= data.size();
          flatbuffers::FlatBufferBuilder b(n + 128);
          auto id = b.CreateString(eid);
          auto d = b.CreateVector(reinterpret_cast<const uint8_t*>(data.data()) + at, n);
          b.Finish(wire::CreateStdinWrite(b, id, d, eof && last), wire::StdinWriteIdentifier());
          auto payload = wire::release(b);
          auto r = cl.conn().request(subject, payload.data(), payload.size(), req_timeout);
          if (!r) return c.fail(r.error == bus::bus_error::no_responders ? wire::ErrorCode::not_found
                                                                         : wire::ErrorCode::unavailable,
                                "stdin: " + r.detail);
          if (auto e = error_in(r.value)) return c.fail(e->code, e->message);
          at += n;
        } while (at < data.size());
        return c.ok({{"written", data.size()}, {"eof", eof}});
      }
      if (p.size() == 5 && p[4] == "signal" && method == http::verb::post) {
        c.route = "/v1/sandboxes/{id}/execs/{eid}/signal";
        if (!parse_body()) return;
        if (!body.contains("signal") || !body["signal"].is_number_integer() ||
            body["signal"].get<int>() < 1 || body["signal"].get<int>() > 64)
          return c.fail(wire::ErrorCode::invalid_argument, "signal must be 1..64");
        flatbuffers::FlatBufferBuilder b(128);
        auto id = b.CreateString(eid);
        b.Finish(wire::CreateSignalRequest(b, id, body["signal"].get<int>()),
                 wire::SignalRequestIdentifier());
        auto payload = wire::release(b);
        auto r = cl.conn().request(wire::subjects::sandbox_op(c.tenant, sb, "signal"),
                                   payload.data(), payload.size(), req_timeout);
        if (!r) return c.fail(r.error == bus::bus_error::no_responders ? wire::ErrorCode::not_found
                                                                       : wire::ErrorCode::unavailable,
                              "signal: " + r.detail);
        if (auto e = error_in(r.value)) return c.fail(e->code, e->message);
        return c.ok({{"ok", true}});
      }
    }
    if (p.size() >= 3 && p[2] == "files") {
      const auto path = c.q("path");
      if (path.empty()) return c.fail(wire::ErrorCode::invalid_argument, "path is required");
      if (p.size() == 3) {
        c.route = "/v1/sandboxes/{id}/files";
        if (method == http::verb::get) {
          std::string data;
          auto r = cl.fs_read(sb, path, [&](const uint8_t* d, std::size_t n) {
            data.append(reinterpret_cast<const char*>(d), n);
          }, cfg_.max_body_bytes);
          if (!r) return c.fail(r.error);
          return c.send(http::status::ok, data, "application/octet-stream");
        }
        if (method == http::verb::put) {
          bool given = false;
          const auto& data = c.req.body();
          auto r = cl.fs_write(sb, path, [&]() -> std::optional<std::vector<uint8_t>> {
            if (given) return std::nullopt;
            given = true;
            return std::vector<uint8_t>(data.begin(), data.end());
          }, c.flag("append"));
          if (!r) return c.fail(r.error);
          return c.ok({{"written", *r.value}});
        }
        if (method == http::verb::delete_) {
          auto r = cl.fs_remove(sb, path, c.flag("recursive"));
          if (!r) return c.fail(r.error);
          return c.ok({{"removed", *r.value}});
        }
      }
      if (p.size() == 4 && p[3] == "list" && method == http::verb::get) {
        c.route = "/v1/sandboxes/{id}/files/list";
        auto r = cl.fs_list(sb, path);
        if (!r) return c.fail(r.error);
        json arr = json::array();
        for (const auto& e : *r.value)
          arr.push_back({{"name", e.name}, {"type", wire::EnumNameFsFileType(e.type)},
                         {"size", e.size}, {"mode", e.mode}, {"mtime_ms", e.mtime_ms}});
        return c.ok({{"entries", arr}});
      }
      if (p.size() == 4 && p[3] == "mkdir" && method == http::verb::post) {
        c.route = "/v1/sandboxes/{id}/files/mkdir";
        auto r = cl.fs_mkdir(sb, path, c.flag("parents"));
        if (!r) return c.fail(r.error);
        return c.ok({{"ok", true}}, http::status::created);
      }
    }
    return c.fail(wire::ErrorCode::not_found, route_unknown(c.req));
  } catch (const std::exception& e) {
    // Untrusted input that did not fit (a JSON field of the wrong type, a bad number).
    return c.fail(wire::ErrorCode::invalid_argument, e.what());
  }
}

// What both kinds of output stream share: the sink's end, its queue and the stream count, and
// the pump started on the connection's executor.
void api::run_pump(const std::shared_ptr<call>& c,
                   const std::shared_ptr<std::shared_ptr<stream_channel>>& ch, pump_target target,
                   output_pump::sink s) {
  s.end = [ch] { (*ch)->finish(); };
  s.queued_bytes = [ch] { return *ch ? (*ch)->queued_bytes() : std::size_t{0}; };
  s.closed = [this] { --metrics_.open_streams; };
  auto p = output_pump::create(c->res->executor(), *c->streams, *c->router, std::move(target),
                               limits(), std::move(s));
  boost::asio::post(c->res->executor(), [p] { p->start(); });
}

void api::stream_output(const std::shared_ptr<call>& c, pump_target target) {
  if (!reserve_stream(c)) return;
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
              {"data", base64(d, n)}});
  };
  s.exit = [line, ch](const wire::ExitStatus* x) {
    line(json{{"exit", exit_json(x)}});
    (*ch)->finish();
  };
  s.error = [c, ch, line](const pump_error& e, bool opened) {
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
  websocket_stdin(std::shared_ptr<stream_channel> ch, reply_router& router, std::string subject,
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
    flatbuffers::FlatBufferBuilder b(n_ + 128);
    auto id = b.CreateString(exec_id_);
    auto d = b.CreateVector(reinterpret_cast<const uint8_t*>(data_.data()) + at_, n_);
    b.Finish(wire::CreateStdinWrite(b, id, d, eof_ && last), wire::StdinWriteIdentifier());
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
    if (!router_.publish(subject_, t, wire::release(b))) return on_answer(t.id);
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
  reply_router& router_;
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
  if (!reserve_stream(c)) return;
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
  s.error = [c, ch](const pump_error& e, bool opened) {
    if (!opened) return c->fail(e.code, e.message);
    (*ch)->send(false, error_json(e.code, e.message).dump(-1, ' ', false, json::error_handler_t::replace));
    (*ch)->finish();
  };
  run_pump(c, ch, std::move(target), std::move(s));
}

}  // namespace corral::gateway
