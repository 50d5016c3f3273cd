// POST /v1/run (docs/openapi.yaml): a sandbox, one exec with its stdin, its whole output, the
// sandbox ended.
#include <algorithm>
#include <chrono>

#include <boost/asio/steady_timer.hpp>

#include "gateway/call.hpp"
#include "gateway/stdin_feed.hpp"
#include "schemas/ids.hpp"

namespace corral::gateway {

namespace {

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

}  // namespace

void api::run(const call_ptr& c) {
  json body;
  if (!c->json_body(body)) return;
  auto args = strings_of(body, "args");
  if (!args) return c->fail(args.error());
  if (args->empty()) return c->fail(wire::ErrorCode::invalid_argument, "args must not be empty");
  client::create_options co;
  client::exec_options xo;
  xo.argv = std::move(args).value();
  std::string input;
  body_reader f;
  f.take(ms_of(body, "timeout"), co.timeout_ms);
  f.take(uint_of(body, "cpu", 1000), co.cpu_millis);
  f.take(uint_of(body, "memory"), co.memory_mib);
  f.take(pairs_of(body, "env"), xo.env);
  f.take(string_of(body, "workdir"), xo.workdir);
  f.take(string_of(body, "stdin"), input);
  if (!f.ok()) return c->fail(f.error());
  if (!take_stream(c)) return;
  const int64_t deadline = co.timeout_ms > 0
                               ? std::min(cfg_.max_wait_ms, co.timeout_ms + cfg_.request_timeout_ms)
                               : cfg_.max_wait_ms;
  auto job = std::make_shared<run_job>(c, std::move(co), std::move(xo), std::move(input),
                                       cfg_.max_body_bytes, limits(), deadline);
  c->on_strand([job] { job->start(); });
}

}  // namespace corral::gateway
