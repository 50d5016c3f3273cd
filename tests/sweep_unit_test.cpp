// `corral sweep` without an executor: argument parsing, problem lines and their assembly
// (HumanEval's format), the meaning of "passed", the output lines, job and batch ids, the Job
// built, reading JobResults, and what resume reads from an existing output file.
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

#include "cli/sweep.hpp"
#include "schemas/ids.hpp"

namespace corral::cli::sweep {
namespace {

using nlohmann::json;

std::vector<std::string> keys_of(const std::string& line) {
  std::vector<std::string> keys;
  const auto j = nlohmann::ordered_json::parse(line);
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  return keys;
}

program must_parse(const std::string& text, int64_t default_timeout = 10'000) {
  auto p = parse_line(text, 7, default_timeout);
  EXPECT_TRUE(p.prog.has_value()) << text << ": " << p.error;
  return p.prog.value_or(program{});
}

std::string error_of(const std::string& text) {
  auto p = parse_line(text, 3, 10'000);
  EXPECT_FALSE(p.prog.has_value()) << text;
  EXPECT_FALSE(p.blank);
  return p.error;
}

job_result exited(int code, bool completed, std::string out = {}) {
  job_result r;
  r.outcome = wire::Outcome::exited;
  r.exit_code = code;
  r.completed = completed;
  r.stdout_data = std::move(out);
  return r;
}

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

// -- expected output and "passed" ---------------------------------------------------------------

TEST(SweepOutput, TrailingWhitespaceOfLinesAndEndIsIgnored) {
  EXPECT_TRUE(stdout_matches("15   \n\n\n", "15"));
  EXPECT_TRUE(stdout_matches("a \r\nb\t\r\n", "a\nb\n"));
  EXPECT_TRUE(stdout_matches("", "\n"));
  EXPECT_FALSE(stdout_matches(" 15", "15"));       // leading whitespace counts
  EXPECT_FALSE(stdout_matches("a\n\nb", "a\nb"));  // so do blank lines inside
  EXPECT_FALSE(stdout_matches("15", "16"));
  EXPECT_EQ(normalize_output("x  \ny \n\n"), "x\ny");
}

TEST(SweepPassed, HumanEvalMeaningWithTests) {
  program p;
  p.has_tests = true;
  EXPECT_TRUE(passed(p, exited(0, true)));
  EXPECT_FALSE(passed(p, exited(0, false)));  // sys.exit(0) before the tests ran
  EXPECT_FALSE(passed(p, exited(1, false)));  // an assertion failed, or it raised
  EXPECT_FALSE(passed(p, exited(3, true)));
  job_result t = exited(124, false);
  t.outcome = wire::Outcome::timeout;
  EXPECT_FALSE(passed(p, t));
  job_result killed = exited(137, true);
  killed.outcome = wire::Outcome::signaled;
  EXPECT_FALSE(passed(p, killed));
  // Neither tests nor expected: the program must still have run to its end.
  program plain;
  EXPECT_TRUE(passed(plain, exited(0, true)));
  EXPECT_FALSE(passed(plain, exited(0, false)));
}

TEST(SweepPassed, ExpectedOutputMustMatchWholly) {
  program p;
  p.expected = "15\n";
  EXPECT_TRUE(passed(p, exited(0, true, "15  \n")));
  EXPECT_TRUE(passed(p, exited(0, false, "15\n")));  // printing and exit(0) is fine here
  EXPECT_FALSE(passed(p, exited(0, true, "16\n")));
  EXPECT_FALSE(passed(p, exited(1, true, "15\n")));
  job_result cut = exited(0, true, "15\n");
  cut.stdout_truncated = true;
  EXPECT_FALSE(passed(p, cut));
  program both = p;
  both.has_tests = true;
  EXPECT_FALSE(passed(both, exited(0, false, "15\n")));
  EXPECT_TRUE(passed(both, exited(0, true, "15\n")));
}

// -- output lines -------------------------------------------------------------------------------

TEST(SweepOutput, ResultLineFieldsInOrderWithCappedStreams) {
  program p = must_parse(R"J({"id": "HumanEval/3", "source": "x", "test": "t"})J");
  job_result r = exited(0, true);
  r.job_id = "b-7-0123abcd";
  r.stdout_data = std::string(out_stream_cap - 1, 'a') + "\xc3\xa9" + "tail";  // é across the cap
  r.stderr_data = "bad \xff byte";
  r.node = "n1";
  r.isolation = wire::Isolation::strict;
  r.attempt = 2;
  r.wall_ms = 11;
  r.cpu_ms = 7;
  r.memory_peak_kib = 9000;
  const auto line = result_line(p, r);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_EQ(keys_of(line),
            (std::vector<std::string>{"id", "line", "passed", "status", "returncode", "completed",
                                      "stdout", "stderr", "stdout_truncated", "stderr_truncated",
                                      "wall_ms", "cpu_ms", "memory_peak_kib", "node", "isolation",
                                      "attempt", "job_id"}));
  auto j = json::parse(line);
  EXPECT_EQ(j["id"], "HumanEval/3");
  EXPECT_EQ(j["line"], 7);
  EXPECT_EQ(j["passed"], true);
  EXPECT_EQ(j["status"], "exited");
  EXPECT_EQ(j["returncode"], 0);
  EXPECT_EQ(j["stdout"].get<std::string>(), std::string(out_stream_cap - 1, 'a'));  // not half an é
  EXPECT_EQ(j["stdout_truncated"], true);
  EXPECT_EQ(j["stderr"].get<std::string>(), "bad \xef\xbf\xbd byte");  // replaced, still JSON
  EXPECT_EQ(j["stderr_truncated"], false);
  EXPECT_EQ(j["isolation"], "strict");
  EXPECT_EQ(j["attempt"], 2);
  EXPECT_EQ(j["memory_peak_kib"], 9000);

  job_result t = exited(124, false);
  t.outcome = wire::Outcome::timeout;
  t.message = "timed out after 2000 ms";
  auto k = json::parse(result_line(p, t));
  EXPECT_EQ(k["status"], "timeout");
  EXPECT_EQ(k["passed"], false);
  EXPECT_EQ(k["message"], "timed out after 2000 ms");
}

TEST(SweepOutput, InvalidLine) {
  const auto line = invalid_line(4, "line-4", "not valid JSON");
  auto j = json::parse(line);
  EXPECT_EQ(j["id"], "line-4");
  EXPECT_EQ(j["line"], 4);
  EXPECT_EQ(j["passed"], false);
  EXPECT_EQ(j["status"], "invalid");
  EXPECT_TRUE(j["returncode"].is_null());
  EXPECT_EQ(j["message"], "not valid JSON");
}

// -- ids and the Job ----------------------------------------------------------------------------

TEST(SweepIds, BatchDerivedFromBothPaths) {
  const auto a = default_batch_id("/tmp/p.jsonl", "/tmp/r.jsonl");
  EXPECT_EQ(a, default_batch_id("/tmp/p.jsonl", "/tmp/r.jsonl"));
  EXPECT_EQ(a, default_batch_id("/tmp/./p.jsonl", "/tmp/x/../r.jsonl"));
  EXPECT_NE(a, default_batch_id("/tmp/p.jsonl", "/tmp/r2.jsonl"));
  EXPECT_NE(a, default_batch_id("/tmp/p2.jsonl", "/tmp/r.jsonl"));
  EXPECT_TRUE(wire::valid_token(a, max_batch_chars)) << a;
  // A relative path is the absolute one it names.
  const auto cwd = std::filesystem::current_path().string();
  EXPECT_EQ(default_batch_id("p.jsonl", "r.jsonl"),
            default_batch_id(cwd + "/p.jsonl", cwd + "/r.jsonl"));
}

TEST(SweepIds, JobIdsAreTokensThatChangeWithTheProgram) {
  program p = must_parse(R"J({"id": "HumanEval/1", "source": "print(1)"})J");
  const std::string batch(max_batch_chars, 'b');
  const auto id = job_id(batch, p);
  EXPECT_EQ(id, job_id(batch, p));
  EXPECT_EQ(id.rfind(batch + "-7-", 0), 0u) << id;
  p.line = 9'999'999'999ull;  // far more lines than anyone sweeps: still a token
  EXPECT_TRUE(wire::valid_token(job_id(batch, p))) << job_id(batch, p);
  p.line = 7;
  program q = p;
  q.source = "print(2)";
  EXPECT_NE(job_id(batch, q), id);
  q = p;
  q.stdin_data = "x";
  EXPECT_NE(job_id(batch, q), id);
  q = p;
  q.timeout_ms += 1;
  EXPECT_NE(job_id(batch, q), id);
  q = p;
  q.id = "HumanEval/2";
  EXPECT_NE(job_id(batch, q), id);
}

TEST(SweepIds, BuildsTheJob) {
  program p = must_parse(R"J({"id": "x", "language": "javascript", "source": "console.log(1)",
                             "stdin": "in", "timeout": 3})J");
  options o;
  o.isolation = wire::Isolation::strict;
  o.output_limit = 5000;
  const auto bytes = build_job(p, "batch-1", "batch-1-7-00000000", o);
  const auto* job = wire::verify<wire::Job>(bytes.data(), bytes.size());
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(wire::str(job->job_id()), "batch-1-7-00000000");
  EXPECT_EQ(wire::str(job->batch_id()), "batch-1");
  EXPECT_EQ(wire::str(job->language()), "javascript");
  EXPECT_EQ(wire::str(job->source()), "console.log(1)");
  ASSERT_NE(job->stdin(), nullptr);
  EXPECT_EQ(std::string(job->stdin()->begin(), job->stdin()->end()), "in");
  EXPECT_EQ(job->timeout_ms(), 3000);
  EXPECT_EQ(job->isolation(), wire::Isolation::strict);
  EXPECT_EQ(job->output_limit_bytes(), 5000u);
  EXPECT_EQ(job->argv(), nullptr);
}

TEST(SweepResults, ReadsAJobResultAndRefusesGarbage) {
  flatbuffers::FlatBufferBuilder fbb;
  auto status = wire::CreateExitStatusDirect(fbb, wire::Outcome::exited, 0, 0, "", 3, 0);
  const std::vector<uint8_t> out = {'o', 'k', '\n'};
  auto res = wire::CreateJobResultDirect(fbb, "b-1-abc", "b", status, true, &out, nullptr, false,
                                         false, "node-a", wire::Isolation::fresh, 1, 100, 25, 12,
                                         4096);
  fbb.Finish(res, wire::JobResultIdentifier());
  const auto bytes = wire::release(fbb);
  auto r = read_result(bytes.data(), bytes.size());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->job_id, "b-1-abc");
  EXPECT_EQ(r->outcome, wire::Outcome::exited);
  EXPECT_TRUE(r->completed);
  EXPECT_EQ(r->stdout_data, "ok\n");
  EXPECT_EQ(r->node, "node-a");
  EXPECT_EQ(r->attempt, 1u);
  EXPECT_EQ(r->wall_ms, 25);
  EXPECT_EQ(r->cpu_ms, 12);
  EXPECT_EQ(r->memory_peak_kib, 4096u);
  const std::vector<uint8_t> junk = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  EXPECT_FALSE(read_result(junk.data(), junk.size()).has_value());
  const auto err = wire::make_error_reply(wire::ErrorCode::unavailable, "busy");
  EXPECT_FALSE(read_result(err.data(), err.size()).has_value());
}

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
}  // namespace corral::cli::sweep
