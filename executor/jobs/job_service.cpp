#include "executor/jobs/job_service.hpp"

#include <iostream>

#include "schemas/codec.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral::jobs {

bus::stream_config jobs_stream(const service_config& cfg) {
  bus::stream_config s;
  s.name = std::string(wire::subjects::jobs_stream);
  s.subjects = {wire::subjects::jobs_stream_subjects()};
  s.work_queue = true;
  s.duplicate_window_ms = cfg.dedup_window_ms;
  s.max_msg_size = static_cast<int32_t>(wire::max_message_bytes);
  return s;
}

bus::stream_config results_stream(const service_config& cfg) {
  bus::stream_config s;
  s.name = std::string(wire::subjects::results_stream);
  s.subjects = {wire::subjects::results_stream_subjects()};
  s.work_queue = false;
  s.duplicate_window_ms = cfg.dedup_window_ms;
  s.max_age_ms = cfg.results_max_age_ms;
  s.max_msg_size = static_cast<int32_t>(wire::max_message_bytes);
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
};

job_service::job_service(std::shared_ptr<bus::connection> conn, job_runner& runner,
                         service_config cfg)
    : conn_(std::move(conn)), runner_(runner), cfg_(std::move(cfg)) {}

job_service::~job_service() { stop(); }

bool job_service::start(std::string* why) {
  auto sub = conn_->subscribe(
      wire::subjects::run_any_tenant(cfg_.pool), wire::subjects::run_queue_group(cfg_.pool),
      [this](bus::message&& m) {
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
    if (why) *why = "subscribe to run requests: " + sub.detail;
    return false;
  }
  run_sub_ = std::move(sub.value);

  std::string js_why;
  js_ = bus::jetstream::open(*conn_, &js_why);
  if (!js_) {
    std::cerr << "corral-executor: no JetStream (" << js_why
              << "): jobs are taken as run requests only\n";
    return true;
  }
  for (const auto& s : {jobs_stream(cfg_), results_stream(cfg_)}) {
    if (auto st = js_->ensure_stream(s); !st) {
      std::cerr << "corral-executor: cannot set up stream " << s.name << ": " << st.detail
                << ": jobs are taken as run requests only\n";
      return true;
    }
  }
  bus::consumer_options co;
  co.ack_wait_ms = cfg_.ack_wait_ms;
  co.max_deliver = -1;  // the executor decides when a job has been tried enough (max_attempts)
  auto c = js_->pull(std::string(wire::subjects::jobs_stream), "corral-" + cfg_.pool,
                     wire::subjects::jobs_any_tenant(cfg_.pool), co);
  if (!c) {
    std::cerr << "corral-executor: cannot bind the job queue consumer: " << c.detail
              << ": jobs are taken as run requests only\n";
    return true;
  }
  consumer_ = std::move(c.value);
  puller_ = std::thread([this] { pull_loop(); });
  ticker_ = std::thread([this] { ticker_loop(); });
  return true;
}

void job_service::stop() {
  if (stopping_.exchange(true)) return;
  if (run_sub_) run_sub_->unsubscribe();
  cv_.notify_all();
  if (puller_.joinable()) puller_.join();
  if (ticker_.joinable()) ticker_.join();
}

void job_service::pull_loop() {
  while (!stopping_) {
    runner_.wait_for_slot(std::chrono::milliseconds(500));
    const int free = runner_.free_slots();
    if (free <= 0 || stopping_) continue;
    auto got = consumer_->fetch(free, 1000);
    if (!got) {
      if (got.error != bus::bus_error::timeout) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping_.load(); });
      }
      continue;
    }
    for (auto& m : got.value) {
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
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, every, [&] { return stopping_.load(); });
    std::vector<std::shared_ptr<inflight>> now;
    for (auto& [seq, f] : inflight_) now.push_back(f);
    lock.unlock();
    for (auto& f : now) {
      std::lock_guard<std::mutex> g(f->mu);
      if (!f->done) (void)f->msg.in_progress();
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
    inflight_[f->msg.stream_sequence()] = f;
  }
  auto data = f->msg.data();
  const bool taken = runner_.submit(f->tenant, std::move(data), f->attempt,
                                    [this, f](job_outcome o) { finish(f, std::move(o)); });
  if (!taken) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      inflight_.erase(f->msg.stream_sequence());
    }
    std::lock_guard<std::mutex> g(f->mu);
    f->done = true;
    (void)f->msg.nak();
  }
}

void job_service::finish(const std::shared_ptr<inflight>& f, job_outcome o) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    inflight_.erase(f->msg.stream_sequence());
  }
  std::lock_guard<std::mutex> g(f->mu);
  f->done = true;
  if (o.retry) {
    (void)f->msg.nak(1000);
    return;
  }
  const auto subject = wire::subjects::results(f->tenant, f->batch_id);
  const auto id = job_msg_id(f->tenant, f->job_id);
  for (int tries = 0; tries < 5; ++tries) {
    auto p = js_->publish(subject, o.result.data(), o.result.size(), id, cfg_.publish_timeout_ms);
    if (p) {
      if (auto st = f->msg.ack(); !st)
        std::cerr << "corral-executor: job " << f->job_id << ": ack failed (" << st.detail
                  << "): it will be redelivered; its result is kept once\n";
      return;
    }
    std::cerr << "corral-executor: job " << f->job_id << ": publishing the result failed: "
              << p.detail << "\n";
  }
  (void)f->msg.nak(1000);  // not stored: run again (a result stored meanwhile stays single)
}

}  // namespace corral::jobs
