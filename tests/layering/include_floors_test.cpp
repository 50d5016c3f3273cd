// The floors of docs/architecture.md hold in the repository's sources, and the checker that says
// so does find a crossing when one is planted.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "tests/layering/include_floors.hpp"

namespace corral::layering {
namespace {

namespace fs = std::filesystem;

std::string describe(const std::vector<violation>& vs) {
  std::ostringstream out;
  for (const auto& v : vs) out << "\n  " << v.file << ":" << v.line << ": " << v.message;
  return out.str();
}

// A scratch tree that looks like the repository's, removed at the end.
class planted_tree {
 public:
  planted_tree() {
    static std::atomic<int> counter{0};
    root_ = fs::temp_directory_path() /
            ("corral-floors-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(root_);
  }
  ~planted_tree() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void write(const std::string& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
  }
  const fs::path& root() const { return root_; }

 private:
  fs::path root_;
};

TEST(IncludeFloors, TheRepositoryKeepsItsFloors) {
  const auto found = check_includes(CORRAL_SOURCE_DIR);
  EXPECT_TRUE(found.empty()) << found.size() << " includes cross a floor:" << describe(found);
}

TEST(IncludeFloors, NoActorNamesNatsOrASubject) {
  const auto found = check_actors_know_no_nats(CORRAL_SOURCE_DIR);
  EXPECT_TRUE(found.empty()) << describe(found);
}

TEST(IncludeFloors, APlantedCrossingIsFound) {
  planted_tree t;
  t.write("actors/sandbox.cpp", "#include \"actors/sandbox.hpp\"\n#include \"storage/store.hpp\"\n");
  t.write("client/client.cpp", "#include \"bus/connection.hpp\"\n");
  ASSERT_TRUE(check_includes(t.root()).empty()) << describe(check_includes(t.root()));

  // Each of these crosses the floors the wrong way.
  t.write("actors/process.cpp", "#include <string>\n  #  include \"executor/runtime/x.hpp\"\n");
  t.write("storage/store.cpp", "#include \"actors/sandbox.hpp\"\n");
  t.write("gateway/api.cpp", "#include \"cli/client.hpp\"\n");
  t.write("tests/x_test.cpp", "#include \"cli/sweep.hpp\"\n");
  t.write("executor/init/main.cpp", "#include \"executor/runtime/gvisor_runtime.hpp\"\n");
  t.write("stray/thing.cpp", "#include \"bus/connection.hpp\"\n");
  // Not a crossing: a build tree and a bare same-folder include.
  t.write("build/actors/gen.cpp", "#include \"cli/client.hpp\"\n");
  t.write("bus/connection.cpp", "#include \"connection_internal.hpp\"\n");

  const auto found = check_includes(t.root());
  ASSERT_EQ(found.size(), 6u) << describe(found);
  EXPECT_EQ(found[0].file, "actors/process.cpp");
  EXPECT_EQ(found[0].line, 2);
  EXPECT_EQ(found[1].file, "executor/init/main.cpp");
  EXPECT_EQ(found[2].file, "gateway/api.cpp");
  EXPECT_EQ(found[3].file, "storage/store.cpp");
  EXPECT_EQ(found[4].file, "stray/thing.cpp");
  EXPECT_EQ(found[5].file, "tests/x_test.cpp");
}

TEST(IncludeFloors, AnActorThatNamesASubjectIsFound) {
  planted_tree t;
  t.write("actors/node.cpp", "int x = 0;\n");
  ASSERT_TRUE(check_actors_know_no_nats(t.root()).empty());
  t.write("actors/node.cpp", "// publishes on NATS\n");
  t.write("actors/sandbox.cpp", "auto s = \"corral.v1.\" + tenant;\n");
  EXPECT_EQ(check_actors_know_no_nats(t.root()).size(), 2u);
}

}  // namespace
}  // namespace corral::layering
