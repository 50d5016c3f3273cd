// What resume reads from an existing output file: client/sweep/out_file.hpp.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/sweep/out_file.hpp"
#include "schemas/ids.hpp"
#include "tests/sweep_unit_support.hpp"

namespace corral::sweep {
namespace {

using nlohmann::json;
using namespace corral::sweep::test;

// -- resume -------------------------------------------------------------------------------------

TEST(SweepResume, ScansFinishedIdsAndCutsAPartialLine) {
  std::istringstream in(
      "{\"id\":\"a\",\"passed\":true,\"status\":\"exited\"}\n"
      "\n"
      "garbage\n"
      "{\"id\":\"b\",\"passed\":false,\"status\":\"invalid\"}\n"
      "{\"id\":\"c\",\"pass");
  auto st = scan_out_file(in);
  EXPECT_EQ(st.finished.size(), 2u);
  EXPECT_TRUE(st.finished.at("a").passed);
  EXPECT_FALSE(st.finished.at("a").invalid);
  EXPECT_TRUE(st.finished.at("b").invalid);
  EXPECT_EQ(st.finished.count("c"), 0u);
  EXPECT_EQ(st.unreadable_lines, 1u);
  EXPECT_TRUE(st.partial_tail);
  EXPECT_FALSE(st.needs_newline);
  const std::string kept = "{\"id\":\"a\",\"passed\":true,\"status\":\"exited\"}\n\ngarbage\n"
                           "{\"id\":\"b\",\"passed\":false,\"status\":\"invalid\"}\n";
  EXPECT_EQ(st.complete_bytes, kept.size());

  std::istringstream whole("{\"id\":\"a\"}\n{\"id\":\"b\"}");
  auto w = scan_out_file(whole);
  EXPECT_EQ(w.finished.size(), 2u);
  EXPECT_FALSE(w.partial_tail);
  EXPECT_TRUE(w.needs_newline);

  std::istringstream empty("");
  auto e = scan_out_file(empty);
  EXPECT_TRUE(e.finished.empty());
  EXPECT_FALSE(e.partial_tail);
  EXPECT_EQ(e.complete_bytes, 0u);
}

}  // namespace
}  // namespace corral::sweep
