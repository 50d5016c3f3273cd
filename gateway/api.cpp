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

cli::client* api::client_for(const std::string& tenant, std::string* why) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& c = clients_[tenant];
  if (!c) {
    cli::client::config cc;
    cc.nats_url = cfg_.nats_url;
    cc.tenant = tenant;
    cc.pool = cfg_.pool;
    cc.request_timeout_ms = cfg_.request_timeout_ms;
    c = cli::client::connect(cc, why);
    if (!c) {
      clients_.erase(tenant);
      return nullptr;
    }
  }
  return c.get();
}

bool api::nats_connected() {
  std::string why;
  auto* c = client_for("gateway", &why);
  return c != nullptr && c->conn().is_connected();
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
  c->client = client_for(c->tenant, &why);
  if (c->client == nullptr) return c->fail(wire::ErrorCode::unavailable, "NATS: " + why);
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

void api::start_long(const std::shared_ptr<call>& c, std::function<void(call&)> fn) {
  if (static_cast<std::size_t>(metrics_.open_streams.load()) >= cfg_.max_open_streams)
    return c->fail(wire::ErrorCode::resource_exhausted, "too many open streams on this gateway");
  ++metrics_.open_streams;
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
        // then a re-attach with the same id for the counts: never a second process.
        auto info = cl.info(sb);
        if (!info) return c.fail(info.error);
        std::optional<api_error> gone;
        auto rr = replay_once(cl.conn(), c.tenant, sb, eid, std::numeric_limits<uint64_t>::max() - 1,
                              [](bus::message&&) {}, req_timeout);
        if (rr.error) return c.fail(rr.error->code, rr.error->message);
        auto payload = exec_request(eid, {"true"}, {}, "", 0, false, false, 0, 0);
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
        uint64_t offset = 0;
        if (auto o = c.q("offset"); !o.empty()) offset = std::stoull(o);
        const bool follow = c.flag("follow");
        auto info = cl.info(sb);
        if (!info) return c.fail(info.error);
        return start_long(cp, [this, sb, eid, which, offset, follow](call& c) {
          stream_output(c, sb, eid, which, offset, follow);
        });
      }
      if (p.size() == 5 && p[4] == "ws" && method == http::verb::get) {
        c.route = "/v1/sandboxes/{id}/execs/{eid}/ws";
        if (!boost::beast::websocket::is_upgrade(c.req))
          return c.fail(wire::ErrorCode::invalid_argument, "a WebSocket upgrade request is needed");
        uint64_t offset = 0;
        if (auto o = c.q("offset"); !o.empty()) offset = std::stoull(o);
        auto info = cl.info(sb);
        if (!info) return c.fail(info.error);
        return start_long(cp, [this, sb, eid, offset](call& c) { stream_websocket(c, sb, eid, offset); });
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

namespace {

// Sends the output of one exec, in sequence order and gap-free, from the executor's store and
// (follow) live. The pump stops pulling as soon as a sink answers false: the executor keeps the
// output; nothing queues up here for a slow client beyond max_stream_queued_bytes.
struct output_sinks {
  std::function<bool(wire::Stream, uint64_t offset, const uint8_t*, std::size_t)> data;
  std::function<bool(const json& exit)> exit;
  std::function<bool()> idle;  // before waiting for live output; false: stop
};

// Returns the error that ended the pump early (the exec or its output is gone), if any.
std::optional<api_error> pump_output(bus::connection& conn, const gateway_config& cfg,
                                     const std::string& tenant, const std::string& sb,
                                     const std::string& eid, bool want_out, bool want_err,
                                     uint64_t offset, bool follow, const output_sinks& sinks) {
  auto live = std::make_shared<mailbox>(cfg.max_stream_queued_bytes);
  std::unique_ptr<bus::subscription> sub;
  if (follow) {
    auto s = conn.subscribe(wire::subjects::output(tenant, sb, eid), "",
                            [live](bus::message&& m) { live->push(std::move(m)); });
    if (!s) return api_error{wire::ErrorCode::unavailable, "subscribe: " + s.detail};
    sub = std::move(s.value);
  }
  uint64_t next = 0;
  bool ended = false, stop = false;
  auto emit = [&](const bus::message& m) {
    if (stop) return;
    if (const auto* ch = wire::verify<wire::OutputChunk>(m.data.data(), m.data.size())) {
      if (ch->seq() != next) return;
      ++next;
      const bool is_out = ch->stream() == wire::Stream::stdout;
      if ((is_out && !want_out) || (!is_out && !want_err) || ch->data() == nullptr) return;
      uint64_t at = ch->offset();
      const uint8_t* d = ch->data()->data();
      std::size_t n = ch->data()->size();
      if (at + n <= offset) return;
      if (at < offset) {
        d += offset - at;
        n -= static_cast<std::size_t>(offset - at);
        at = offset;
      }
      stop = !sinks.data(ch->stream(), at, d, n);
    } else if (const auto* x = wire::verify<wire::ExecExit>(m.data.data(), m.data.size())) {
      if (x->seq() != next) return;
      ++next;
      ended = true;
      stop = !sinks.exit(exit_json(x->status()));
    }
  };
  auto catch_up = [&]() -> std::optional<api_error> {
    for (int round = 0; round < 100000 && !ended && !stop; ++round) {
      auto r = replay_once(conn, tenant, sb, eid, next, emit, cfg.request_timeout_ms);
      if (r.error) return r.error;
      if (!r.more) break;
    }
    return std::nullopt;
  };
  if (auto e = catch_up()) return e;
  auto last_check = clock_type::now();
  while (follow && !ended && !stop) {
    if (!sinks.idle()) break;
    auto m = live->pop(clock_type::now() + std::chrono::milliseconds(500));
    bool gap = false;
    {
      std::lock_guard<std::mutex> lock(live->mu);
      gap = live->overflowed;
      live->overflowed = false;
    }
    if (m) {
      const auto* ch = wire::verify<wire::OutputChunk>(m->data.data(), m->data.size());
      const auto* x = ch ? nullptr : wire::verify<wire::ExecExit>(m->data.data(), m->data.size());
      const uint64_t seq = ch ? ch->seq() : (x ? x->seq() : next);
      if (seq > next) gap = true;
      else emit(*m);
    }
    // A gap, an overflow, or a quiet second (the exit may have come before we subscribed):
    // fetch exactly what is missing from the executor's store.
    if (gap || (!m && clock_type::now() - last_check > std::chrono::seconds(1))) {
      last_check = clock_type::now();
      if (auto e = catch_up()) return e;
    }
  }
  return std::nullopt;
}

}  // namespace

void api::stream_output(call& c, const std::string& sb, const std::string& eid,
                        const std::string& which, uint64_t offset, bool follow) {
  bool begun = false, client_gone = false;
  auto begin = [&]() -> bool {
    if (!begun) {
      begun = true;
      c.finish(200);
      client_gone = !c.res->begin_stream(http::status::ok, "application/x-ndjson");
    }
    return !client_gone;
  };
  auto line = [&](const json& j) { return begin() && (client_gone = !c.res->write_chunk(j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"), !client_gone); };
  output_sinks sinks;
  sinks.data = [&](wire::Stream s, uint64_t at, const uint8_t* d, std::size_t n) {
    return line(json{{"stream", s == wire::Stream::stdout ? "stdout" : "stderr"}, {"offset", at},
                     {"data", base64(d, n)}});
  };
  sinks.exit = [&](const json& x) { return line(json{{"exit", x}}); };
  sinks.idle = begin;
  auto e = pump_output(c.client->conn(), cfg_, c.tenant, sb, eid, which != "stderr",
                       which != "stdout", offset, follow, sinks);
  if (e && !begun) return c.fail(e->code, e->message);
  if (e) (void)line(error_json(e->code, e->message));
  if (begin()) return c.res->end_stream();
  std::fprintf(stderr, "corral-gateway: output stream of %s/%s ended: client gone or too slow\n",
               sb.c_str(), eid.c_str());
}

void api::stream_websocket(call& c, const std::string& sb, const std::string& eid, uint64_t offset) {
  auto ws = c.res->accept_websocket(c.req);
  c.finish(101);
  if (!ws) return;
  auto& conn = c.client->conn();
  // Incoming frames are the exec's stdin, written in order by a thread of their own; it ends
  // when the client closes (the channel is then shut and receive() answers nullopt).
  const auto subject = wire::subjects::sandbox_op(c.tenant, sb, "stdin");
  const auto chunk_max = cfg_.max_stdin_chunk_bytes;
  const auto timeout = cfg_.request_timeout_ms;
  auto client_closed = std::make_shared<std::atomic<bool>>(false);
  std::thread stdin_pump([ws, &conn, subject, eid, chunk_max, timeout, client_closed] {
    bool eof_sent = false;
    while (auto m = ws->receive()) {
      const bool eof = !m->binary && m->data == "eof";
      if (!m->binary && !eof) continue;
      if (eof_sent) continue;
      if (eof) m->data.clear();  // the text frame "eof" carries no stdin bytes
      std::size_t at = 0;
      do {
        const std::size_t n = std::min(chunk_max, m->data.size() - at);
        flatbuffers::FlatBufferBuilder b(n + 128);
        auto id = b.CreateString(eid);
        auto d = b.CreateVector(reinterpret_cast<const uint8_t*>(m->data.data()) + at, n);
        b.Finish(wire::CreateStdinWrite(b, id, d, eof), wire::StdinWriteIdentifier());
        auto payload = wire::release(b);
        (void)conn.request(subject, payload.data(), payload.size(), timeout);
        at += n;
      } while (at < m->data.size());
      eof_sent = eof;
    }
    *client_closed = true;
  });
  output_sinks sinks;
  std::string frame;
  sinks.data = [&](wire::Stream s, uint64_t, const uint8_t* d, std::size_t n) {
    frame.assign(1, static_cast<char>(s == wire::Stream::stdout ? 1 : 2));
    frame.append(reinterpret_cast<const char*>(d), n);
    return ws->send(true, frame);
  };
  sinks.exit = [&](const json& x) { return ws->send(false, x.dump(-1, ' ', false, json::error_handler_t::replace)); };
  sinks.idle = [&] { return !*client_closed; };
  auto e = pump_output(conn, cfg_, c.tenant, sb, eid, true, true, offset, true, sinks);
  if (e) (void)ws->send(false, error_json(e->code, e->message).dump(-1, ' ', false, json::error_handler_t::replace));
  ws->close();
  stdin_pump.join();
}

}  // namespace corral::gateway
