// corral fs cat | write | ls | stat | mkdir | rm: file operations on a running sandbox.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "cli/commands/command.hpp"
#include "client/write_all.hpp"

namespace corral::cli {

namespace {

constexpr std::size_t stdin_read_bytes = 256 * 1024;

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

void print_entry_line(const fs_entry_view& e) {
  std::printf("%c %04o %12llu %s %s\n", type_letter(e.type), e.mode,
              static_cast<unsigned long long>(e.size), time_text(e.mtime_ms).c_str(),
              e.name.c_str());
}

// One fs verb: its flags (only the ones `sub` has), then SANDBOX PATH.
int run_fs(const verb& v, const std::string& sub, context& ctx, const args_t& args) {
  bool flag_append = false, flag_parents = false, flag_recursive = false;
  uint64_t max_bytes = 0;
  std::vector<std::string> pos;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (sub == "write" && a == "--append") flag_append = true;
    else if (sub == "mkdir" && (a == "-p" || a == "--parents")) flag_parents = true;
    else if (sub == "rm" && (a == "-r" || a == "-rf" || a == "--recursive")) flag_recursive = true;
    else if (sub == "cat" && a == "--max-bytes" && i + 1 < args.size()) {
      char* end = nullptr;
      errno = 0;
      max_bytes = std::strtoull(args[++i].c_str(), &end, 10);
      if (errno != 0 || *end != '\0') return usage_error(v, "bad --max-bytes");
    } else if (!a.empty() && a[0] == '-' && a != "-") return usage_error(v, "unknown option " + a);
    else pos.push_back(a);
  }
  if (pos.size() != 2) return usage_error(v, "expected SANDBOX PATH");
  const std::string& sb = pos[0];
  const std::string& path = pos[1];
  client::session* cp = ctx.connect();
  if (cp == nullptr) return exit_failed;
  client::session& c = *cp;

  if (sub == "cat") {
    bool stdout_ok = true;
    auto r = c.fs_read(sb, path,
                       [&](const uint8_t* p, std::size_t n) {
                         // false: stdout is gone
                         if (stdout_ok) stdout_ok = client::write_all(STDOUT_FILENO, p, n);
                       },
                       max_bytes);
    return r ? exit_ok : fail(r.error());
  }
  if (sub == "write") {
    auto source = []() -> std::optional<std::vector<uint8_t>> {
      std::vector<uint8_t> buf(stdin_read_bytes);
      for (;;) {
        const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        buf.resize(static_cast<std::size_t>(n));
        return buf;
      }
    };
    auto r = c.fs_write(sb, path, source, flag_append);
    return r ? exit_ok : fail(r.error());
  }
  if (sub == "ls") {
    auto r = c.fs_list(sb, path);
    if (!r) return fail(r.error());
    std::sort(r->begin(), r->end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& e : *r) print_entry_line(e);
    return exit_ok;
  }
  if (sub == "stat") {
    auto r = c.fs_stat(sb, path);
    if (!r) return fail(r.error());
    const auto& e = *r;
    const char* type = wire::EnumNameFsFileType(e.type);
    std::printf("path:   %s\ntype:   %s\nsize:   %llu\nmode:   %04o\nmtime:  %s\n", path.c_str(),
                type == nullptr ? "unknown" : type, static_cast<unsigned long long>(e.size), e.mode,
                time_text(e.mtime_ms).c_str());
    return exit_ok;
  }
  if (sub == "mkdir") {
    auto r = c.fs_mkdir(sb, path, flag_parents);
    return r ? exit_ok : fail(r.error());
  }
  if (sub == "rm") {
    auto r = c.fs_remove(sb, path, flag_recursive);
    return r ? exit_ok : fail(r.error());
  }
  return usage_error(v, "unknown subcommand " + sub);
}

int run_cat(context& ctx, const args_t& args);
int run_write(context& ctx, const args_t& args);
int run_ls(context& ctx, const args_t& args);
int run_stat(context& ctx, const args_t& args);
int run_mkdir(context& ctx, const args_t& args);
int run_rm(context& ctx, const args_t& args);

}  // namespace

extern const verb fs_cat_verb{"fs cat", "[--max-bytes N] SANDBOX PATH",
                              "Print a file of the sandbox (streamed in chunks).",
                              "options:\n  --max-bytes N  at most N bytes\n", run_cat};
extern const verb fs_write_verb{"fs write", "[--append] SANDBOX PATH",
                                "Write stdin to a file of the sandbox (created, or overwritten).",
                                "options:\n  --append  append instead of overwriting\n", run_write};
extern const verb fs_ls_verb{"fs ls", "SANDBOX PATH",
                             "List a directory of the sandbox: type, mode, size, mtime (UTC), name.",
                             "", run_ls};
extern const verb fs_stat_verb{"fs stat", "SANDBOX PATH",
                               "Show a file's type, size, mode and mtime (of the link itself).", "",
                               run_stat};
extern const verb fs_mkdir_verb{"fs mkdir", "[-p] SANDBOX PATH", "Make a directory in the sandbox.",
                                "options:\n  -p, --parents  its missing parents too\n",
                                run_mkdir};
extern const verb fs_rm_verb{"fs rm", "[-r] SANDBOX PATH", "Remove a file (or, with -r, a tree).",
                             "options:\n  -r, --recursive  a directory and everything in it\n", run_rm};

namespace {

int run_cat(context& ctx, const args_t& args) { return run_fs(fs_cat_verb, "cat", ctx, args); }
int run_write(context& ctx, const args_t& args) { return run_fs(fs_write_verb, "write", ctx, args); }
int run_ls(context& ctx, const args_t& args) { return run_fs(fs_ls_verb, "ls", ctx, args); }
int run_stat(context& ctx, const args_t& args) { return run_fs(fs_stat_verb, "stat", ctx, args); }
int run_mkdir(context& ctx, const args_t& args) { return run_fs(fs_mkdir_verb, "mkdir", ctx, args); }
int run_rm(context& ctx, const args_t& args) { return run_fs(fs_rm_verb, "rm", ctx, args); }

}  // namespace

}  // namespace corral::cli
