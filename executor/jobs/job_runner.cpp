#include "executor/jobs/job_runner.hpp"

#include <algorithm>
#include <iostream>

#include "client/base64.hpp"
#include "client/client.hpp"
#include "executor/jobs/guest.hpp"
#include "schemas/ids.hpp"

namespace corral::jobs {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). The
// guest runner's request is JSON, which carries text only: other bytes would arrive changed.
bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // the range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // cut short
    for (std::size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return false;
    }
    i += n + 1;
  }
  return true;
}

// A relative path without "..", empty or odd components: written inside the job's directory.
bool valid_job_path(std::string_view p) {
  if (p.empty() || p.size() > 1024 || p.front() == '/') return false;
  std::size_t start = 0;
  while (start <= p.size()) {
    const auto end = std::min(p.find('/', start), p.size());
    const auto part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  for (unsigned char c : p)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

wire::Outcome outcome_of(const std::string& s) {
  if (s == "exited") return wire::Outcome::exited;
  if (s == "signaled") return wire::Outcome::signaled;
  if (s == "timeout") return wire::Outcome::timeout;
  if (s == "output_limit") return wire::Outcome::output_limit;
  if (s == "rejected") return wire::Outcome::rejected;
  if (s == "oom_killed") return wire::Outcome::oom_killed;
  return wire::Outcome::internal;
}

// Everything a JobResult says.
struct result_fields {
  std::string job_id, batch_id, node, message;
  wire::Outcome outcome = wire::Outcome::internal;
  int32_t exit_code = 255, signal = 0;
  bool completed = false;
  std::vector<uint8_t> out, err;
  uint64_t out_bytes = 0, err_bytes = 0;
  bool out_truncated = false, err_truncated = false;
  wire::Isolation isolation = wire::Isolation::fresh;
  uint32_t attempt = 1;
  int64_t started_at_ms = 0, wall_ms = 0, cpu_ms = 0;
  uint64_t memory_peak_kib = 0;
};

std::vector<uint8_t> build_result(const result_fields& r) {
  flatbuffers::FlatBufferBuilder fbb(512 + r.out.size() + r.err.size());
  auto job = fbb.CreateString(r.job_id);
  auto batch = fbb.CreateString(r.batch_id);
  auto msg = fbb.CreateString(r.message);
  auto status = wire::CreateExitStatus(fbb, r.outcome, r.exit_code, r.signal, msg, r.out_bytes,
                                       r.err_bytes);
  auto out = fbb.CreateVector(r.out);
  auto err = fbb.CreateVector(r.err);
  auto node = fbb.CreateString(r.node);
  wire::JobResultBuilder b(fbb);
  b.add_job_id(job);
  b.add_batch_id(batch);
  b.add_status(status);
  b.add_completed(r.completed);
  b.add_stdout(out);
  b.add_stderr(err);
  b.add_stdout_truncated(r.out_truncated);
  b.add_stderr_truncated(r.err_truncated);
  b.add_node(node);
  b.add_isolation(r.isolation);
  b.add_attempt(r.attempt);
  b.add_started_at_ms(r.started_at_ms);
  b.add_wall_ms(r.wall_ms);
  b.add_cpu_ms(r.cpu_ms);
  b.add_memory_peak_kib(r.memory_peak_kib);
  fbb.Finish(b.Finish(), wire::JobResultIdentifier());
  return wire::release(fbb);
}

// Fills the result from the guest's answer frame.
void apply_answer(const json& a, result_fields& r) {
  r.outcome = outcome_of(a.value("outcome", std::string("internal")));
  r.exit_code = a.value("exit_code", 255);
  r.signal = a.value("signal", 0);
  r.message = a.value("message", std::string());
  r.completed = a.value("completed", false);
  r.out = client::base64_decode(a.value("stdout", std::string()));
  r.err = client::base64_decode(a.value("stderr", std::string()));
  r.out_bytes = a.value("stdout_bytes", uint64_t{0});
  r.err_bytes = a.value("stderr_bytes", uint64_t{0});
  r.out_truncated = a.value("stdout_truncated", false);
  r.err_truncated = a.value("stderr_truncated", false);
  r.started_at_ms = a.value("started_at_ms", int64_t{0});
  r.wall_ms = a.value("wall_ms", int64_t{0});
  r.cpu_ms = a.value("cpu_ms", int64_t{0});
  r.memory_peak_kib = a.value("maxrss_kib", uint64_t{0});
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::vector<uint8_t> unrun_result(const std::string& job_id, const std::string& batch_id,
                                  wire::Outcome outcome, const std::string& why,
                                  const std::string& node, uint32_t attempt) {
  result_fields r;
  r.job_id = job_id;
  r.batch_id = batch_id;
  r.outcome = outcome;
  r.exit_code = outcome == wire::Outcome::executor_lost ? 255 : 2;
  r.message = why;
  r.node = node;
  r.attempt = attempt;
  r.started_at_ms = now_ms();
  return build_result(r);
}

// -- leases -----------------------------------------------------------------------------------

// A sandbox with the guest runner serving in it. The guest's exec runs on `thread` until the
// sandbox or the guest ends; answers arrive as frames on its stdout.
struct job_runner::lease {
  std::string key, tenant, sandbox, exec_id;
  client::session* client = nullptr;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  frame_reader reader;
  std::deque<json> frames;
  bool ended = false;       // the guest's exec is over
  bool corrupt = false;     // it wrote something that is not a frame
  wire::Outcome end_outcome = wire::Outcome::internal;
  std::string end_message;
  std::string guest_stderr;  // the runner's own complaints (capped)
  uint32_t jobs = 0;
  uint64_t output_bytes = 0;
  steady::time_point born = steady::now();
  steady::time_point idle_since = steady::now();
  bool terminated = false;

  // The next frame, or nullopt when the guest ended / broke or the deadline passed (*ended).
  std::optional<json> next_frame(steady::time_point deadline, bool* gone) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_until(lock, deadline, [&] { return !frames.empty() || ended || corrupt; });
    *gone = ended || corrupt;
    if (frames.empty()) return std::nullopt;
    auto f = std::move(frames.front());
    frames.pop_front();
    return f;
  }
};

job_runner::job_runner(std::shared_ptr<bus::connection> conn, runner_config cfg)
    : conn_(std::move(conn)), cfg_(std::move(cfg)) {
  for (int i = 0; i < std::max(1, cfg_.slots); ++i) workers_.emplace_back([this] { worker(); });
  janitor_ = std::thread([this] { janitor(); });
}

job_runner::~job_runner() { stop(); }

bool job_runner::submit(std::string tenant, std::vector<uint8_t> job, uint32_t attempt,
                        done_fn done, bool may_queue) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int limit = std::max(1, cfg_.slots) + (may_queue ? std::max(0, cfg_.backlog) : 0);
    if (stopping_ || busy_ >= limit) return false;
    ++busy_;
    queue_.push_back(task{std::move(tenant), std::move(job), attempt, std::move(done)});
  }
  cv_.notify_all();
  return true;
}

int job_runner::free_slots() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_ ? 0 : std::max(0, std::max(1, cfg_.slots) - busy_);
}

void job_runner::wait_for_slot(std::chrono::milliseconds max) const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, max, [&] { return stopping_ || busy_ < std::max(1, cfg_.slots); });
}

void job_runner::stop() {
  std::deque<task> handed_back;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    handed_back.swap(queue_);
    busy_ -= static_cast<int>(handed_back.size());
  }
  cv_.notify_all();
  // Queued jobs are handed back (a queue redelivers them elsewhere); running ones finish.
  for (auto& t : handed_back) t.done(job_outcome{true, "the executor is stopping", {}});
  for (auto& w : workers_)
    if (w.joinable()) w.join();
  workers_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, l] : idle_) graveyard_.push_back(l);
    idle_.clear();
  }
  janitor_cv_.notify_all();
  if (janitor_.joinable()) janitor_.join();
}

void job_runner::worker() {
  for (;;) {
    task t;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to run
      t = std::move(queue_.front());
      queue_.pop_front();
    }
    job_outcome out;
    try {
      out = run(t);
    } catch (const std::exception& e) {
      out = job_outcome{false, {}, {}};
      const auto* job = wire::verify<wire::Job>(t.job.data(), t.job.size());
      out.result = unrun_result(job ? std::string(wire::str(job->job_id())) : std::string(),
                                job ? std::string(wire::str(job->batch_id())) : std::string(),
                                wire::Outcome::internal, std::string("job runner: ") + e.what(),
                                cfg_.node_id, t.attempt);
    }
    // The slot is free before the answer goes out: a producer that sends its next job as soon
    // as it has this one's result finds room.
    {
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
    }
    cv_.notify_all();
    t.done(std::move(out));
  }
}

client::session* job_runner::client_for(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& c = clients_[tenant];
  if (!c) {
    client::session::config cc;
    cc.tenant = tenant;
    cc.pool = cfg_.pool;
    cc.request_timeout_ms = cfg_.request_timeout_ms;
    c = client::session::over(conn_, cc);
  }
  return c.get();
}

std::shared_ptr<job_runner::lease> job_runner::acquire(const std::string& tenant,
                                                       const std::string& key, uint32_t cpu_millis,
                                                       uint32_t memory_mib, bool single_use,
                                                       std::string* why, bool* retry) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = single_use ? idle_.end() : idle_.find(key);
    if (it != idle_.end()) {
      auto l = it->second;
      idle_.erase(it);
      return l;
    }
    // Room for a new one: end the longest-idle lease of another shape if every slot has one.
    if (leases_ >= std::max(1, cfg_.slots) && !idle_.empty()) {
      auto oldest = idle_.begin();
      for (auto i = idle_.begin(); i != idle_.end(); ++i)
        if (i->second->idle_since < oldest->second->idle_since) oldest = i;
      graveyard_.push_back(oldest->second);
      idle_.erase(oldest);
      --leases_;
      janitor_cv_.notify_all();
    }
    ++leases_;
  }
  auto give_up = [&](const std::string& w, bool r) -> std::shared_ptr<lease> {
    *why = w;
    *retry = r;
    std::lock_guard<std::mutex> lock(mu_);
    --leases_;
    return nullptr;
  };
  auto* c = client_for(tenant);
  if (c == nullptr) return give_up("invalid tenant", false);
  client::create_options co;
  co.node = cfg_.node_id;
  co.cpu_millis = cpu_millis;
  co.memory_mib = memory_mib;
  co.timeout_ms = (single_use ? 0 : cfg_.lease_max_age_ms) + cfg_.max_timeout_ms +
                  cfg_.guest_start_timeout_ms + cfg_.guest_grace_ms;
  co.tags = {{sandbox_tag, single_use ? strict_sandbox : fresh_lease}};
  auto created = c->create(co);
  if (!created) {
    const auto code = created.error().code;
    return give_up("cannot create a sandbox: " + created.error().message,
                   code == wire::ErrorCode::resource_exhausted || code == wire::ErrorCode::unavailable ||
                       code == wire::ErrorCode::not_found || code == wire::ErrorCode::deadline_exceeded);
  }
  auto l = std::make_shared<lease>();
  l->key = key;
  l->tenant = tenant;
  l->sandbox = created->id;
  l->exec_id = wire::new_exec_id();
  l->client = c;
  client::exec_options eo;
  eo.argv = guest_runner_argv();
  eo.stdin_open = true;
  eo.exec_id = l->exec_id;
  lease* raw = l.get();
  l->thread = std::thread([raw, c, eo] {
    auto on_output = [raw](wire::Stream s, const uint8_t* p, std::size_t n) {
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->output_bytes += n;
      if (s == wire::Stream::stdout) {
        if (!raw->reader.feed(p, n)) raw->corrupt = true;
        while (auto f = raw->reader.next()) raw->frames.push_back(std::move(*f));
      } else if (raw->guest_stderr.size() < 4096) {
        raw->guest_stderr.append(reinterpret_cast<const char*>(p), std::min<std::size_t>(n, 4096));
      }
      raw->cv.notify_all();
    };
    auto r = c->exec(raw->sandbox, eo, on_output);
    std::lock_guard<std::mutex> lock(raw->mu);
    raw->ended = true;
    if (r) {
      raw->end_outcome = r->outcome;
      raw->end_message = r->message;
    } else {
      raw->end_message = r.error().message;
    }
    raw->cv.notify_all();
  });
  bool gone = false;
  auto ready = l->next_frame(steady::now() + std::chrono::milliseconds(cfg_.guest_start_timeout_ms),
                             &gone);
  if (!ready || !ready->value("ready", false)) {
    std::string detail;
    {
      std::lock_guard<std::mutex> lock(l->mu);
      detail = l->end_message + " " + l->guest_stderr;
    }
    retire(l);
    *why = "the guest runner did not start: " + detail;
    *retry = false;
    return nullptr;
  }
  return l;
}

void job_runner::release(std::shared_ptr<lease> l, bool healthy) {
  const auto now = steady::now();
  bool keep = healthy && l->jobs < cfg_.lease_max_jobs &&
              now - l->born < std::chrono::milliseconds(cfg_.lease_max_age_ms);
  {
    std::lock_guard<std::mutex> lock(l->mu);
    keep = keep && !l->ended && !l->corrupt && l->output_bytes < cfg_.lease_max_output_bytes;
  }
  if (!keep) return retire(std::move(l));
  l->idle_since = now;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    graveyard_.push_back(std::move(l));
    --leases_;
    janitor_cv_.notify_all();
    return;
  }
  idle_.emplace(l->key, std::move(l));
}

void job_runner::retire(std::shared_ptr<lease> l) {
  std::lock_guard<std::mutex> lock(mu_);
  graveyard_.push_back(std::move(l));
  --leases_;
  janitor_cv_.notify_all();
}

void job_runner::janitor() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    janitor_cv_.wait_for(lock, std::chrono::milliseconds(500));
    const auto now = steady::now();
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (now - it->second->idle_since > std::chrono::milliseconds(cfg_.lease_idle_ms)) {
        graveyard_.push_back(it->second);
        --leases_;
        it = idle_.erase(it);
      } else {
        ++it;
      }
    }
    auto dead = std::move(graveyard_);
    graveyard_.clear();
    const bool done = stopping_ && workers_.empty();
    lock.unlock();
    for (auto& l : dead) {
      // Ending the sandbox ends the guest's exec (its thread then returns).
      auto r = l->client->terminate(l->sandbox);
      if (!r && r.error().code != wire::ErrorCode::not_found)
        std::cerr << "corral-executor: job runner: cannot end " << l->sandbox << ": "
                  << r.error().message << "\n";
      if (l->thread.joinable()) l->thread.join();
    }
    dead.clear();
    lock.lock();
    if (done && graveyard_.empty() && idle_.empty()) return;
  }
}

// -- one job ------------------------------------------------------------------------------------

// The bytes a Job's strings and vectors decode to, counted without copying anything.
std::size_t decoded_bytes(const wire::Job& job) {
  std::size_t n = wire::str(job.source()).size() + (job.stdin() ? job.stdin()->size() : 0);
  if (job.argv() != nullptr)
    for (const auto* a : *job.argv()) n += a->size();
  if (job.env() != nullptr)
    for (const auto* kv : *job.env()) n += wire::str(kv->key()).size() + wire::str(kv->value()).size();
  if (job.files() != nullptr)
    for (const auto* f : *job.files())
      n += wire::str(f->path()).size() + (f->data() ? f->data()->size() : 0);
  return n;
}

job_plan plan_job(const runner_config& cfg, const uint8_t* data, std::size_t size) {
  const auto* job = wire::verify<wire::Job>(data, size);
  job_plan r;
  auto reject = [&](const std::string& why) {
    r.rejected = why;
    return r;
  };
  if (job == nullptr) return reject("not a Job");
  r.job_id = std::string(wire::str(job->job_id()));
  r.batch_id = std::string(wire::str(job->batch_id()));
  r.isolation = job->isolation();
  // A FlatBuffer may point many offsets at one string, file or pair: it verifies, and decodes
  // to many times its size. A Job's contents are never larger than the Job itself.
  if (decoded_bytes(*job) > size)
    return reject("the job's fields decode to more bytes than the job has (shared offsets)");
  if (!wire::valid_token(r.job_id)) return reject("job_id: 1..64 characters of [A-Za-z0-9_-]");
  if (!wire::valid_token(r.batch_id)) return reject("batch_id: 1..64 characters of [A-Za-z0-9_-]");
  const std::string image(wire::str(job->image()));
  if (!image.empty() && image != "host") return reject("image: unknown image (only \"host\")");
  const std::string language(wire::str(job->language()));
  json& req = r.request;
  if (language == "python" || language == "javascript") {
    req["mode"] = language;
    if (!is_utf8(wire::str(job->source()))) return reject("source: not UTF-8");
    req["source"] = std::string(wire::str(job->source()));
  } else if (language.empty()) {
    if (job->argv() == nullptr || job->argv()->size() == 0)
      return reject("argv: empty (and no language)");
    std::vector<std::string> argv;
    for (const auto* a : *job->argv()) {
      if (!is_utf8(wire::str(a))) return reject("argv: an argument that is not UTF-8");
      argv.emplace_back(wire::str(a));
    }
    if (argv.front().empty()) return reject("argv: empty program name");
    req["mode"] = "argv";
    req["argv"] = argv;
  } else {
    return reject("language: \"" + language + "\" is not one of python, javascript");
  }
  if (job->timeout_ms() < 0 || job->timeout_ms() > cfg.max_timeout_ms)
    return reject("timeout_ms: must be 0 (default) or up to " + std::to_string(cfg.max_timeout_ms));
  if (job->output_limit_bytes() > cfg.max_output_limit)
    return reject("output_limit_bytes: at most " + std::to_string(cfg.max_output_limit));
  r.timeout_ms = job->timeout_ms() == 0 ? cfg.default_timeout_ms : job->timeout_ms();
  req["timeout_ms"] = r.timeout_ms;
  req["output_limit"] = job->output_limit_bytes() == 0 ? cfg.default_output_limit
                                                       : job->output_limit_bytes();
  if (job->stdin() != nullptr) req["stdin"] = client::base64_encode(job->stdin()->data(), job->stdin()->size());
  json files = json::array();
  if (job->files() != nullptr) {
    if (job->files()->size() > cfg.max_files)
      return reject("files: at most " + std::to_string(cfg.max_files));
    for (const auto* f : *job->files()) {
      const std::string path(wire::str(f->path()));
      if (!valid_job_path(path) || !is_utf8(path))
        return reject("files: \"" + path + "\" is not a relative path inside the job's directory");
      files.push_back({{"path", path},
                       {"data", f->data() ? client::base64_encode(f->data()->data(), f->data()->size())
                                          : std::string()}});
    }
  }
  req["files"] = files;
  json env = json::object();
  for (const auto& [k, v] : wire::pairs_of(job->env())) {
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
      return reject("env: invalid name \"" + k + "\"");
    if (!is_utf8(k) || !is_utf8(v)) return reject("env: a name or value that is not UTF-8");
    env[k] = v;
  }
  req["env"] = env;
  req["id"] = r.job_id;
  r.cpu_millis = job->cpu_millis();
  r.memory_mib = job->memory_mib();
  return r;
}


job_outcome job_runner::run(const task& t) {
  job_outcome out;
  job_plan plan = plan_job(cfg_, t.job.data(), t.job.size());
  result_fields r;
  r.node = cfg_.node_id;
  r.attempt = t.attempt;
  r.started_at_ms = now_ms();
  auto reject = [&](const std::string& why) {
    r.outcome = wire::Outcome::rejected;
    r.exit_code = 2;
    r.message = why;
    out.result = build_result(r);
    return out;
  };
  r.job_id = plan.job_id;
  r.batch_id = plan.batch_id;
  r.isolation = plan.isolation;
  if (!plan.rejected.empty()) return reject(plan.rejected);
  json& req = plan.request;
  const int64_t timeout_ms = plan.timeout_ms;

  auto* c = client_for(t.tenant);
  if (c == nullptr) return reject("invalid tenant");
  const auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms + cfg_.guest_grace_ms);

  // fresh: a lease of this tenant and shape, kept for the next job; strict: a lease of its own,
  // ended after this job.
  const bool strict = plan.isolation == wire::Isolation::strict;
  const std::string key = t.tenant + "/" + std::to_string(plan.cpu_millis) + "/" +
                          std::to_string(plan.memory_mib);
  std::string why;
  bool retry = false;
  auto l = acquire(t.tenant, key, plan.cpu_millis, plan.memory_mib, strict, &why, &retry);
  if (!l) {
    if (retry) {
      out.retry = true;
      out.why = why;
      return out;
    }
    r.outcome = wire::Outcome::internal;
    r.message = why;
    out.result = build_result(r);
    return out;
  }
  ++l->jobs;
  const uint64_t disconnects_before = disconnects_.load();
  auto frame = encode_frame(req);
  // In pieces: a job with files and stdin near NATS's payload cap makes a frame larger than one
  // StdinWrite may carry. The guest reads a frame only once it is whole.
  for (std::size_t at = 0; at < frame.size();) {
    const std::size_t n = std::min(cfg_.stdin_chunk_bytes, frame.size() - at);
    auto w = c->stdin_write(l->sandbox, l->exec_id, frame.data() + at, n, false);
    if (!w) {
      retire(l);
      out.retry = true;  // nothing ran: the lease broke before the job reached it
      out.why = "the guest runner did not take the job: " + w.message;
      return out;
    }
    at += n;
  }
  bool gone = false;
  auto answer = l->next_frame(deadline, &gone);
  if (answer && answer->value("id", std::string()) == r.job_id) {
    apply_answer(*answer, r);
    // The guest asks for its sandbox to go when something of the job outlived every kill
    // (docs/jobs.md, "Isolation levels"): the next job then gets a new lease.
    const auto retire_why = answer->find("retire");
    const bool healthy = retire_why == answer->end();
    if (!healthy)
      std::cerr << "corral-executor: job runner: retiring " << l->sandbox << ": "
                << (retire_why->is_string() ? retire_why->get<std::string>() : std::string("(no reason)"))
                << "\n";
    if (strict) retire(std::move(l));
    else release(std::move(l), healthy);
  } else {
    // No answer in time (the guest is wedged, or the job broke the sandbox): the sandbox goes.
    wire::Outcome end = wire::Outcome::internal;
    std::string end_message;
    {
      std::lock_guard<std::mutex> lock(l->mu);
      end = l->end_outcome;
      end_message = l->end_message;
      gone = l->ended;
    }
    retire(l);
    if (disconnects_.load() != disconnects_before && !(gone && end == wire::Outcome::oom_killed)) {
      // The answer may have been lost with the connection: the job is run again, not given a
      // status it did not earn.
      out.retry = true;
      out.why = "the connection to NATS was lost while the job ran";
      return out;
    }
    if (gone && end == wire::Outcome::oom_killed) {
      r.outcome = wire::Outcome::oom_killed;
      r.exit_code = 137;
      r.message = "the sandbox ran out of memory";
    } else if (!gone) {
      r.outcome = wire::Outcome::timeout;
      r.exit_code = 124;
      r.signal = 9;
      r.message = "no answer within the timeout; the sandbox was destroyed";
    } else {
      r.outcome = wire::Outcome::internal;
      r.message = "the job's sandbox ended: " + std::string(wire::to_string(end)) + " " + end_message;
    }
  }
  out.result = build_result(r);
  return out;
}

}  // namespace corral::jobs
