#include "executor/jobs/job_service.hpp"

#include <algorithm>
#include <deque>
#include <iostream>

#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral::jobs {

bus::stream_config jobs_stream(const service_config& cfg, const std::string& tenant) {
  bus::stream_config s;
  s.name = wire::subjects::jobs_stream(tenant);
  s.subjects = {wire::subjects::jobs_stream_subjects(tenant)};
  s.work_queue = true;
  s.duplicate_window_ms = cfg.dedup_window_ms;
  s.max_msg_size = static_cast<int32_t>(wire::max_message_bytes);
  s.max_bytes = cfg.jobs_max_bytes;
  s.discard_new = true;
  s.republish_source = wire::subjects::jobs_stream_subjects(tenant);
  s.republish_destination = wire::subjects::jobs_stored_destination(tenant);
  s.republish_headers_only = true;
  return s;
}

bus::stream_config results_stream(const service_config& cfg, const std::string& tenant) {
  bus::stream_config s;
  s.name = wire::subjects::results_stream(tenant);
  s.subjects = {wire::subjects::results_stream_subjects(tenant)};
  s.work_queue = false;
  s.duplicate_window_ms = cfg.dedup_window_ms;
  s.max_age_ms = cfg.results_max_age_ms;
  s.max_msg_size = static_cast<int32_t>(wire::max_message_bytes);
  s.max_bytes = cfg.results_max_bytes;
  s.allow_direct = true;  // read back by sequence for the tenant (corral.v1.{t}.read.results)
  return s;
}

std::string job_msg_id(const std::string& tenant, const std::string& job_id) {
  return tenant + "." + job_id;
}

struct job_service::inflight {
  bus::js_message msg;
  std::string tenant, job_id, batch_id;
  uint32_t attempt = 1;
  std::mutex mu;  // acks of one message never overlap
  bool done = false;
  // Waiting for a sandbox (the node, or the tenant's quota, was full): tried again at retry_at,
  // kept alive meanwhile; not a delivery, so not an attempt.
  std::chrono::steady_clock::time_point retry_at{};
  int64_t retry_delay_ms = 0;
};

job_service::job_service(std::shared_ptr<bus::connection> conn, job_runner& runner,
                         service_config cfg)
    : conn_(std::move(conn)), runner_(runner), cfg_(std::move(cfg)) {}

job_service::~job_service() { stop(); }

namespace {
std::string inflight_key(const std::string& tenant, uint64_t sequence) {
  return tenant + ":" + std::to_string(sequence);
}
}  // namespace

bool job_service::start(std::string* why) {
  auto sub = conn_->subscribe(
      wire::subjects::run_any_tenant(cfg_.pool), wire::subjects::run_queue_group(cfg_.pool),
      [this](bus::message&& m) {
        if (!wire::subjects::valid_reply(m.reply)) return;  // docs/security.md, "Replies"
        const std::string tenant(wire::subjects::tenant_of(m.subject));
        auto req = std::make_shared<bus::message>(std::move(m));
        if (!wire::valid_token(tenant)) {
          auto e = wire::make_error_reply(wire::ErrorCode::invalid_argument, "invalid tenant");
          (void)conn_->respond(*req, e.data(), e.size());
          return;
        }
        auto conn = conn_;
        auto data = req->data;
        const bool taken = runner_.submit(tenant, std::move(data), 1, [conn, req](job_outcome o) {
          auto payload = o.retry ? wire::make_error_reply(wire::ErrorCode::unavailable,
                                                          "no sandbox can be had now: " + o.why)
                                 : std::move(o.result);
          (void)conn->respond(*req, payload.data(), payload.size());
        }, /*may_queue=*/true);
        if (!taken) {
          auto e = wire::make_error_reply(wire::ErrorCode::resource_exhausted,
                                          "every job slot of this executor is busy");
          (void)conn_->respond(*req, e.data(), e.size());
        }
      });
  if (!sub) {
    if (why) *why = "subscribe to run requests: " + sub.error().message;
    return false;
  }
  run_sub_ = std::move(sub.value());

  std::string js_why;
  js_ = bus::jetstream::open(*conn_, &js_why);
  if (!js_) {
    std::cerr << "corral-executor: no JetStream (" << js_why
              << "): jobs are taken as run requests only\n";
    return true;
  }
  drop_legacy_streams();
  // Setups are JetStream API calls: made on the ticker's thread, never on a delivery thread.
  auto setup = conn_->subscribe(wire::subjects::jobs_setup_any_tenant(), "", [this](bus::message&& m) {
    if (m.reply.empty() || !wire::subjects::valid_reply(m.reply)) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (setups_.size() < max_pending_setups) setups_.push_back(std::move(m));
    cv_.notify_all();
  });
  // A doorbell: each job a tenant's jobs stream stores is republished (headers only) on a subject
  // no tenant reaches (subjects::jobs_stored_any_tenant), so an idle puller asks that queue at
  // once instead of at its next poll.
  auto doorbell = conn_->subscribe(wire::subjects::jobs_stored_any_tenant(cfg_.pool), "",
                                   [this](bus::message&& m) {
                                     std::string tenant(wire::subjects::tenant_of_jobs_stored(m.subject));
                                     if (tenant.empty()) return;
                                     std::lock_guard<std::mutex> lock(mu_);
                                     rung_.insert(std::move(tenant));
                                     cv_.notify_all();
                                   });
  // Reads are JetStream API calls too: made on the reader's thread.
  auto read = conn_->subscribe(wire::subjects::results_read_any_tenant(),
                               std::string(wire::subjects::results_read_queue_group),
                               [this](bus::message&& m) {
                                 if (m.reply.empty() || !wire::subjects::valid_reply(m.reply)) return;
                                 std::lock_guard<std::mutex> lock(mu_);
                                 if (reads_.size() < max_pending_reads) reads_.push_back(std::move(m));
                                 cv_.notify_all();
                               });
  if (!setup || !doorbell || !read) {
    std::cerr << "corral-executor: cannot subscribe to job setups (" << setup.error().message
              << doorbell.error().message << read.error().message << "): jobs are taken as run requests only\n";
    js_.reset();
    return true;
  }
  setup_sub_ = std::move(setup.value());
  doorbell_sub_ = std::move(doorbell.value());
  read_sub_ = std::move(read.value());
  rescan();
  puller_ = std::thread([this] { pull_loop(); });
  ticker_ = std::thread([this] { ticker_loop(); });
  reader_ = std::thread([this] { reader_loop(); });
  return true;
}

void job_service::reader_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait(lock, [&] { return stopping_.load() || !reads_.empty(); });
    std::deque<bus::message> reads;
    reads.swap(reads_);
    lock.unlock();
    for (const auto& m : reads) answer_read(m);
    lock.lock();
  }
}

std::optional<results_read_plan> plan_results_read(const std::string& subject,
                                                   const uint8_t* data, std::size_t size,
                                                   uint32_t cap, std::vector<uint8_t>* error) {
  const std::string tenant(wire::subjects::tenant_of(subject));
  const auto* req = wire::verify<wire::ResultsRead>(data, size);
  const std::string batch = req != nullptr ? std::string(wire::str(req->batch_id())) : std::string();
  if (!wire::valid_token(tenant) || req == nullptr || !wire::valid_token(batch)) {
    *error = wire::make_error_reply(wire::ErrorCode::invalid_argument,
                                    "a ResultsRead names a batch (1..64 of [A-Za-z0-9_-])",
                                    "batch_id");
    return std::nullopt;
  }
  results_read_plan p;
  p.tenant = tenant;
  p.batch = batch;
  p.from_seq = std::max<uint64_t>(1, req->from_seq());
  p.max_results = std::max<uint32_t>(1, req->max_results() == 0 ? cap : std::min(req->max_results(), cap));
  return p;
}

// One ResultsRead: the batch's results from the tenant's own stream, published on the reply
// subject in stream order, then an Ack that ends the page: more (or not) and next.
void job_service::answer_read(const bus::message& m) {
  std::vector<uint8_t> refusal;
  const auto plan = plan_results_read(m.subject, m.data.data(), m.data.size(),
                                      cfg_.max_results_per_read, &refusal);
  if (!plan) {
    (void)conn_->respond(m, refusal.data(), refusal.size());
    return;
  }
  const uint32_t max = plan->max_results;
  const std::string stream = wire::subjects::results_stream(plan->tenant);
  const std::string subject = wire::subjects::results(plan->tenant, plan->batch);
  uint64_t next = plan->from_seq;
  std::size_t bytes = 0;
  uint32_t sent = 0;
  bool more = false;
  while (!stopping_) {
    if (sent >= max || bytes >= cfg_.max_result_read_bytes) {
      more = true;
      break;
    }
    auto got = js_->next_message(stream, next, subject);
    if (!got) {
      const auto code = got.error().message.find("stream not found") != std::string::npos
                            ? wire::ErrorCode::not_found
                            : wire::ErrorCode::unavailable;
      auto e = wire::make_error_reply(code, "cannot read the results: " + got.error().message);
      (void)conn_->respond(m, e.data(), e.size());
      return;
    }
    if (got.value().first == 0) break;  // nothing more now
    (void)conn_->respond(m, got.value().second.data(), got.value().second.size());
    bytes += got.value().second.size();
    ++sent;
    next = got.value().first + 1;
  }
  auto ack = wire::make_page_end(more, next, (more ? "more " : "done ") + std::to_string(next));
  (void)conn_->respond(m, ack.data(), ack.size());
}

bus::status job_service::setup_tenant(const std::string& tenant) {
  if (!js_) return failure(bus::errc::not_connected, "no JetStream");
  std::lock_guard<std::mutex> setup_lock(setup_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queues_.count(tenant) != 0) return {};
  }
  for (const auto& s : {jobs_stream(cfg_, tenant), results_stream(cfg_, tenant)}) {
    auto st = js_->ensure_stream(s);
    if (!st && !s.republish_destination.empty() && st.error().code == bus::errc::invalid) {
      // A jobs stream made before the doorbell was republished: the server cannot add that to
      // it. Its jobs are found by the puller's polling instead.
      auto without = s;
      without.republish_source.clear();
      without.republish_destination.clear();
      st = js_->ensure_stream(without);
      if (st)
        std::cerr << "corral-executor: " << s.name
                  << " predates the stored-job doorbell; its jobs are found by polling\n";
    }
    if (!st) return st;
  }
  bus::consumer_options co;
  co.ack_wait_ms = cfg_.ack_wait_ms;
  co.max_deliver = -1;  // the executor decides when a job has been tried enough (max_attempts)
  auto c = js_->pull(wire::subjects::jobs_stream(tenant), "corral-" + cfg_.pool,
                     wire::subjects::jobs(tenant, cfg_.pool), co);
  if (!c) return c.error();
  std::lock_guard<std::mutex> lock(mu_);
  queues_[tenant] = std::shared_ptr<bus::pull_consumer>(std::move(c.value()));
  rung_.insert(tenant);  // jobs may be waiting already
  cv_.notify_all();
  return {};
}

void job_service::rescan() {
  auto names = js_->stream_names(wire::subjects::jobs_any_tenant(cfg_.pool));
  if (!names) {
    std::cerr << "corral-executor: cannot list the job streams: " << names.error().message << "\n";
    return;
  }
  for (const auto& name : names.value()) {
    const std::string tenant(wire::subjects::tenant_of_jobs_stream(name));
    if (!wire::valid_token(tenant)) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queues_.count(tenant) != 0) continue;
    }
    if (auto st = setup_tenant(tenant); !st)
      std::cerr << "corral-executor: jobs of tenant " << tenant << ": " << st.error().message << "\n";
  }
}

// Streams of corral before per-tenant streams hold every tenant's subjects: the server refuses
// a tenant's stream beside them. An empty legacy queue is removed; one still holding jobs is
// left for an older executor to drain (and said so); the legacy results go.
void job_service::drop_legacy_streams() {
  if (auto info = js_->stream_info("CORRAL_JOBS"); info) {
    if (info.value().messages == 0) {
      (void)js_->delete_stream("CORRAL_JOBS");
    } else {
      std::cerr << "corral-executor: the legacy stream CORRAL_JOBS still holds "
                << info.value().messages << " jobs: drain it with the previous corral, or delete "
                   "it; tenants' job streams cannot be set up beside it\n";
      return;
    }
  }
  if (auto info = js_->stream_info("CORRAL_RESULTS"); info) {
    std::cerr << "corral-executor: deleting the legacy stream CORRAL_RESULTS ("
              << info.value().messages << " results)\n";
    (void)js_->delete_stream("CORRAL_RESULTS");
  }
}

void job_service::stop() {
  if (stopping_.exchange(true)) return;
  if (run_sub_) run_sub_->unsubscribe();
  if (setup_sub_) setup_sub_->unsubscribe();
  if (doorbell_sub_) doorbell_sub_->unsubscribe();
  if (read_sub_) read_sub_->unsubscribe();
  cv_.notify_all();
  if (puller_.joinable()) puller_.join();
  if (ticker_.joinable()) ticker_.join();
  if (reader_.joinable()) reader_.join();
  // Jobs still waiting for a sandbox are handed back (another executor, or this one restarted).
  std::vector<std::shared_ptr<inflight>> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting.swap(waiting_);
    waiting_tenants_.clear();
  }
  for (auto& f : waiting) {
    std::lock_guard<std::mutex> g(f->mu);
    f->done = true;
    (void)f->msg.nak();
  }
}

void job_service::pull_loop() {
  // The tenants to ask, in turn: those that rang, those whose last fetch was full (they may have
  // more), and every tenant at least every idle_poll_ms.
  std::deque<std::string> turn;
  std::set<std::string> queued;
  auto last_full_round = std::chrono::steady_clock::now();
  const auto idle_poll = std::chrono::milliseconds(cfg_.idle_poll_ms);
  while (!stopping_) {
    runner_.wait_for_slot(std::chrono::milliseconds(500));
    const int free = runner_.free_slots();
    if (free <= 0 || stopping_) continue;
    std::shared_ptr<bus::pull_consumer> queue;
    std::string tenant;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto enqueue = [&](const std::string& t) {
        if (queued.insert(t).second) turn.push_back(t);
      };
      for (const auto& t : rung_) enqueue(t);
      rung_.clear();
      const auto now = std::chrono::steady_clock::now();
      if (now - last_full_round >= idle_poll) {
        for (const auto& [t, q] : queues_) enqueue(t);
        last_full_round = now;
      }
      if (turn.empty()) {
        cv_.wait_for(lock, idle_poll, [&] { return stopping_.load() || !rung_.empty(); });
        continue;
      }
      tenant = turn.front();
      turn.pop_front();
      queued.erase(tenant);
      if (waiting_tenants_.count(tenant) != 0) continue;  // its jobs wait for a sandbox already
      auto it = queues_.find(tenant);
      if (it == queues_.end()) continue;
      queue = it->second;
    }
    const int want = std::min(free, bus::max_fetch_batch);
    auto got = queue->fetch_now(want, 2000);
    if (!got) {
      if (got.error().code == bus::errc::invalid) {
        // The consumer (or the stream) is gone: set up again at the next rescan.
        std::lock_guard<std::mutex> lock(mu_);
        queues_.erase(tenant);
      } else {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping_.load(); });
      }
      continue;
    }
    if (static_cast<int>(got.value().size()) == want && queued.insert(tenant).second)
      turn.push_back(tenant);
    for (auto& m : got.value()) {
      if (stopping_) {
        (void)m.nak();  // handed back: another executor (or this one restarted) takes it
        continue;
      }
      take(std::move(m));
    }
  }
}

void job_service::ticker_loop() {
  const auto every = std::chrono::milliseconds(std::max<int64_t>(100, cfg_.ack_wait_ms / 3));
  auto next_rescan = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.rescan_ms);
  auto next_progress = std::chrono::steady_clock::now() + every;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    auto wake = next_progress;
    for (const auto& f : waiting_) wake = std::min(wake, f->retry_at);
    cv_.wait_until(lock, wake, [&] {
      return stopping_.load() || !setups_.empty() ||
             (!waiting_.empty() && std::chrono::steady_clock::now() >= wake);
    });
    // Jobs waiting for a sandbox whose time has come go to the runner again.
    const auto now_time = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<inflight>> due;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if ((*it)->retry_at <= now_time) {
        due.push_back(*it);
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& f : due) {
      lock.unlock();
      auto data = f->msg.data();
      const bool taken = runner_.submit(f->tenant, std::move(data), f->attempt,
                                        [this, f](job_outcome o) { finish(f, std::move(o)); });
      lock.lock();
      if (!taken) {  // every slot busy: later again
        f->retry_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
        waiting_.push_back(f);
      } else if (--waiting_tenants_[f->tenant] <= 0) {
        waiting_tenants_.erase(f->tenant);
      }
    }
    std::deque<bus::message> setups;
    setups.swap(setups_);
    lock.unlock();
    for (auto& m : setups) {
      const std::string tenant(wire::subjects::tenant_of(m.subject));
      std::vector<uint8_t> answer;
      if (!wire::valid_token(tenant) || wire::subjects::reserved_tenant(tenant)) {
        answer = wire::make_error_reply(wire::ErrorCode::invalid_argument, "invalid tenant");
      } else if (auto st = setup_tenant(tenant); !st) {
        answer = wire::make_error_reply(wire::ErrorCode::unavailable,
                                        "cannot set up the job streams: " + st.error().message);
      } else {
        answer = wire::make_ack("ok");
      }
      (void)conn_->respond(m, answer.data(), answer.size());
    }
    lock.lock();
    if (std::chrono::steady_clock::now() < next_progress) continue;
    next_progress = std::chrono::steady_clock::now() + every;
    std::vector<std::shared_ptr<inflight>> now;
    for (auto& [key, f] : inflight_) now.push_back(f);
    lock.unlock();
    for (auto& f : now) {
      std::lock_guard<std::mutex> g(f->mu);
      if (!f->done) (void)f->msg.in_progress();
    }
    if (!stopping_ && std::chrono::steady_clock::now() >= next_rescan) {
      rescan();
      next_rescan = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.rescan_ms);
    }
    lock.lock();
  }
}

void job_service::take(bus::js_message&& m) {
  auto f = std::make_shared<inflight>();
  f->tenant = std::string(wire::subjects::tenant_of(m.subject()));
  f->attempt = static_cast<uint32_t>(std::max<uint64_t>(1, m.num_delivered()));
  const auto* job = wire::verify<wire::Job>(m.data().data(), m.data().size());
  if (job != nullptr) {
    f->job_id = std::string(wire::str(job->job_id()));
    f->batch_id = std::string(wire::str(job->batch_id()));
  }
  f->msg = std::move(m);
  if (!wire::valid_token(f->tenant) || !wire::valid_token(f->batch_id) ||
      !wire::valid_token(f->job_id)) {
    // No result can be addressed for it (no batch, no id): dropped, and said so.
    std::cerr << "corral-executor: job queue: dropping an unaddressable message on "
              << f->msg.subject() << "\n";
    (void)f->msg.term();
    return;
  }
  if (f->attempt > cfg_.max_attempts) {
    finish(f, job_outcome{false, {},
                          unrun_result(f->job_id, f->batch_id, wire::Outcome::executor_lost,
                                       "delivered " + std::to_string(f->attempt) +
                                           " times without a result: the executors that took it "
                                           "were lost",
                                       cfg_.node_id, f->attempt)});
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    inflight_[inflight_key(f->tenant, f->msg.stream_sequence())] = f;
  }
  auto data = f->msg.data();
  const bool taken = runner_.submit(f->tenant, std::move(data), f->attempt,
                                    [this, f](job_outcome o) { finish(f, std::move(o)); });
  if (!taken) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      inflight_.erase(inflight_key(f->tenant, f->msg.stream_sequence()));
    }
    std::lock_guard<std::mutex> g(f->mu);
    f->done = true;
    (void)f->msg.nak();
  }
}

void job_service::finish(const std::shared_ptr<inflight>& f, job_outcome o) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    inflight_.erase(inflight_key(f->tenant, f->msg.stream_sequence()));
  }
  if (o.retry && !stopping_) {
    // No sandbox now (capacity, or the tenant's quota): the job waits here, kept alive, and is
    // tried again later. Naking it would count a delivery: enough of them and a job that never
    // ran would end executor_lost. Its tenant's queue is not fetched meanwhile.
    std::cerr << "corral-executor: job " << f->job_id << " of " << f->tenant
              << " waits for a sandbox (" << o.why << ")\n";
    std::lock_guard<std::mutex> lock(mu_);
    f->retry_delay_ms = std::clamp<int64_t>(f->retry_delay_ms * 2, 500, 10'000);
    f->retry_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(f->retry_delay_ms);
    inflight_[inflight_key(f->tenant, f->msg.stream_sequence())] = f;
    waiting_.push_back(f);
    ++waiting_tenants_[f->tenant];
    cv_.notify_all();
    return;
  }
  std::lock_guard<std::mutex> g(f->mu);
  f->done = true;
  if (o.retry) {
    (void)f->msg.nak(1000);  // stopping: handed back
    return;
  }
  const auto subject = wire::subjects::results(f->tenant, f->batch_id);
  const auto id = job_msg_id(f->tenant, f->job_id);
  for (int tries = 0; tries < 5; ++tries) {
    auto p = js_->publish(subject, o.result.data(), o.result.size(), id, cfg_.publish_timeout_ms);
    if (p) {
      if (auto st = f->msg.ack(); !st)
        std::cerr << "corral-executor: job " << f->job_id << ": ack failed (" << st.error().message
                  << "): it will be redelivered; its result is kept once\n";
      return;
    }
    std::cerr << "corral-executor: job " << f->job_id << ": publishing the result failed: "
              << p.error().message << "\n";
  }
  (void)f->msg.nak(1000);  // not stored: run again (a result stored meanwhile stays single)
}

}  // namespace corral::jobs
