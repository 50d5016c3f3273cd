#include "client/sweep/text.hpp"

namespace corral::sweep::detail {

namespace {

uint64_t fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}
constexpr uint64_t fnv_basis = 14695981039346656037ull;

}  // namespace

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

}  // namespace corral::sweep::detail
