// The routes of execs (docs/openapi.yaml): start one, its state, its output as NDJSON or over a
// WebSocket (with stdin), stdin from a body, signals.
#include <cstdio>
#include <limits>

#include <boost/beast/websocket/rfc6455.hpp>

#include "client/base64.hpp"
#include "gateway/call.hpp"
#include "gateway/stdin_feed.hpp"
#include "gateway/websocket_stdin.hpp"
#include "schemas/ids.hpp"

namespace corral::gateway {

// POST /v1/sandboxes/{id}/exec
void api::exec_start(const call_ptr& c) {
  const std::string sb = c->path[1];
  json body;
  if (!c->json_body(body)) return;
  auto args = strings_of(body, "args");
  if (!args) return c->fail(args.error());
  if (args->empty()) return c->fail(wire::ErrorCode::invalid_argument, "args must not be empty");
  auto exec_id = string_of(body, "exec_id");
  if (!exec_id) return c->fail(exec_id.error());
  std::string eid = std::move(exec_id).value();
  if (eid.empty()) eid = wire::new_exec_id();
  if (!wire::valid_token(eid))
    return c->fail(wire::ErrorCode::invalid_argument, "exec_id must be 1..64 of [A-Za-z0-9_-]");
  client::exec_options xo;
  xo.argv = std::move(args).value();
  body_reader f;
  f.take(pairs_of(body, "env"), xo.env);
  f.take(string_of(body, "workdir"), xo.workdir);
  f.take(ms_of(body, "timeout"), xo.timeout_ms);
  f.take(bool_of(body, "stdin", true), xo.stdin_open);
  f.take(bool_of(body, "pty", false), xo.pty);
  if (!f.ok()) return c->fail(f.error());
  c->ask(wire::subjects::sandbox_op(c->tenant, sb, "exec"), client::exec_request_bytes(eid, xo),
         cfg_.request_timeout_ms, client::request_kind::sandbox, sb, [c, eid](bus::message&& m) {
           auto re = client::exec_reply_reattached(m.data.data(), m.data.size());
           if (!re) return c->fail(wire::ErrorCode::internal, "unexpected exec reply");
           c->ok({{"exec_id", eid}, {"reattached", *re}}, http::status::created);
         });
}

// GET /v1/sandboxes/{id}/execs/{eid}
void api::exec_status(const call_ptr& c) {
  const std::string sb = c->path[1], eid = c->path[3];
  const auto req_timeout = cfg_.request_timeout_ms;
  // Existence first (a replay past the end answers not_found, or the exit when finished),
  // then an attach-only re-attach with the same id for the counts: never a process.
  auto attach = [c, sb, eid, req_timeout] {
    c->ask(wire::subjects::sandbox_op(c->tenant, sb, "exec"), wire::make_attach_request(eid), req_timeout,
           client::request_kind::sandbox, sb, [c, eid](bus::message&& m) {
             const auto* rep = wire::verify<wire::ExecReply>(m.data.data(), m.data.size());
             if (rep == nullptr) return c->fail(wire::ErrorCode::internal, "unexpected exec reply");
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
             c->ok(j);
           });
  };
  auto replay_end = [c, sb, eid, req_timeout, attach](client::sandbox_view&&) {
    auto error = std::make_shared<std::optional<status>>();
    c->current = nats_request::start(
        *c->router, c->res->executor(), wire::subjects::sandbox_op(c->tenant, sb, "replay"),
        client::replay_request_bytes(eid, std::numeric_limits<uint64_t>::max() - 1), req_timeout,
        [error](bus::message&& m) {
          if ((*error = client::error_in(m))) return true;
          return client::ack_of(m.data.data(), m.data.size()).has_value();
        },
        [c, error, attach, sb](nats_request::end e, const std::string& detail) {
          c->current.reset();
          if (e != nats_request::end::done)
            return c->fail(client::wire_error(client::request_kind::sandbox, nats_request::failure_of(e),
                                              sb, detail));
          if (*error) return c->fail(**error);
          attach();
        });
  };
  c->sandbox_op(sb, "info", {}, req_timeout, replay_end);
}

// GET /v1/sandboxes/{id}/execs/{eid}/output[?stream=&offset=&follow=1]
void api::exec_output(const call_ptr& c) {
  const auto which = c->q("stream", "both");
  if (which != "stdout" && which != "stderr" && which != "both")
    return c->fail(wire::ErrorCode::invalid_argument, "stream must be stdout, stderr or both");
  pump_target t{c->tenant, c->path[1], c->path[3]};
  t.want_stdout = which != "stderr";
  t.want_stderr = which != "stdout";
  if (auto o = c->q("offset"); !o.empty()) {
    auto offset = offset_param(o);
    if (!offset) return c->fail(offset.error());
    t.offset = *offset;
  }
  t.follow = c->flag("follow");
  stream_output(c, std::move(t));
}

// GET /v1/sandboxes/{id}/execs/{eid}/ws[?offset=]
void api::exec_websocket(const call_ptr& c) {
  if (!boost::beast::websocket::is_upgrade(c->req))
    return c->fail(wire::ErrorCode::invalid_argument, "a WebSocket upgrade request is needed");
  pump_target t{c->tenant, c->path[1], c->path[3]};
  if (auto o = c->q("offset"); !o.empty()) {
    auto offset = offset_param(o);
    if (!offset) return c->fail(offset.error());
    t.offset = *offset;
  }
  t.follow = true;
  stream_websocket(c, std::move(t));
}

// POST /v1/sandboxes/{id}/execs/{eid}/stdin[?eof=1]
void api::exec_stdin(const call_ptr& c) {
  const std::string sb = c->path[1], eid = c->path[3];
  const bool eof = c->flag("eof");
  // The body stays in the request (the call holds it) while the feed runs.
  auto data = std::shared_ptr<const std::string>(c, &c->req.body());
  const auto size = data->size();
  c->on_strand([c, sb, eid, data, eof, size, chunk = cfg_.max_stdin_chunk_bytes] {
    stdin_feed::start(c, sb, eid, data, eof, chunk, [c, size, eof](std::optional<status> e) {
      if (e) return c->fail(*e);
      c->ok({{"written", size}, {"eof", eof}});
    });
  });
}

// POST /v1/sandboxes/{id}/execs/{eid}/signal
void api::exec_signal(const call_ptr& c) {
  json body;
  if (!c->json_body(body)) return;
  if (!body.contains("signal") || !body["signal"].is_number_integer() || body["signal"].get<int>() < 1 ||
      body["signal"].get<int>() > 64)
    return c->fail(wire::ErrorCode::invalid_argument, "signal must be 1..64");
  c->ask(wire::subjects::sandbox_op(c->tenant, c->path[1], "signal"),
         client::signal_request_bytes(c->path[3], body["signal"].get<int>()), cfg_.request_timeout_ms,
         client::request_kind::exec, "signal", [c](bus::message&&) { c->ok({{"ok", true}}); });
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
