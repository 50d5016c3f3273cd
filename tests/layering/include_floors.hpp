#pragma once
// The include rules of docs/architecture.md ("Floors"), as data and a checker: which folder's
// sources may include which other folder's headers. The checker reads source files only; it never
// compiles anything.
#include <filesystem>
#include <string>
#include <vector>

namespace corral::layering {

struct violation {
  std::string file;     // relative to the scanned root
  int line = 0;
  std::string message;  // what was included, and why that is not allowed
};

// Every `#include "…"` of the C++ sources under root (cpp, hpp, h, cc), checked against the
// floors. Skips build trees (any folder whose name starts with "build"), .git, and the folders
// that hold no C++ of the project (clients/, examples/, deploy/, docs/).
[[nodiscard]] std::vector<violation> check_includes(const std::filesystem::path& root);

// What actors/ must never name: NATS (any spelling) or a NATS subject of corral's protocol. The
// actors speak typed messages; executor/'s bridge alone knows subjects.
[[nodiscard]] std::vector<violation> check_actors_know_no_nats(const std::filesystem::path& root);

}  // namespace corral::layering
