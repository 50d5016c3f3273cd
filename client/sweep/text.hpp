#pragma once
// Small text helpers of the sweep library (not part of its interface).
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace corral::sweep::detail {

[[nodiscard]] inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

[[nodiscard]] inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// FNV-1a of fields hashed with their lengths, so that no two different tuples hash the same text.
[[nodiscard]] uint64_t hash_fields(std::initializer_list<std::string_view> fields);
// v as `digits` lowercase hex digits.
[[nodiscard]] std::string hex(uint64_t v, int digits);

}  // namespace corral::sweep::detail
