#include "cli/sweep.hpp"
#include "cli/write_all.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "bus/jetstream.hpp"
#include "schemas/ids.hpp"
#include "schemas/subjects.hpp"

namespace corral::cli::sweep {

const char* const usage_text =
    "  sweep PROBLEMS.jsonl --out RESULTS.jsonl [--concurrency N] [--direct | --queue]\n"
    "        [--isolation fresh|strict] [--batch ID] [--timeout S] [--output-limit BYTES]\n"
    "        [--stall-timeout S]\n"
    "                                 run one program a line (HumanEval's format works as is),\n"
    "                                 each in a fresh sandbox; one JSON result a line appended\n"
    "                                 to --out; ids already there are not run again (resume).\n"
    "                                 --direct (default): N run requests in flight; --queue:\n"
    "                                 through the JetStream job queue and results stream\n";

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr std::size_t max_id_bytes = 1024;

bool parse_positive_seconds(const std::string& s, double max_s, int64_t& ms) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end == s.c_str() || *end != '\0' || !(v > 0) || v > max_s) return false;
  ms = std::max<int64_t>(1, std::llround(v * 1000));
  return true;
}

bool parse_count(const std::string& s, unsigned long max, unsigned long& out) {
  char* end = nullptr;
  errno = 0;
  if (s.empty() || s[0] == '-') return false;
  const unsigned long v = std::strtoul(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v > max) return false;
  out = v;
  return true;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// A name to call in the appended check(...): an identifier, possibly dotted.
bool valid_entry_point(const std::string& s) {
  if (s.empty() || s.size() > 256) return false;
  bool start = true;
  for (char c : s) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
    const bool digit = c >= '0' && c <= '9';
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    if (!(letter || (digit && !start))) return false;
    start = false;
  }
  return !start;
}

uint64_t fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}
constexpr uint64_t fnv_basis = 14695981039346656037ull;

// Fields hashed with their lengths, so that no two different tuples hash the same text.
uint64_t hash_fields(std::initializer_list<std::string_view> fields) {
  uint64_t h = fnv_basis;
  for (auto f : fields) {
    h = fnv1a(h, std::to_string(f.size()) + ":");
    h = fnv1a(h, f);
  }
  return h;
}

std::string hex(uint64_t v, int digits) {
  static const char* d = "0123456789abcdef";
  std::string s(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = d[v & 15];
  return s;
}

// At most `cap` bytes of s, not cutting a UTF-8 sequence in two.
std::string cap_utf8(const std::string& s, std::size_t cap, bool* capped) {
  *capped = s.size() > cap;
  if (!*capped) return s;
  std::size_t n = cap;
  for (int back = 0; back < 3 && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80; ++back)
    --n;
  return s.substr(0, n);
}

// A text field of a problem line: absent (or null) is nullopt; another type is an error.
bool text_field(const json& j, const char* name, std::optional<std::string>& out, std::string* why) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_string()) {
    *why = std::string(name) + ": must be a string";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

}  // namespace

bool parse_args(const std::vector<std::string>& args, options& o, std::string* why) {
  auto bad = [&](const std::string& w) {
    *why = "sweep: " + w;
    return false;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto value = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
    const std::string* v = nullptr;
    unsigned long n = 0;
    if (a == "--direct") {
      o.mode = transport::direct;
    } else if (a == "--queue") {
      o.mode = transport::queue;
    } else if (a == "--out") {
      if (!(v = value()) || v->empty()) return bad("--out needs a file");
      o.out = *v;
    } else if (a == "--concurrency" || a == "-j") {
      if (!(v = value()) || !parse_count(*v, max_concurrency, n) || n == 0)
        return bad(a + ": 1.." + std::to_string(max_concurrency));
      o.concurrency = static_cast<int>(n);
    } else if (a == "--isolation") {
      if (!(v = value())) return bad("--isolation needs fresh or strict");
      if (*v == "fresh") o.isolation = wire::Isolation::fresh;
      else if (*v == "strict") o.isolation = wire::Isolation::strict;
      else return bad("--isolation: fresh or strict, not " + *v);
    } else if (a == "--batch") {
      if (!(v = value()) || !wire::valid_token(*v, max_batch_chars))
        return bad("--batch: 1.." + std::to_string(max_batch_chars) + " characters of [A-Za-z0-9_-]");
      o.batch = *v;
    } else if (a == "--timeout") {
      if (!(v = value()) || !parse_positive_seconds(*v, max_timeout_ms / 1000.0, o.timeout_ms))
        return bad("--timeout: seconds, > 0 and at most " + std::to_string(max_timeout_ms / 1000));
    } else if (a == "--output-limit") {
      if (!(v = value()) || !parse_count(*v, max_output_limit, n))
        return bad("--output-limit: bytes, at most " + std::to_string(max_output_limit));
      o.output_limit = static_cast<uint32_t>(n);
    } else if (a == "--stall-timeout") {
      if (!(v = value()) || !parse_positive_seconds(*v, 1e7, o.stall_ms))
        return bad("--stall-timeout: seconds, > 0");
    } else if (!a.empty() && a[0] == '-') {
      return bad("unknown argument " + a);
    } else if (o.input.empty()) {
      o.input = a;
    } else {
      return bad("one input file only (" + o.input + ", then " + a + ")");
    }
  }
  if (o.input.empty()) return bad("missing the problems file");
  if (o.out.empty()) return bad("missing --out RESULTS.jsonl");
  return true;
}

std::string line_id(std::size_t line) { return "line-" + std::to_string(line); }

parsed_line parse_line(std::string_view text, std::size_t line, int64_t default_timeout) {
  parsed_line out;
  text = trim(text);
  if (text.empty()) {
    out.blank = true;
    return out;
  }
  auto invalid = [&](std::string why) {
    out.error = std::move(why);
    return out;
  };
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid("not valid JSON");
  if (!j.is_object()) return invalid("not a JSON object");

  // id, or HumanEval's task_id.
  auto id_it = j.find("id");
  if (id_it == j.end() || id_it->is_null()) id_it = j.find("task_id");
  if (id_it == j.end() || id_it->is_null()) return invalid("missing id (or task_id)");
  if (id_it->is_string()) out.id = id_it->get<std::string>();
  else if (id_it->is_number_integer()) out.id = id_it->dump();
  else return invalid("id: must be a string or an integer");
  if (out.id.empty()) return invalid("id: empty");
  if (out.id.size() > max_id_bytes) {
    out.id.clear();
    return invalid("id: longer than " + std::to_string(max_id_bytes) + " bytes");
  }

  std::string why;
  std::optional<std::string> language, source, prompt, completion, tests, test, entry_point,
      stdin_data, expected;
  if (!text_field(j, "language", language, &why) || !text_field(j, "source", source, &why) ||
      !text_field(j, "prompt", prompt, &why) || !text_field(j, "completion", completion, &why) ||
      !text_field(j, "tests", tests, &why) || !text_field(j, "test", test, &why) ||
      !text_field(j, "entry_point", entry_point, &why) ||
      !text_field(j, "stdin", stdin_data, &why) || !text_field(j, "expected", expected, &why))
    return invalid(why);

  program p;
  p.line = line;
  p.id = out.id;
  const std::string lang = language.value_or("python");
  if (lang == "python" || lang == "python3" || lang == "py") p.language = "python";
  else if (lang == "javascript" || lang == "js" || lang == "node") p.language = "javascript";
  else return invalid("language: \"" + lang + "\" is not python or javascript");

  std::string body;
  if (source && (prompt || completion))
    return invalid("give either source or prompt + completion, not both");
  if (source) body = *source;
  else if (completion) body = prompt.value_or("") + *completion;
  else if (prompt) return invalid("prompt without completion");
  else return invalid("missing source (or prompt + completion)");

  if (tests && test) return invalid("give either tests or test, not both");
  if (test) tests = std::move(test);
  if (entry_point) {
    if (!tests) return invalid("entry_point without tests");
    if (!valid_entry_point(*entry_point))
      return invalid("entry_point: \"" + *entry_point + "\" is not a name");
  }
  if (tests) {
    p.has_tests = true;
    // Python: a statement of its own between the program and the tests, so that nothing the
    // program leaves open at its end can reach into the tests: a completion ending in a decorator
    // line (`@lambda f: lambda *a: None`) would otherwise wrap the tests' own `def check` and pass
    // a wrong answer. Left open, it is now a SyntaxError.
    if (p.language == "python") body += "\npass  # the program ends here; the tests follow\n";
    body += "\n\n" + *tests + "\n";
    if (entry_point) body += "\ncheck(" + *entry_point + (p.language == "javascript" ? ");\n" : ")\n");
  }
  p.source = std::move(body);
  p.stdin_data = stdin_data.value_or("");
  p.expected = std::move(expected);

  p.timeout_ms = default_timeout;
  if (auto t = j.find("timeout"); t != j.end() && !t->is_null()) {
    if (!t->is_number()) return invalid("timeout: must be a number of seconds");
    const double s = t->get<double>();
    if (!(s > 0) || s > max_timeout_ms / 1000.0)
      return invalid("timeout: seconds, > 0 and at most " + std::to_string(max_timeout_ms / 1000));
    p.timeout_ms = std::max<int64_t>(1, std::llround(s * 1000));
  }
  if (p.source.size() + p.stdin_data.size() > max_program_bytes)
    return invalid("program and stdin larger than " + std::to_string(max_program_bytes) + " bytes");
  out.prog = std::move(p);
  return out;
}

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
    out.exit_code = 255;
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

std::string default_batch_id(const std::string& input, const std::string& out) {
  auto canonical = [](const std::string& p) {
    std::error_code ec;
    auto abs = std::filesystem::weakly_canonical(std::filesystem::absolute(p, ec), ec);
    return ec ? p : abs.string();
  };
  return "sweep-" + hex(hash_fields({canonical(input), canonical(out)}), 16);
}

std::string job_id(const std::string& batch, const program& p) {
  const std::string timeout = std::to_string(p.timeout_ms);
  const uint64_t h = hash_fields({p.id, p.language, p.source, p.stdin_data, timeout});
  return batch + "-" + std::to_string(p.line) + "-" + hex(h, 8);
}

wire::bytes build_job(const program& p, const std::string& batch, const std::string& id,
                      const options& o) {
  flatbuffers::FlatBufferBuilder fbb(p.source.size() + p.stdin_data.size() + 512);
  auto job_id_off = fbb.CreateString(id);
  auto batch_off = fbb.CreateString(batch);
  auto language_off = fbb.CreateString(p.language);
  auto source_off = fbb.CreateString(p.source);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> stdin_off;
  if (!p.stdin_data.empty())
    stdin_off = fbb.CreateVector(reinterpret_cast<const uint8_t*>(p.stdin_data.data()),
                                 p.stdin_data.size());
  wire::JobBuilder b(fbb);
  b.add_job_id(job_id_off);
  b.add_batch_id(batch_off);
  b.add_language(language_off);
  b.add_source(source_off);
  if (!p.stdin_data.empty()) b.add_stdin(stdin_off);
  b.add_timeout_ms(p.timeout_ms);
  b.add_isolation(o.isolation);
  b.add_output_limit_bytes(o.output_limit);
  fbb.Finish(b.Finish(), wire::JobIdentifier());
  return wire::release(fbb);
}

out_file_state scan_out_file(std::istream& in) {
  out_file_state st;
  std::string line;
  uint64_t offset = 0;
  while (std::getline(in, line)) {
    const bool last = in.eof();  // no '\n' after it
    offset += line.size() + (last ? 0 : 1);
    if (trim(line).empty()) {
      if (!last) st.complete_bytes = offset;
      continue;
    }
    json j = json::parse(line, nullptr, false);
    const bool readable =
        !j.is_discarded() && j.is_object() && j.contains("id") && j["id"].is_string();
    if (last) {
      // A whole result without its newline is kept (and the newline added); anything else is
      // a line cut short by a crash, cut off.
      st.partial_tail = !readable;
      st.needs_newline = readable;
      if (!readable) break;
    }
    st.complete_bytes = offset;
    if (!readable) {
      ++st.unreadable_lines;
      continue;
    }
    earlier_result e;
    if (auto it = j.find("passed"); it != j.end() && it->is_boolean()) e.passed = it->get<bool>();
    if (auto it = j.find("status"); it != j.end() && it->is_string())
      e.invalid = it->get<std::string>() == "invalid";
    st.finished[j["id"].get<std::string>()] = e;
  }
  return st;
}

// -- the run ---------------------------------------------------------------------------------

namespace {

using steady = std::chrono::steady_clock;

int64_t ms_since(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t).count();
}

// One program of the input: where its line is (read again when it is needed, so that a file of
// 10^6 programs is never held in memory) and what became of it.
struct entry {
  std::size_t line = 0;
  uint64_t offset = 0;
  std::size_t length = 0;
  std::string id;
  std::string job_id;      // empty for an invalid line
  std::string why;         // invalid: why
  bool finished = false;   // has its line in the output file
};

// The output file, appended to by any thread; one write(2) per line.
class out_file {
 public:
  ~out_file() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool open(const std::string& path, const out_file_state& earlier, std::string* why) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      *why = "cannot open " + path + ": " + std::strerror(errno);
      return false;
    }
    if (earlier.partial_tail &&
        ::ftruncate(fd_, static_cast<off_t>(earlier.complete_bytes)) != 0) {
      *why = "cannot cut the partial last line of " + path + ": " + std::strerror(errno);
      return false;
    }
    if (earlier.needs_newline && !append("\n")) {
      *why = "cannot write " + path + ": " + std::strerror(errno);
      return false;
    }
    return true;
  }
  bool append(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    return write_all(fd_, line.data(), line.size());
  }

 private:
  int fd_ = -1;
  std::mutex mu_;
};

// stderr: notes, and on a terminal a progress bar redrawn below them.
class console {
 public:
  explicit console(bool bar) : bar_(bar) {}
  void note(const std::string& s) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string text = (drawn_ ? "\r\033[K" : "") + s + "\n" + last_bar_;
    std::fputs(text.c_str(), stderr);
    std::fflush(stderr);
  }
  void draw(const std::string& bar) {
    if (!bar_) return;
    std::lock_guard<std::mutex> lock(mu_);
    last_bar_ = bar;
    drawn_ = true;
    std::fputs(("\r\033[K" + bar).c_str(), stderr);
    std::fflush(stderr);
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    if (drawn_) std::fputs("\r\033[K", stderr);
    drawn_ = false;
    last_bar_.clear();
    std::fflush(stderr);
  }
  bool bar() const { return bar_; }

 private:
  const bool bar_;
  std::mutex mu_;
  bool drawn_ = false;
  std::string last_bar_;
};

std::string format_duration(double s) {
  if (!(s >= 0) || s > 359999) return "--:--";
  const auto t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

class sweep_run {
 public:
  sweep_run(options o, client::session::config cfg) : o_(std::move(o)), cfg_(std::move(cfg)) {}
  ~sweep_run() {
    if (in_fd_ >= 0) ::close(in_fd_);
  }
  int run();

 private:
  bool index_input(std::string* why);
  std::optional<program> load(const entry& e, std::string* why) const;
  void record(entry& e, const program& p, const job_result& r);
  void no_result(const entry& e, const std::string& why);
  void stop(const std::string& why);
  bool stopping() const { return stop_.load(); }
  // Waits up to ms, or less when the sweep stops.
  void pause(int64_t ms);
  // A jittered exponential pause for the n-th retry, at most cap_ms.
  int64_t backoff(int attempt, int64_t cap_ms = backoff_max_ms);
  void progress_loop();

  int run_direct(client::session& c);
  int run_queue(client::session& c);
  std::optional<job_result> run_one(client::session& c, const entry& e, const program& p,
                                    const wire::bytes& job, std::string* why);
  void take_queue_result(const std::vector<uint8_t>& m, std::vector<uint8_t>& seen);

  options o_;
  client::session::config cfg_;
  std::string batch_;
  int in_fd_ = -1;
  std::vector<entry> entries_;
  std::unordered_map<std::string, std::size_t> by_job_id_;
  out_file out_;
  std::unique_ptr<console> console_;

  // Counts: of the output file before this run, and of this run.
  std::size_t before_ = 0, before_passed_ = 0, before_invalid_ = 0;
  std::atomic<std::size_t> ran_{0}, passed_{0}, invalid_now_{0};
  std::atomic<std::size_t> duplicates_{0}, stale_{0}, already_queued_{0}, unreadable_{0};
  std::atomic<std::size_t> abandoned_{0};  // --queue: jobs that will get no result now
  std::atomic<std::size_t> published_{0};  // --queue: jobs stored in the queue by this run
  std::size_t todo_ = 0;  // programs to run in this run
  steady::time_point started_ = steady::now();
  std::atomic<int64_t> last_result_ms_{0};  // ms since started_

  std::atomic<bool> stop_{false};
  std::mutex mu_;  // stop_reason_, the pause cv, the record of results
  std::condition_variable cv_;
  std::string stop_reason_;
  std::atomic<bool> done_{false};
};

std::optional<program> sweep_run::load(const entry& e, std::string* why) const {
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

bool sweep_run::index_input(std::string* why) {
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

void sweep_run::stop(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_reason_.empty()) stop_reason_ = why;
    stop_ = true;
  }
  cv_.notify_all();
}

void sweep_run::pause(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stop_.load(); });
}

int64_t sweep_run::backoff(int attempt, int64_t cap_ms) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const int64_t cap = std::min<int64_t>(cap_ms, backoff_min_ms << std::min(attempt, 10));
  return backoff_min_ms / 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(cap));
}

void sweep_run::record(entry& e, const program& p, const job_result& r) {
  if (!out_.append(result_line(p, r))) {
    stop("cannot write " + o_.out + ": " + std::strerror(errno));
    return;
  }
  e.finished = true;
  if (passed(p, r)) ++passed_;
  ++ran_;
  last_result_ms_ = ms_since(started_);
}

void sweep_run::no_result(const entry& e, const std::string& why) {
  console_->note("corral sweep: " + e.id + " (line " + std::to_string(e.line) +
                 "): no result: " + why);
}

void sweep_run::progress_loop() {
  const std::size_t total = entries_.size();
  std::unique_lock<std::mutex> lock(mu_);
  while (!done_) {
    lock.unlock();
    const std::size_t ran = ran_, done = before_ + ran + invalid_now_;
    const double elapsed = ms_since(started_) / 1000.0;
    const double rate = elapsed > 0 ? ran / elapsed : 0;
    const std::size_t left = todo_ > ran ? todo_ - ran : 0;
    constexpr int width = 24;
    const int filled = total == 0 ? width : static_cast<int>(width * done / total);
    char buf[256];
    std::snprintf(buf, sizeof buf, "[%s%s] %zu/%zu  passed %zu  %.1f/s  ETA %s",
                  std::string(static_cast<std::size_t>(filled), '#').c_str(),
                  std::string(static_cast<std::size_t>(width - filled), '.').c_str(), done, total,
                  before_passed_ + passed_, rate,
                  rate > 0 ? format_duration(left / rate).c_str() : "--:--");
    console_->draw(buf);
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return done_.load(); });
  }
}

// One job over run(t, pool), retried while the executors are busy or briefly unreachable.
std::optional<job_result> sweep_run::run_one(client::session& c, const entry& e, const program& p,
                                             const wire::bytes& job, std::string* why) {
  const std::string subject = wire::subjects::run(cfg_.tenant, cfg_.pool);
  const int64_t timeout = p.timeout_ms + request_margin_ms;
  int transport_failures = 0, busy = 0;
  std::optional<steady::time_point> nobody_since;
  while (!stopping()) {
    auto r = c.conn().request(subject, job.data(), job.size(), timeout);
    if (!r) {
      if (r.error == bus::bus_error::no_responders) {
        if (!nobody_since) nobody_since = steady::now();
        if (ms_since(*nobody_since) > no_executor_ms) {
          stop("no executor serves pool " + cfg_.pool + " (nobody answers on " + subject + ")");
          break;
        }
        pause(backoff(++busy));
        continue;
      }
      if (r.error == bus::bus_error::invalid) {
        *why = "request refused: " + r.detail;
        return std::nullopt;
      }
      if (++transport_failures >= max_transport_attempts) {
        *why = std::string(bus::to_string(r.error)) + " " + std::to_string(transport_failures) +
               " times: " + r.detail;
        return std::nullopt;
      }
      console_->note("corral sweep: " + e.id + ": " + bus::to_string(r.error) + " (" + r.detail +
                     "), trying again");
      pause(backoff(++busy));
      continue;
    }
    nobody_since.reset();
    const auto& m = r.value;
    if (wire::has_identifier<wire::ErrorReply>(m.data.data(), m.data.size())) {
      const auto* er = wire::verify<wire::ErrorReply>(m.data.data(), m.data.size());
      const auto code = er ? er->code() : wire::ErrorCode::malformed;
      const std::string msg = er ? std::string(wire::str(er->message())) : "malformed error reply";
      if (code == wire::ErrorCode::resource_exhausted || code == wire::ErrorCode::unavailable) {
        if (ms_since(started_) - last_result_ms_ > o_.stall_ms) {
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

int sweep_run::run_direct(client::session& c) {
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

void sweep_run::take_queue_result(const std::vector<uint8_t>& m, std::vector<uint8_t>& seen) {
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

int sweep_run::run_queue(client::session& c) {
  const std::string results_subject = wire::subjects::results(cfg_.tenant, batch_);
  const std::string jobs_subject = wire::subjects::jobs(cfg_.tenant, cfg_.pool);
  const std::string hint =
      ": --queue needs the job streams that a corral-executor with JetStream creates (start one, "
      "or `corral up`), or run with --direct";
  // The tenant's own two streams (docs/jobs.md): every executor answers the setup once they
  // exist and it consumes the queue.
  auto setup = c.setup_jobs();
  if (!setup) {
    console_->note("corral sweep: cannot set up the job streams (" +
                   std::string(wire::to_string(setup.error.code)) + ": " + setup.error.message +
                   ")" + hint);
    return 1;
  }
  std::string why;
  auto js = bus::jetstream::publisher(c.conn(), &why);
  if (!js) {
    console_->note("corral sweep: " + why + hint);
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
    console_->note("corral sweep: cannot subscribe to " + results_subject + ": " + doorbell.detail);
    return 1;
  }
  // Reads what is stored from next_seq on; false (and a note) on a failed read.
  auto read_stored = [&]() -> bool {
    for (;;) {
      auto page = c.read_results(batch_, next_seq, [&](std::vector<uint8_t>&& bytes) {
        take_queue_result(bytes, seen);
      });
      if (!page) {
        console_->note("corral sweep: cannot read " + results_subject + ": " +
                       wire::to_string(page.error.code) + ": " + page.error.message);
        return false;
      }
      next_seq = page.value->next;
      if (!page.value->more) return true;
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
        auto ack = js->publish(jobs_subject, job.data(), job.size(), msg_id, 5000);
        if (ack) {
          ++(ack.value.duplicate ? already_queued_ : published_);
          break;
        }
        if (ack.error == bus::bus_error::no_responders) {
          stop("no stream holds " + jobs_subject + " any more");
        } else if (ack.error == bus::bus_error::invalid || attempt >= max_transport_attempts) {
          no_result(e, "cannot publish the job: " + std::string(bus::to_string(ack.error)) + ": " +
                           ack.detail);
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
  last_result_ms_ = ms_since(started_);
  while (!stopping() && awaited() > 0) {
    {
      // Woken by a stored result, or at least every second (a doorbell lost to a reconnect).
      std::unique_lock<std::mutex> lock(bell_mu);
      bell.wait_for(lock, std::chrono::seconds(1), [&] { return rang || stopping(); });
      rang = false;
    }
    if (!read_stored()) pause(backoff(1));
    if (ms_since(started_) - last_result_ms_ > o_.stall_ms) {
      stop("no result for " + std::to_string(o_.stall_ms / 1000) + " s; the jobs stay queued");
    }
  }
  for (auto& t : threads) t.join();
  return 0;
}

int sweep_run::run() {
  console_ = std::make_unique<console>(::isatty(STDERR_FILENO) == 1);
  if (!wire::valid_token(cfg_.tenant) || !wire::valid_token(cfg_.pool)) {
    std::cerr << "corral sweep: tenant and pool must be 1..64 characters of [A-Za-z0-9_-]\n";
    return 2;
  }
  batch_ = o_.batch.empty() ? default_batch_id(o_.input, o_.out) : o_.batch;

  // What the output file holds already.
  out_file_state earlier;
  {
    std::ifstream existing(o_.out, std::ios::binary);
    if (existing) earlier = scan_out_file(existing);
  }
  std::string why;
  if (!out_.open(o_.out, earlier, &why)) {
    std::cerr << "corral sweep: " << why << "\n";
    return 1;
  }
  if (earlier.partial_tail)
    console_->note("corral sweep: " + o_.out + ": cut off a partial last line");
  if (earlier.unreadable_lines > 0)
    console_->note("corral sweep: " + o_.out + ": " + std::to_string(earlier.unreadable_lines) +
                   " lines without an id ignored");
  if (!index_input(&why)) {
    std::cerr << "corral sweep: " << why << "\n";
    return 1;
  }

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
      console_->note("corral sweep: " + o_.input + ":" + std::to_string(e.line) + ": " + e.why);
      if (!out_.append(invalid_line(e.line, e.id, e.why))) {
        std::cerr << "corral sweep: cannot write " << o_.out << ": " << std::strerror(errno) << "\n";
        return 1;
      }
      e.finished = true;
      ++invalid_now_;
      continue;
    }
    ++todo_;
  }

  std::thread progress;
  if (console_->bar()) progress = std::thread([this] { progress_loop(); });
  int rc = 0;
  if (todo_ > 0) {
    std::string error;
    auto c = client::session::connect(cfg_, &error);
    if (!c) {
      stop("cannot reach NATS at " + cfg_.nats_url + ": " + error);
    } else {
      rc = o_.mode == transport::queue ? run_queue(*c) : run_direct(*c);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  if (progress.joinable()) progress.join();
  console_->clear();

  std::size_t missing = 0;
  for (const auto& e : entries_) missing += e.finished ? 0 : 1;
  if (!stop_reason_.empty()) std::cerr << "corral sweep: stopped: " << stop_reason_ << "\n";
  const double elapsed = ms_since(started_) / 1000.0;
  const std::size_t total = entries_.size(), ran = ran_;
  const std::size_t invalid = before_invalid_ + invalid_now_;
  const std::size_t passed_all = before_passed_ + passed_;
  const std::size_t failed = total - missing - invalid - passed_all;
  std::ostringstream s;
  s << "corral sweep: " << total << " programs: " << passed_all << " passed, " << failed
    << " failed, " << invalid << " invalid, " << missing << " errors"
    << (missing ? " (no result: run again to resume)" : "") << "; " << ran << " new results, "
    << before_ << " already in " << o_.out;
  char tail[96];
  std::snprintf(tail, sizeof tail, "; %.1f s, %.2f programs/s", elapsed,
                elapsed > 0 ? ran / elapsed : 0.0);
  s << tail;
  if (o_.mode == transport::queue && ran + missing > 0) {
    s << "; batch " << batch_ << ": published " << published_;
    if (already_queued_) s << " (" << already_queued_ << " more were queued already)";
    s << ", " << duplicates_ << " duplicate results ignored";
    if (stale_) s << ", " << stale_ << " results of other programs ignored";
    if (unreadable_) s << ", " << unreadable_ << " unreadable results";
  }
  std::cerr << s.str() << "\n";
  return rc != 0 || missing != 0 ? 1 : 0;
}

}  // namespace

int run_command(const std::vector<std::string>& args, const client::session::config& cfg) {
  options o;
  std::string why;
  if (!parse_args(args, o, &why)) {
    std::cerr << "corral: " << why << "\nusage:\n" << usage_text;
    return 2;
  }
  sweep_run run(std::move(o), cfg);
  return run.run();
}

}  // namespace corral::cli::sweep
