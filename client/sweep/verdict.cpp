#include "client/sweep/verdict.hpp"

#include <nlohmann/json.hpp>

#include "client/sweep/options.hpp"
#include "client/sweep/text.hpp"

namespace corral::sweep {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;
using detail::is_space;

// At most `cap` bytes of s, not cutting a UTF-8 sequence in two.
std::string cap_utf8(const std::string& s, std::size_t cap, bool* capped) {
  *capped = s.size() > cap;
  if (!*capped) return s;
  std::size_t n = cap;
  for (int back = 0; back < 3 && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80; ++back)
    --n;
  return s.substr(0, n);
}

}  // namespace

std::string normalize_output(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t nl = s.find('\n', start);
    if (nl == std::string_view::npos) nl = s.size();
    std::string_view line = s.substr(start, nl - start);
    while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
    out.append(line);
    if (nl < s.size()) out.push_back('\n');
    start = nl + 1;
  }
  while (!out.empty() && is_space(out.back())) out.pop_back();
  return out;
}

bool stdout_matches(std::string_view actual, std::string_view expected) {
  return normalize_output(actual) == normalize_output(expected);
}

std::optional<job_result> read_result(const uint8_t* data, std::size_t n) {
  const auto* r = wire::verify<wire::JobResult>(data, n);
  if (r == nullptr) return std::nullopt;
  job_result out;
  out.job_id = std::string(wire::str(r->job_id()));
  out.batch_id = std::string(wire::str(r->batch_id()));
  if (const auto* st = r->status()) {
    out.outcome = st->outcome();
    out.exit_code = st->exit_code();
    out.signal = st->signal();
    out.message = std::string(wire::str(st->message()));
  } else {
    out.outcome = wire::Outcome::internal;
    out.exit_code = no_status_exit_code;
    out.message = "a result without a status";
  }
  out.completed = r->completed();
  if (r->stdout()) out.stdout_data.assign(r->stdout()->begin(), r->stdout()->end());
  if (r->stderr()) out.stderr_data.assign(r->stderr()->begin(), r->stderr()->end());
  out.stdout_truncated = r->stdout_truncated();
  out.stderr_truncated = r->stderr_truncated();
  out.node = std::string(wire::str(r->node()));
  out.isolation = r->isolation();
  out.attempt = r->attempt();
  out.wall_ms = r->wall_ms();
  out.cpu_ms = r->cpu_ms();
  out.memory_peak_kib = r->memory_peak_kib();
  return out;
}

bool passed(const program& p, const job_result& r) {
  if (r.outcome != wire::Outcome::exited || r.exit_code != 0) return false;
  if (p.expected && (r.stdout_truncated || !stdout_matches(r.stdout_data, *p.expected)))
    return false;
  // With tests, or with nothing to compare: the program must have run to its end.
  if ((p.has_tests || !p.expected) && !r.completed) return false;
  return true;
}

std::string result_line(const program& p, const job_result& r) {
  ordered_json j;
  j["id"] = p.id;
  j["line"] = p.line;
  j["passed"] = passed(p, r);
  j["status"] = wire::to_string(r.outcome);
  j["returncode"] = r.exit_code;
  j["completed"] = r.completed;
  bool out_capped = false, err_capped = false;
  j["stdout"] = cap_utf8(r.stdout_data, out_stream_cap, &out_capped);
  j["stderr"] = cap_utf8(r.stderr_data, out_stream_cap, &err_capped);
  j["stdout_truncated"] = r.stdout_truncated || out_capped;
  j["stderr_truncated"] = r.stderr_truncated || err_capped;
  j["wall_ms"] = r.wall_ms;
  j["cpu_ms"] = r.cpu_ms;
  j["memory_peak_kib"] = r.memory_peak_kib;
  j["node"] = r.node;
  j["isolation"] = wire::EnumNameIsolation(r.isolation);
  j["attempt"] = r.attempt;
  j["job_id"] = r.job_id;
  if (!r.message.empty()) j["message"] = r.message;
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string invalid_line(std::size_t line, const std::string& id, const std::string& why) {
  ordered_json j;
  j["id"] = id;
  j["line"] = line;
  j["passed"] = false;
  j["status"] = "invalid";
  j["returncode"] = nullptr;
  j["message"] = why;
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace corral::sweep
