// `corral sweep`'s arguments (client/sweep/options.hpp).
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

#include "client/sweep/options.hpp"
#include "schemas/ids.hpp"
#include "tests/sweep_unit_support.hpp"

namespace corral::sweep {
namespace {

using nlohmann::json;
using namespace corral::sweep::test;

// -- arguments ----------------------------------------------------------------------------------

TEST(SweepArgs, DefaultsAndEveryFlag) {
  options o;
  std::string why;
  ASSERT_TRUE(parse_args({"p.jsonl", "--out", "r.jsonl"}, o, &why)) << why;
  EXPECT_EQ(o.input, "p.jsonl");
  EXPECT_EQ(o.out, "r.jsonl");
  EXPECT_EQ(o.mode, transport::direct);
  EXPECT_EQ(o.concurrency, default_concurrency);
  EXPECT_EQ(o.isolation, wire::Isolation::fresh);
  EXPECT_EQ(o.timeout_ms, default_timeout_ms);
  EXPECT_EQ(o.output_limit, 0u);
  EXPECT_TRUE(o.batch.empty());

  options q;
  ASSERT_TRUE(parse_args({"--queue", "--out", "r", "--concurrency", "3", "--isolation", "strict",
                          "--batch", "b-1", "--timeout", "2.5", "--output-limit", "1000",
                          "--stall-timeout", "9", "in"},
                         q, &why))
      << why;
  EXPECT_EQ(q.mode, transport::queue);
  EXPECT_EQ(q.concurrency, 3);
  EXPECT_EQ(q.isolation, wire::Isolation::strict);
  EXPECT_EQ(q.batch, "b-1");
  EXPECT_EQ(q.timeout_ms, 2500);
  EXPECT_EQ(q.output_limit, 1000u);
  EXPECT_EQ(q.stall_ms, 9000);
  EXPECT_EQ(q.input, "in");
  options d;
  ASSERT_TRUE(parse_args({"--queue", "--direct", "in", "--out", "o"}, d, &why));
  EXPECT_EQ(d.mode, transport::direct);  // the last one wins
}

TEST(SweepArgs, UsageErrors) {
  const std::vector<std::vector<std::string>> bad = {
      {"p.jsonl"},                                         // no --out
      {"--out", "r"},                                      // no input
      {"a", "b", "--out", "r"},                            // two inputs
      {"p", "--out"},                                      // --out without a value
      {"p", "--out", "r", "--concurrency", "0"},
      {"p", "--out", "r", "--concurrency", "-2"},
      {"p", "--out", "r", "--concurrency", "100000"},
      {"p", "--out", "r", "--isolation", "loose"},
      {"p", "--out", "r", "--batch", "has.dot"},
      {"p", "--out", "r", "--batch", std::string(max_batch_chars + 1, 'b')},
      {"p", "--out", "r", "--timeout", "0"},
      {"p", "--out", "r", "--timeout", "abc"},
      {"p", "--out", "r", "--timeout", "3601"},
      {"p", "--out", "r", "--output-limit", "2000000"},
      {"p", "--out", "r", "--frobnicate"},
  };
  for (const auto& args : bad) {
    options o;
    std::string why;
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_FALSE(parse_args(args, o, &why)) << joined;
    EXPECT_FALSE(why.empty()) << joined;
  }
}

}  // namespace
}  // namespace corral::sweep
