#pragma once
// What the benches share: clocks, the host's load average, percentiles.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace corral::bench {

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

inline int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The 1, 5 and 15 minute load averages (/proc/loadavg): figures are only comparable at similar
// load on a shared machine.
inline std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a.empty() ? "?" : a + " " + b + " " + c;
}

struct stats {
  double p50 = 0, p95 = 0, p99 = 0, min = 0, max = 0;
  std::size_t n = 0;
};

inline stats summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  stats s;
  s.n = v.size();
  if (v.empty()) return s;
  auto at = [&](double q) {
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
  };
  s.min = v.front();
  s.max = v.back();
  s.p50 = at(0.50);
  s.p95 = at(0.95);
  s.p99 = at(0.99);
  return s;
}

}  // namespace corral::bench
