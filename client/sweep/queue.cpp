// A sweep's queue runner: the jobs published to the tenant's JetStream job queue, the results
// read back from its results stream through the executors (docs/jobs.md).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "bus/jetstream.hpp"
#include "client/sweep/job.hpp"
#include "client/sweep/runner.hpp"
#include "schemas/subjects.hpp"

namespace corral::sweep {

void runner::take_queue_result(const std::vector<uint8_t>& m, std::vector<uint8_t>& seen) {
  auto r = read_result(m.data(), m.size());
  if (!r) {
    ++unreadable_;
    return;
  }
  auto it = by_job_id_.find(r->job_id);
  if (it == by_job_id_.end()) {
    ++stale_;  // a program of an earlier version of the input, or another sweep's job
    return;
  }
  if (seen[it->second]) {
    ++duplicates_;
    return;
  }
  seen[it->second] = 1;
  entry& e = entries_[it->second];
  if (e.finished) return;  // its line is in the output file already
  std::string why;
  auto p = load(e, &why);
  if (!p) {
    no_result(e, why);
    ++abandoned_;
    return;
  }
  record(e, *p, *r);
}

int runner::run_queue(client::session& c) {
  const std::string results_subject = wire::subjects::results(cfg_.tenant, batch_);
  const std::string jobs_subject = wire::subjects::jobs(cfg_.tenant, cfg_.pool);
  const std::string hint =
      ": --queue needs the job streams that a corral-executor with JetStream creates (start one, "
      "or `corral up`), or run with --direct";
  // The tenant's own two streams (docs/jobs.md): every executor answers the setup once they
  // exist and it consumes the queue.
  auto setup = c.setup_jobs();
  if (!setup) {
    note_("corral sweep: cannot set up the job streams (" +
                   std::string(wire::to_string(setup.code)) + ": " + setup.message +
                   ")" + hint);
    return 1;
  }
  std::string why;
  auto js = bus::jetstream::publisher(c.conn(), &why);
  if (!js) {
    note_("corral sweep: " + why + hint);
    return 1;
  }
  std::vector<uint8_t> seen(entries_.size(), 0);
  // Results are read back through the executors (corral.v1.{t}.read.results), by stream
  // sequence; a live subscription to the batch's result subject wakes the reader when one is
  // stored.
  uint64_t next_seq = 1;
  std::mutex bell_mu;
  std::condition_variable bell;
  bool rang = false;
  auto doorbell = c.conn().subscribe(results_subject, "", [&](bus::message&&) {
    std::lock_guard<std::mutex> lock(bell_mu);
    rang = true;
    bell.notify_all();
  });
  if (!doorbell) {
    note_("corral sweep: cannot subscribe to " + results_subject + ": " + doorbell.error().message);
    return 1;
  }
  // Reads what is stored from next_seq on; false (and a note) on a failed read.
  auto read_stored = [&]() -> bool {
    for (;;) {
      auto page = c.read_results(batch_, next_seq, [&](std::vector<uint8_t>&& bytes) {
        take_queue_result(bytes, seen);
      });
      if (!page) {
        note_("corral sweep: cannot read " + results_subject + ": " +
                       wire::to_string(page.error().code) + ": " + page.error().message);
        return false;
      }
      next_seq = page->next;
      if (!page->more) return true;
    }
  };

  // 1. Results already in the stream (an earlier, interrupted run of this batch): their jobs
  //    are not published again.
  if (!read_stored()) return 1;

  // 2. Publish the jobs that have no result yet (on threads), while 3. reading the results.
  std::vector<std::size_t> to_publish;
  for (std::size_t i = 0; i < entries_.size(); ++i)
    if (!entries_[i].finished && !entries_[i].job_id.empty()) to_publish.push_back(i);
  std::atomic<std::size_t> next{0};
  auto publisher = [&] {
    for (std::size_t k; !stopping() && (k = next++) < to_publish.size();) {
      const entry& e = entries_[to_publish[k]];
      std::string why;
      auto p = load(e, &why);
      if (!p) {
        no_result(e, why);
        ++abandoned_;
        continue;
      }
      const auto job = build_job(*p, batch_, e.job_id, o_);
      // The executor's Nats-Msg-Id of a job (executor/jobs job_msg_id): "{tenant}.{job_id}".
      const std::string msg_id = cfg_.tenant + "." + e.job_id;
      for (int attempt = 1;; ++attempt) {
        auto ack = js->publish(jobs_subject, job.data(), job.size(), msg_id, publish_ack_timeout_ms);
        if (ack) {
          ++(ack.value().duplicate ? already_queued_ : published_);
          break;
        }
        if (ack.error().code == bus::errc::no_responders) {
          stop("no stream holds " + jobs_subject + " any more");
        } else if (ack.error().code == bus::errc::invalid || attempt >= max_transport_attempts) {
          no_result(e, "cannot publish the job: " + std::string(wire::EnumNameErrorCode(ack.error().code)) + ": " +
                           ack.error().message);
        } else {
          pause(backoff(attempt));
          if (!stopping()) continue;
        }
        ++abandoned_;
        break;
      }
    }
  };
  const auto n = std::min<std::size_t>(
      {static_cast<std::size_t>(o_.concurrency), static_cast<std::size_t>(max_publishers),
       to_publish.size()});
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < n; ++i) threads.emplace_back(publisher);

  const std::size_t ran_before_publishing = ran_;
  auto awaited = [&] {
    // Published (or being published) jobs still without a result.
    const std::size_t got = ran_ - ran_before_publishing;
    const std::size_t expected = to_publish.size() - std::min(to_publish.size(), abandoned_.load());
    return expected > got ? expected - got : 0;
  };
  last_result_ms_ = elapsed_ms();
  while (!stopping() && awaited() > 0) {
    {
      // Woken by a stored result, or at least every second (a doorbell lost to a reconnect).
      std::unique_lock<std::mutex> lock(bell_mu);
      bell.wait_for(lock, std::chrono::milliseconds(results_poll_ms), [&] { return rang || stopping(); });
      rang = false;
    }
    if (!read_stored()) pause(backoff(1));
    if (elapsed_ms() - last_result_ms_ > o_.stall_ms) {
      stop("no result for " + std::to_string(o_.stall_ms / 1000) + " s; the jobs stay queued");
    }
  }
  for (auto& t : threads) t.join();
  return 0;
}

}  // namespace corral::sweep
