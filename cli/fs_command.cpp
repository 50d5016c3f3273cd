#include "cli/fs_command.hpp"
#include "cli/write_all.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

namespace corral::cli {

const char* const fs_usage_text =
    "  fs cat [--max-bytes N] SANDBOX PATH      print a file (streamed in chunks)\n"
    "  fs write [--append] SANDBOX PATH         write stdin to a file (create/overwrite)\n"
    "  fs ls SANDBOX PATH | fs stat SANDBOX PATH\n"
    "  fs mkdir [-p] SANDBOX PATH | fs rm [-r] SANDBOX PATH\n";

namespace {

int usage(const std::string& why) {
  std::cerr << "corral: fs: " << why << "\nusage:\n" << fs_usage_text;
  return 2;
}

int fail(const client::call_error& e) {
  std::cerr << "corral: " << wire::to_string(e.code) << ": " << e.message << "\n";
  return 1;
}

char type_letter(wire::FsFileType t) {
  switch (t) {
    case wire::FsFileType::regular: return '-';
    case wire::FsFileType::directory: return 'd';
    case wire::FsFileType::symlink: return 'l';
    case wire::FsFileType::other: return 'o';
    default: return '?';
  }
}

std::string time_text(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void print_entry_line(const client::fs_entry_view& e) {
  std::printf("%c %04o %12llu %s %s\n", type_letter(e.type), e.mode,
              static_cast<unsigned long long>(e.size), time_text(e.mtime_ms).c_str(),
              e.name.c_str());
}

}  // namespace

int run_fs_command(client::session& c, const std::vector<std::string>& all) {
  if (all.empty()) return usage("missing subcommand");
  const std::string sub = all[0];
  bool flag_append = false, flag_parents = false, flag_recursive = false;
  uint64_t max_bytes = 0;
  std::vector<std::string> pos;
  for (std::size_t i = 1; i < all.size(); ++i) {
    const auto& a = all[i];
    if (sub == "write" && a == "--append") flag_append = true;
    else if (sub == "mkdir" && (a == "-p" || a == "--parents")) flag_parents = true;
    else if (sub == "rm" && (a == "-r" || a == "-rf" || a == "--recursive")) flag_recursive = true;
    else if (sub == "cat" && a == "--max-bytes" && i + 1 < all.size()) {
      char* end = nullptr;
      errno = 0;
      max_bytes = std::strtoull(all[++i].c_str(), &end, 10);
      if (errno != 0 || *end != '\0') return usage("bad --max-bytes");
    } else if (!a.empty() && a[0] == '-' && a != "-") return usage(sub + ": unknown option " + a);
    else pos.push_back(a);
  }
  if (pos.size() != 2) return usage(sub + ": expected SANDBOX PATH");
  const std::string& sb = pos[0];
  const std::string& path = pos[1];

  if (sub == "cat") {
    bool stdout_ok = true;
    auto r = c.fs_read(sb, path,
                       [&](const uint8_t* p, std::size_t n) {
                         if (stdout_ok) stdout_ok = write_all(STDOUT_FILENO, p, n);  // false: stdout is gone
                       },
                       max_bytes);
    return r ? 0 : fail(r.error);
  }
  if (sub == "write") {
    auto source = []() -> std::optional<std::vector<uint8_t>> {
      std::vector<uint8_t> buf(256 * 1024);
      for (;;) {
        const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        buf.resize(static_cast<std::size_t>(n));
        return buf;
      }
    };
    auto r = c.fs_write(sb, path, source, flag_append);
    return r ? 0 : fail(r.error);
  }
  if (sub == "ls") {
    auto r = c.fs_list(sb, path);
    if (!r) return fail(r.error);
    std::sort(r.value->begin(), r.value->end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& e : *r.value) print_entry_line(e);
    return 0;
  }
  if (sub == "stat") {
    auto r = c.fs_stat(sb, path);
    if (!r) return fail(r.error);
    const auto& e = *r.value;
    const char* type = wire::EnumNameFsFileType(e.type);
    std::printf("path:   %s\ntype:   %s\nsize:   %llu\nmode:   %04o\nmtime:  %s\n", path.c_str(),
                type == nullptr ? "unknown" : type, static_cast<unsigned long long>(e.size), e.mode,
                time_text(e.mtime_ms).c_str());
    return 0;
  }
  if (sub == "mkdir") {
    auto r = c.fs_mkdir(sb, path, flag_parents);
    return r ? 0 : fail(r.error);
  }
  if (sub == "rm") {
    auto r = c.fs_remove(sb, path, flag_recursive);
    return r ? 0 : fail(r.error);
  }
  return usage("unknown subcommand " + sub);
}

}  // namespace corral::cli
