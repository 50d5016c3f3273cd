// The runner where no executor is needed (client/sweep/runner.hpp).
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

#include "client/sweep/runner.hpp"
#include "client/sweep/options.hpp"
#include "schemas/ids.hpp"
#include "tests/sweep_unit_support.hpp"

namespace corral::sweep {
namespace {

using nlohmann::json;
using namespace corral::sweep::test;

// What `corral sweep ARGS` does with the library, without its console: 0 when every program has
// a result in the output file, 1 when some have none or the sweep could not start, 2 on a usage
// error (cli/commands/sweep.cpp).
int run_command(const std::vector<std::string>& args, const client::session::config& cfg) {
  options o;
  std::string why;
  if (!parse_args(args, o, &why)) return exit_usage;
  runner r(std::move(o), cfg, [](const std::string&) {});
  if (int rc = r.prepare(&why); rc != exit_all_done) return rc;
  const int rc = r.run();
  return rc != exit_all_done || r.missing() != 0 ? exit_missing : exit_all_done;
}

// The whole command where no executor is needed: invalid lines get their result lines, a run
// resumed after that writes nothing twice, and programs without an executor are errors (exit 1)
// that a later run still owes.
class SweepCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/corral-sweep-unit-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cfg_.nats_url = "nats://127.0.0.1:1";  // nothing listens: connecting fails at once
    cfg_.tenant = "t";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << text;
  }
  std::string read(const std::string& name) {
    std::ifstream in(dir_ + "/" + name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::vector<json> lines(const std::string& name) {
    std::vector<json> out;
    std::istringstream in(read(name));
    for (std::string l; std::getline(in, l);) out.push_back(json::parse(l));
    return out;
  }
  std::string dir_;
  client::session::config cfg_;
};

TEST_F(SweepCommand, InvalidLinesAreResultsAndAreWrittenOnce) {
  write("p.jsonl",
        "{\"id\": \"a\", \"source\": 1}\n"
        "\n"
        "not json\n"
        "{\"id\": \"a\", \"source\": \"print(1)\"}\n");  // a's id again
  const std::vector<std::string> args = {dir_ + "/p.jsonl", "--out", dir_ + "/r.jsonl"};
  EXPECT_EQ(run_command(args, cfg_), 0);  // every program has its result: nothing to connect for
  auto got = lines("r.jsonl");
  ASSERT_EQ(got.size(), 3u) << read("r.jsonl");
  EXPECT_EQ(got[0]["id"], "a");
  EXPECT_EQ(got[0]["line"], 1);
  EXPECT_EQ(got[0]["message"], "source: must be a string");
  EXPECT_EQ(got[1]["id"], "line-3");
  EXPECT_EQ(got[1]["message"], "not valid JSON");
  EXPECT_EQ(got[2]["id"], "line-4");
  EXPECT_EQ(got[2]["message"], "duplicate id \"a\" (first on line 1)");
  for (const auto& j : got) EXPECT_EQ(j["status"], "invalid");

  const auto before = read("r.jsonl");
  EXPECT_EQ(run_command(args, cfg_), 0);
  EXPECT_EQ(read("r.jsonl"), before);  // resumed: nothing written again
}

TEST_F(SweepCommand, ProgramsWithoutAnExecutorAreOwedAndResumeCutsAPartialLine) {
  write("p.jsonl",
        "{\"id\": \"done\", \"source\": \"print(1)\"}\n"
        "{\"id\": \"todo\", \"source\": \"print(2)\"}\n"
        "{\"id\": \"bad\"}\n");
  write("r.jsonl", "{\"id\":\"done\",\"passed\":true,\"status\":\"exited\"}\n{\"id\":\"to");
  const std::vector<std::string> args = {dir_ + "/p.jsonl", "--out", dir_ + "/r.jsonl"};
  EXPECT_EQ(run_command(args, cfg_), 1);  // "todo" got no result
  EXPECT_EQ(read("r.jsonl"),
            "{\"id\":\"done\",\"passed\":true,\"status\":\"exited\"}\n" +
                invalid_line(3, "bad", "missing source (or prompt + completion)"));
}

TEST_F(SweepCommand, UnreadableInputIsAnError) {
  EXPECT_EQ(run_command({dir_ + "/missing.jsonl", "--out", dir_ + "/r.jsonl"}, cfg_), 1);
  EXPECT_EQ(run_command({dir_ + "/missing.jsonl"}, cfg_), 2);
}

}  // namespace
}  // namespace corral::sweep
