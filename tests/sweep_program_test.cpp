// Problem lines and their assembly (HumanEval's format): client/sweep/program.hpp.
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
#include "client/sweep/program.hpp"
#include "schemas/ids.hpp"
#include "tests/sweep_unit_support.hpp"

namespace corral::sweep {
namespace {

using nlohmann::json;
using namespace corral::sweep::test;

// -- problem lines ------------------------------------------------------------------------------

TEST(SweepLine, HumanEvalPythonIsAssembledAsTheHarnessDoes) {
  json j = {{"task_id", "HumanEval/0"},
            {"prompt", "def add(a, b):\n    \"\"\"Sum.\"\"\"\n"},
            {"completion", "    return a + b\n"},
            {"test", "def check(candidate):\n    assert candidate(1, 2) == 3\n"},
            {"entry_point", "add"},
            {"canonical_solution", "ignored"}};
  auto p = must_parse(j.dump());
  EXPECT_EQ(p.id, "HumanEval/0");
  EXPECT_EQ(p.line, 7u);
  EXPECT_EQ(p.language, "python");
  EXPECT_TRUE(p.has_tests);
  EXPECT_FALSE(p.expected.has_value());
  EXPECT_EQ(p.source,
            "def add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n"
            "\npass  # the program ends here; the tests follow\n"
            "\n\ndef check(candidate):\n    assert candidate(1, 2) == 3\n"
            "\n\ncheck(add)\n");
  EXPECT_EQ(p.timeout_ms, 10'000);
}

// A completion that leaves a decorator (or a bracket, a backslash, a block header) open at its
// end cannot reach into the tests: the assembled program does not compile, so it cannot pass.
// Without the separating statement the decorator wraps the tests' `def check` with a no-op and
// a wrong answer passes.
TEST(SweepLine, AnOpenEndOfTheProgramCannotReachIntoTheTests) {
  const std::vector<std::string> open_ends = {
      "    return a - b\n\n@lambda f: (lambda *a, **k: None)\n",
      "    return a - b\n\nx = (\n",
      "    return a - b\n\nx = 1 + \\\n",
      "    return a - b\n\nif True:\n",
  };
  for (const auto& completion : open_ends) {
    json j = {{"id", "open-end"},
              {"prompt", "def add(a, b):\n"},
              {"completion", completion},
              {"test", "def check(candidate):\n    assert candidate(2, 3) == 5\n"},
              {"entry_point", "add"}};
    auto p = must_parse(j.dump());
    char tmpl[] = "/tmp/corral-sweep-src-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, p.source.data(), p.source.size()), static_cast<ssize_t>(p.source.size()));
    ::close(fd);
    const std::string err_file = std::string(tmpl) + ".err";
    const int status = std::system(("python3 -c \"import sys; compile(open(sys.argv[1]).read(), "
                                    "'program', 'exec')\" " + std::string(tmpl) + " 2>" + err_file)
                                       .c_str());
    std::ifstream e(err_file);
    const std::string err((std::istreambuf_iterator<char>(e)), std::istreambuf_iterator<char>());
    ::unlink(tmpl);
    ::unlink(err_file.c_str());
    ASSERT_NE(status, -1);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
        << "compiles, so the tests can be wrapped:\n" << p.source;
    EXPECT_NE(err.find("Error"), std::string::npos) << err;
  }
}

TEST(SweepLine, JavaScriptWithAndWithoutEntryPoint) {
  auto p = must_parse(json{{"id", "js1"},
                           {"language", "javascript"},
                           {"prompt", "const f = (x) => {\n"},
                           {"completion", "  return x;\n};\n"},
                           {"test", "const check = (g) => { if (g(1) !== 1) throw new Error(); };"},
                           {"entry_point", "f"}}
                          .dump());
  EXPECT_EQ(p.language, "javascript");
  EXPECT_EQ(p.source,
            "const f = (x) => {\n  return x;\n};\n\n\nconst check = (g) => { if (g(1) !== 1) "
            "throw new Error(); };\n\ncheck(f);\n");
  // HumanEval-X's JavaScript tests call themselves: no entry_point, nothing appended but them.
  auto q = must_parse(json{{"id", "js2"}, {"language", "js"}, {"source", "let a = 1;"},
                           {"tests", "testA();"}}.dump());
  EXPECT_EQ(q.language, "javascript");
  EXPECT_EQ(q.source, "let a = 1;\n\ntestA();\n");
  EXPECT_TRUE(q.has_tests);
}

TEST(SweepLine, SourceStdinExpectedTimeoutAndAliases) {
  auto p = must_parse(R"J({"id": 42, "language": "py", "source": "print(input())", "stdin": "hi\n",
                         "expected": "hi", "timeout": 1.5})J");
  EXPECT_EQ(p.id, "42");
  EXPECT_EQ(p.language, "python");
  EXPECT_EQ(p.source, "print(input())");  // no tests: the source as it is
  EXPECT_EQ(p.stdin_data, "hi\n");
  ASSERT_TRUE(p.expected.has_value());
  EXPECT_EQ(*p.expected, "hi");
  EXPECT_FALSE(p.has_tests);
  EXPECT_EQ(p.timeout_ms, 1500);
  // A completion alone is the whole program; null fields are absent ones.
  auto q = must_parse(R"J({"id": "c", "completion": "x = 1", "prompt": null, "stdin": null})J", 777);
  EXPECT_EQ(q.source, "x = 1");
  EXPECT_EQ(q.timeout_ms, 777);
  EXPECT_EQ(must_parse(R"J({"id": "n", "language": "node", "source": "1"})J").language, "javascript");
  EXPECT_EQ(must_parse(R"J({"id": "n", "language": "python3", "source": "1"})J").language, "python");
}

TEST(SweepLine, BlankLinesAreNotPrograms) {
  EXPECT_TRUE(parse_line("", 1, 1000).blank);
  EXPECT_TRUE(parse_line("  \t\r", 1, 1000).blank);
}

TEST(SweepLine, BadLinesSayWhy) {
  EXPECT_EQ(error_of("{not json"), "not valid JSON");
  EXPECT_EQ(error_of("[1, 2]"), "not a JSON object");
  EXPECT_EQ(error_of(R"J({"source": "x"})J"), "missing id (or task_id)");
  EXPECT_EQ(error_of(R"J({"id": 1.5, "source": "x"})J"), "id: must be a string or an integer");
  EXPECT_EQ(error_of(R"J({"id": "", "source": "x"})J"), "id: empty");
  EXPECT_EQ(error_of(R"J({"id": "a"})J"), "missing source (or prompt + completion)");
  EXPECT_EQ(error_of(R"J({"id": "a", "prompt": "def f():"})J"), "prompt without completion");
  EXPECT_EQ(error_of(R"J({"id": "a", "source": "x", "completion": "y"})J"),
            "give either source or prompt + completion, not both");
  EXPECT_EQ(error_of(R"J({"id": "a", "source": "x", "test": "t", "tests": "t"})J"),
            "give either tests or test, not both");
  EXPECT_EQ(error_of(R"J({"id": "a", "source": "x", "language": "ruby"})J"),
            "language: \"ruby\" is not python or javascript");
  EXPECT_EQ(error_of(R"J({"id": "a", "source": 3})J"), "source: must be a string");
  EXPECT_EQ(error_of(R"J({"id": "a", "source": "x", "entry_point": "f"})J"),
            "entry_point without tests");
  EXPECT_EQ(error_of(R"J({"id": "a", "source": "x", "test": "t", "entry_point": "f); os.system("})J"),
            "entry_point: \"f); os.system(\" is not a name");
  EXPECT_EQ(error_of(R"J({"id": "a", "source": "x", "timeout": 0})J"),
            "timeout: seconds, > 0 and at most 3600");
  EXPECT_EQ(error_of(R"J({"id": "a", "source": "x", "timeout": "5"})J"),
            "timeout: must be a number of seconds");
  // The id of an invalid line is still read, when it can be.
  auto p = parse_line(R"J({"id": "keep-me", "source": 1})J", 9, 1000);
  EXPECT_EQ(p.id, "keep-me");
  const std::string huge = json{{"id", "big"}, {"source", std::string(max_program_bytes + 1, 'x')}}.dump();
  EXPECT_NE(error_of(huge).find("larger than"), std::string::npos);
  EXPECT_EQ(line_id(12), "line-12");
}

TEST(SweepLine, EntryPointsMayBeDotted) {
  auto p = must_parse(R"J({"id": "a", "source": "x", "test": "t", "entry_point": "Solution.run"})J");
  EXPECT_NE(p.source.find("check(Solution.run)"), std::string::npos);
  EXPECT_FALSE(parse_line(R"J({"id": "a", "source": "x", "test": "t", "entry_point": "1f"})J", 1, 1)
                   .prog.has_value());
  EXPECT_FALSE(parse_line(R"J({"id": "a", "source": "x", "test": "t", "entry_point": "a."})J", 1, 1)
                   .prog.has_value());
}

}  // namespace
}  // namespace corral::sweep
