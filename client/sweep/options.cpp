#include "client/sweep/options.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "schemas/ids.hpp"

namespace corral::sweep {

namespace {

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

}  // namespace corral::sweep
