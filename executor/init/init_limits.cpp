#include "executor/init/init_limits.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace corral::init {
namespace {

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * kib;
constexpr std::size_t gib = 1024 * mib;
// An Output frame (chunk + ~100 bytes of FlatBuffer) must stay within wire::max_message_bytes
// (1 MiB), the size the executor verifies InitEvents against.
constexpr std::size_t max_read_chunk = mib - 4 * kib;

struct limit_option {
  const char* name;
  std::size_t init_limits::*field;
};

constexpr limit_option options[] = {
    {"--read-chunk-bytes", &init_limits::read_chunk_bytes},
    {"--max-outbound-bytes", &init_limits::max_outbound_bytes},
    {"--max-stdin-buffer-bytes", &init_limits::max_stdin_buffer_bytes},
    {"--max-drain-after-exit-bytes", &init_limits::max_drain_after_exit_bytes},
    {"--started-delay-ms", &init_limits::started_delay_ms},
    {"--fs-max-read-bytes", &init_limits::fs_max_read_bytes},
    {"--fs-max-list-entries", &init_limits::fs_max_list_entries},
    {"--fs-max-remove-entries", &init_limits::fs_max_remove_entries},
};

bool parse_size(const char* text, std::size_t& out) {
  if (*text < '0' || *text > '9') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return false;
  out = static_cast<std::size_t>(v);
  return true;
}

std::string check(const init_limits& l) {
  if (l.read_chunk_bytes < kib || l.read_chunk_bytes > max_read_chunk)
    return "read-chunk-bytes must be within [1024, 1044480]";
  if (l.max_outbound_bytes < 4 * l.read_chunk_bytes || l.max_outbound_bytes > gib)
    return "max-outbound-bytes must be within [4 * read-chunk-bytes, 1 GiB]";
  if (l.max_stdin_buffer_bytes > gib) return "max-stdin-buffer-bytes must be at most 1 GiB";
  if (l.max_drain_after_exit_bytes > gib)
    return "max-drain-after-exit-bytes must be at most 1 GiB";
  if (l.started_delay_ms > 1000) return "started-delay-ms must be within [0, 1000]";
  if (l.fs_max_read_bytes < 4 * kib || l.fs_max_read_bytes > 960 * kib)
    return "fs-max-read-bytes must be within [4096, 983040]";
  if (l.fs_max_list_entries < 1 || l.fs_max_list_entries > 2048)
    return "fs-max-list-entries must be within [1, 2048]";
  if (l.fs_max_remove_entries < 1 || l.fs_max_remove_entries > 1000000)
    return "fs-max-remove-entries must be within [1, 1000000]";
  return {};
}

}  // namespace

std::string parse_init_limits(int argc, const char* const* argv, init_limits& out) {
  init_limits limits;
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    const char* eq = std::strchr(arg, '=');
    const std::size_t name_len = eq == nullptr ? std::strlen(arg) : static_cast<std::size_t>(eq - arg);
    const limit_option* match = nullptr;
    for (const auto& opt : options) {
      if (std::strlen(opt.name) == name_len && std::strncmp(opt.name, arg, name_len) == 0) {
        match = &opt;
      }
    }
    if (match == nullptr) return std::string("unknown option: ") + arg;
    if (eq == nullptr || !parse_size(eq + 1, limits.*(match->field)))
      return std::string("expected ") + match->name + "=<number>: " + arg;
  }
  std::string problem = check(limits);
  if (problem.empty()) out = limits;
  return problem;
}

}  // namespace corral::init
