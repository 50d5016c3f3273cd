#pragma once
// Helpers of the sweep library's unit tests (tests/sweep_*_test.cpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/sweep/program.hpp"
#include "client/sweep/verdict.hpp"

namespace corral::sweep::test {

using nlohmann::json;

inline std::vector<std::string> keys_of(const std::string& line) {
  std::vector<std::string> keys;
  const auto j = nlohmann::ordered_json::parse(line);
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  return keys;
}

inline program must_parse(const std::string& text, int64_t default_timeout = 10'000) {
  auto p = parse_line(text, 7, default_timeout);
  EXPECT_TRUE(p.prog.has_value()) << text << ": " << p.error;
  return p.prog.value_or(program{});
}

inline std::string error_of(const std::string& text) {
  auto p = parse_line(text, 3, 10'000);
  EXPECT_FALSE(p.prog.has_value()) << text;
  EXPECT_FALSE(p.blank);
  return p.error;
}

inline job_result exited(int code, bool completed, std::string out = {}) {
  job_result r;
  r.outcome = wire::Outcome::exited;
  r.exit_code = code;
  r.completed = completed;
  r.stdout_data = std::move(out);
  return r;
}

}  // namespace corral::sweep::test
