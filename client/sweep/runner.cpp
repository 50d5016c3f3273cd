#include "client/sweep/runner.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "client/sweep/job.hpp"
#include "schemas/ids.hpp"

namespace corral::sweep {

runner::runner(options o, client::session::config cfg, reporter note)
    : o_(std::move(o)), cfg_(std::move(cfg)), note_(std::move(note)) {}

runner::~runner() {
  if (in_fd_ >= 0) ::close(in_fd_);
}

int64_t runner::elapsed_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started_).count();
}

runner::counts runner::progress() const {
  counts c;
  c.total = entries_.size();
  c.before = before_;
  c.before_passed = before_passed_;
  c.before_invalid = before_invalid_;
  c.ran = ran_;
  c.passed = passed_;
  c.invalid_now = invalid_now_;
  c.todo = todo_;
  c.published = published_;
  c.already_queued = already_queued_;
  c.duplicates = duplicates_;
  c.stale = stale_;
  c.unreadable = unreadable_;
  return c;
}

std::size_t runner::missing() const {
  std::size_t n = 0;
  for (const auto& e : entries_) n += e.finished ? 0 : 1;
  return n;
}

std::string runner::stop_reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_reason_;
}

int runner::prepare(std::string* why) {
  if (!wire::valid_token(cfg_.tenant) || !wire::valid_token(cfg_.pool)) {
    *why = "tenant and pool must be 1..64 characters of [A-Za-z0-9_-]";
    return exit_usage;
  }
  batch_ = o_.batch.empty() ? default_batch_id(o_.input, o_.out) : o_.batch;

  // What the output file holds already.
  out_file_state earlier;
  {
    std::ifstream existing(o_.out, std::ios::binary);
    if (existing) earlier = scan_out_file(existing);
  }
  if (!out_.open(o_.out, earlier, why)) return exit_missing;
  if (earlier.partial_tail) note_("corral sweep: " + o_.out + ": cut off a partial last line");
  if (earlier.unreadable_lines > 0)
    note_("corral sweep: " + o_.out + ": " + std::to_string(earlier.unreadable_lines) +
          " lines without an id ignored");
  if (!index_input(why)) return exit_missing;

  for (auto& e : entries_) {
    auto it = earlier.finished.find(e.id);
    if (it != earlier.finished.end()) {
      e.finished = true;
      ++before_;
      if (it->second.passed) ++before_passed_;
      if (it->second.invalid) ++before_invalid_;
      continue;
    }
    if (e.job_id.empty()) {
      note_("corral sweep: " + o_.input + ":" + std::to_string(e.line) + ": " + e.why);
      if (!out_.append(invalid_line(e.line, e.id, e.why))) {
        *why = "cannot write " + o_.out + ": " + std::strerror(errno);
        return exit_missing;
      }
      e.finished = true;
      ++invalid_now_;
      continue;
    }
    ++todo_;
  }
  return exit_all_done;
}

int runner::run() {
  if (todo_ == 0) return exit_all_done;
  std::string error;
  auto c = client::session::connect(cfg_, &error);
  if (!c) {
    stop("cannot reach NATS at " + cfg_.nats_url + ": " + error);
    return exit_all_done;
  }
  return o_.mode == transport::queue ? run_queue(*c) : run_direct(*c);
}

std::optional<program> runner::load(const entry& e, std::string* why) const {
  std::string text(e.length, '\0');
  std::size_t got = 0;
  while (got < e.length) {
    const ssize_t n = ::pread(in_fd_, text.data() + got, e.length - got,
                              static_cast<off_t>(e.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *why = "cannot read line " + std::to_string(e.line) + " of " + o_.input + " again";
      return std::nullopt;
    }
    got += static_cast<std::size_t>(n);
  }
  auto parsed = parse_line(text, e.line, o_.timeout_ms);
  if (!parsed.prog || parsed.prog->id != e.id) {
    *why = "line " + std::to_string(e.line) + " of " + o_.input + " changed during the sweep";
    return std::nullopt;
  }
  return std::move(parsed.prog);
}

bool runner::index_input(std::string* why) {
  in_fd_ = ::open(o_.input.c_str(), O_RDONLY | O_CLOEXEC);
  if (in_fd_ < 0) {
    *why = "cannot open " + o_.input + ": " + std::strerror(errno);
    return false;
  }
  std::ifstream in(o_.input, std::ios::binary);
  if (!in) {
    *why = "cannot read " + o_.input;
    return false;
  }
  std::unordered_map<std::string, std::size_t> first_line;  // id -> line
  std::string text;
  uint64_t offset = 0;
  std::size_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    entry e;
    e.line = line;
    e.offset = offset;
    e.length = text.size();
    offset += text.size() + 1;
    auto parsed = parse_line(text, line, o_.timeout_ms);
    if (parsed.blank) continue;
    if (!parsed.id.empty()) {
      auto [it, fresh] = first_line.emplace(parsed.id, line);
      if (!fresh) {
        parsed.prog.reset();
        parsed.error = "duplicate id \"" + parsed.id + "\" (first on line " +
                       std::to_string(it->second) + ")";
        parsed.id.clear();
      }
    }
    if (parsed.prog) {
      e.id = parsed.id;
      e.job_id = job_id(batch_, *parsed.prog);
      by_job_id_.emplace(e.job_id, entries_.size());
    } else {
      e.id = parsed.id.empty() ? line_id(line) : parsed.id;
      e.why = parsed.error;
    }
    entries_.push_back(std::move(e));
  }
  if (in.bad()) {
    *why = "cannot read " + o_.input;
    return false;
  }
  return true;
}

void runner::stop(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_reason_.empty()) stop_reason_ = why;
    stop_ = true;
  }
  cv_.notify_all();
}

void runner::pause(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stop_.load(); });
}

int64_t runner::backoff(int attempt, int64_t cap_ms) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const int64_t cap = std::min<int64_t>(cap_ms, backoff_min_ms << std::min(attempt, 10));
  return backoff_min_ms / 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(cap));
}

void runner::record(entry& e, const program& p, const job_result& r) {
  if (!out_.append(result_line(p, r))) {
    stop("cannot write " + o_.out + ": " + std::strerror(errno));
    return;
  }
  e.finished = true;
  if (passed(p, r)) ++passed_;
  ++ran_;
  last_result_ms_ = elapsed_ms();
}

void runner::no_result(const entry& e, const std::string& why) {
  note_("corral sweep: " + e.id + " (line " + std::to_string(e.line) +
                 "): no result: " + why);
}

}  // namespace corral::sweep
