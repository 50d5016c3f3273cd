#include "tests/layering/include_floors.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <regex>
#include <system_error>

namespace corral::layering {
namespace {

namespace fs = std::filesystem;

// One row per folder: what its sources may include (path prefixes of the include). The longest
// folder prefix that matches a file decides. "corral/" is the generated FlatBuffers headers.
struct floor_rule {
  const char* folder;
  std::vector<std::string> may_include;
};

const std::vector<floor_rule>& rules() {
  static const std::vector<floor_rule> table = {
      {"schemas/", {"schemas/", "corral/"}},
      {"storage/", {"storage/", "schemas/", "corral/"}},
      {"bus/", {"bus/", "schemas/", "corral/"}},
      {"actors/", {"actors/", "storage/", "schemas/", "corral/"}},
      {"client/", {"client/", "bus/", "schemas/", "corral/"}},
      // corral-init runs inside the sandbox: it links nothing of the executor's but its own files.
      {"executor/init/", {"executor/init/", "executor/unique_fd.hpp", "schemas/", "corral/"}},
      {"executor/", {"executor/", "actors/", "storage/", "bus/", "client/", "schemas/", "corral/"}},
      {"cli/", {"cli/", "client/", "bus/", "schemas/", "corral/"}},
      {"gateway/", {"gateway/", "client/", "bus/", "schemas/", "corral/"}},
      {"tests/", {"tests/", "gateway/", "executor/", "actors/", "client/", "storage/", "bus/",
                  "schemas/", "corral/"}},
      {"bench/", {"bench/", "tests/", "gateway/", "executor/", "actors/", "client/", "storage/",
                  "bus/", "schemas/", "corral/"}},
  };
  return table;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

const floor_rule* rule_for(const std::string& file) {
  const floor_rule* best = nullptr;
  for (const auto& r : rules()) {
    const std::string folder = r.folder;
    if (starts_with(file, folder) && (!best || folder.size() > std::string(best->folder).size()))
      best = &r;
  }
  return best;
}

bool skipped_folder(const std::string& name) {
  return starts_with(name, "build") || name == ".git" || name == "clients" || name == "examples" ||
         name == "deploy" || name == "docs" || name == "var";
}

bool is_source(const fs::path& p) {
  const auto ext = p.extension().string();
  return ext == ".cpp" || ext == ".hpp" || ext == ".h" || ext == ".cc";
}

// Every project source file, relative to root, in a stable order.
std::vector<std::string> sources(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto& entry = *it;
    if (entry.is_directory() && skipped_folder(entry.path().filename().string())) {
      it.disable_recursion_pending();
      continue;
    }
    if (entry.is_regular_file() && is_source(entry.path()))
      out.push_back(fs::relative(entry.path(), root).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<violation> check_includes(const fs::path& root) {
  static const std::regex include_line(R"(^\s*#\s*include\s*"([^"]+)\")");
  std::vector<violation> found;
  for (const auto& file : sources(root)) {
    const floor_rule* rule = rule_for(file);
    std::ifstream in(root / file);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      std::smatch m;
      if (!std::regex_search(line, m, include_line)) continue;
      const std::string target = m[1].str();
      // A bare name is a header beside the file (the project spells the folder out, but a
      // same-folder include cannot cross a floor).
      if (target.find('/') == std::string::npos) continue;
      if (!rule) {
        found.push_back({file, number, "\"" + target + "\": " + file + " is on no floor"});
        continue;
      }
      const bool allowed =
          std::any_of(rule->may_include.begin(), rule->may_include.end(),
                      [&](const std::string& prefix) { return starts_with(target, prefix); });
      if (!allowed)
        found.push_back({file, number,
                         "\"" + target + "\" is not below " + rule->folder +
                             " (docs/architecture.md, Floors)"});
    }
  }
  return found;
}

std::vector<violation> check_actors_know_no_nats(const fs::path& root) {
  std::vector<violation> found;
  for (const auto& file : sources(root)) {
    if (!starts_with(file, "actors/")) continue;
    std::ifstream in(root / file);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      std::string lower = line;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower.find("nats") != std::string::npos)
        found.push_back({file, number, "names NATS: " + line});
      else if (lower.find("corral.v1") != std::string::npos || lower.find("_inbox") != std::string::npos)
        found.push_back({file, number, "names a subject: " + line});
    }
  }
  return found;
}

}  // namespace corral::layering
