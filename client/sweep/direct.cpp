// A sweep's direct runner: `concurrency` run requests in flight (corral.v1.{t}.pool.{p}.run),
// each a program, retried while the executors are busy or briefly unreachable.
#include <algorithm>
#include <chrono>
#include <atomic>
#include <thread>

#include "client/sweep/job.hpp"
#include "client/sweep/runner.hpp"
#include "schemas/subjects.hpp"

namespace corral::sweep {

// One job over run(t, pool), retried while the executors are busy or briefly unreachable.
std::optional<job_result> runner::run_one(client::session& c, const entry& e, const program& p,
                                          const wire::bytes& job, std::string* why) {
  const std::string subject = wire::subjects::run(cfg_.tenant, cfg_.pool);
  const int64_t timeout = p.timeout_ms + request_margin_ms;
  int transport_failures = 0, busy = 0;
  std::optional<steady::time_point> nobody_since;
  while (!stopping()) {
    auto r = c.conn().request(subject, job.data(), job.size(), timeout);
    if (!r) {
      if (r.error().code == bus::errc::no_responders) {
        if (!nobody_since) nobody_since = steady::now();
        if (steady::now() - *nobody_since > std::chrono::milliseconds(no_executor_ms)) {
          stop("no executor serves pool " + cfg_.pool + " (nobody answers on " + subject + ")");
          break;
        }
        pause(backoff(++busy));
        continue;
      }
      if (r.error().code == bus::errc::invalid) {
        *why = "request refused: " + r.error().message;
        return std::nullopt;
      }
      if (++transport_failures >= max_transport_attempts) {
        *why = std::string(wire::EnumNameErrorCode(r.error().code)) + " " + std::to_string(transport_failures) +
               " times: " + r.error().message;
        return std::nullopt;
      }
      note_("corral sweep: " + e.id + ": " + wire::EnumNameErrorCode(r.error().code) + " (" + r.error().message +
                     "), trying again");
      pause(backoff(++busy));
      continue;
    }
    nobody_since.reset();
    const auto& m = r.value();
    if (wire::has_identifier<wire::ErrorReply>(m.data.data(), m.data.size())) {
      const auto* er = wire::verify<wire::ErrorReply>(m.data.data(), m.data.size());
      const auto code = er ? er->code() : wire::ErrorCode::malformed;
      const std::string msg = er ? std::string(wire::str(er->message())) : "malformed error reply";
      if (code == wire::ErrorCode::resource_exhausted || code == wire::ErrorCode::unavailable) {
        if (elapsed_ms() - last_result_ms_ > o_.stall_ms) {
          *why = "no executor took it for " + std::to_string(o_.stall_ms / 1000) + " s (" + msg + ")";
          return std::nullopt;
        }
        pause(backoff(++busy, busy_backoff_max_ms));
        continue;
      }
      *why = std::string(wire::to_string(code)) + ": " + msg;
      return std::nullopt;
    }
    auto res = read_result(m.data.data(), m.data.size());
    if (!res) {
      *why = "the reply is not a JobResult";
      return std::nullopt;
    }
    if (res->job_id != e.job_id) {
      *why = "the reply is the result of another job (" + res->job_id + ")";
      return std::nullopt;
    }
    return res;
  }
  *why = "the sweep stopped";
  return std::nullopt;
}

int runner::run_direct(client::session& c) {
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < entries_.size(); ++i)
    if (!entries_[i].finished && !entries_[i].job_id.empty()) todo.push_back(i);
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t k; !stopping() && (k = next++) < todo.size();) {
      entry& e = entries_[todo[k]];
      std::string why;
      auto p = load(e, &why);
      if (!p) {
        no_result(e, why);
        continue;
      }
      const auto job = build_job(*p, batch_, e.job_id, o_);
      auto r = run_one(c, e, *p, job, &why);
      if (!r) {
        if (!stopping()) no_result(e, why);
        continue;
      }
      record(e, *p, *r);
    }
  };
  std::vector<std::thread> workers;
  const auto n = std::min<std::size_t>(static_cast<std::size_t>(o_.concurrency), todo.size());
  for (std::size_t i = 0; i < n; ++i) workers.emplace_back(worker);
  for (auto& w : workers) w.join();
  return 0;
}

}  // namespace corral::sweep
