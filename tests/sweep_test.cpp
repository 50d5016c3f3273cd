// `corral sweep` end to end: the sample problems (examples/sweep/problems.jsonl) through a real
// nats-server and a real corral-executor running gVisor sandboxes, --direct and --queue, each
// program's passed/status as we know it must be; resume from a cut output file runs only what
// is missing; --queue fails clearly without the job streams.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bus/connection.hpp"
#include "bus/jetstream.hpp"
#include "schemas/subjects.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/nats_server.hpp"

namespace corral {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using test::deployment;
using test::run_result;

const std::string sample = std::string(CORRAL_SOURCE_DIR) + "/examples/sweep/problems.jsonl";
constexpr auto sweep_deadline = std::chrono::minutes(10);

// What each sample program must come to (the comments in the sample's generator say why).
struct expectation {
  const char* id;
  bool passed;
  const char* status;
  int returncode;
  bool completed;
};
const expectation expected[] = {
    {"corral/0", true, "exited", 0, true},
    {"corral/1", true, "exited", 0, true},
    {"corral/2", false, "exited", 1, false},     // wrong: an assertion fails
    {"corral/3", true, "exited", 0, true},
    {"corral/4", false, "exited", 1, false},     // wrong
    {"corral/5", true, "exited", 0, true},
    {"corral/6", false, "exited", 0, false},     // sys.exit(0) before its tests: not passed
    {"corral/7", false, "timeout", 124, false},  // an infinite loop, 2 s timeout
    {"corral/8", false, "exited", 1, false},     // raises ValueError
    {"corral/9", true, "exited", 0, true},
    {"corral/10", false, "exited", 1, false},    // wrong
    {"corral/11", true, "exited", 0, true},
    {"corral/js/0", true, "exited", 0, true},
    {"corral/js/1", false, "exited", 1, false},  // wrong: assert throws
    {"corral/js/2", false, "exited", 0, false},  // process.exit(0) before its tests
    {"stdin/sum", true, "exited", 0, true},      // matches once trailing whitespace is ignored
    {"stdin/reverse-lines", false, "exited", 0, true},  // wrong output
};
constexpr std::size_t sample_size = sizeof(expected) / sizeof(expected[0]);
constexpr std::size_t sample_passed = 8;

deployment::options sweep_options() {
  deployment::options o;
  o.node = "sweep-node";
  o.tenant = "sweep";
  o.executor_args = {"--max-sandboxes", "8", "--job-slots", "2"};
  return o;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The output file by id; a test failure when a line is not JSON or an id comes twice.
std::map<std::string, json> results_by_id(const std::string& path) {
  std::map<std::string, json> out;
  const auto text = read_file(path);
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "the last line is cut";
  for (const auto& l : lines_of(text)) {
    json j = json::parse(l, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << l;
    if (j.is_discarded()) continue;
    const auto id = j.value("id", std::string());
    EXPECT_EQ(out.count(id), 0u) << "id " << id << " written twice";
    out[id] = j;
  }
  return out;
}

void expect_sample_results(const std::map<std::string, json>& got, const std::string& node,
                           const std::string& isolation) {
  for (const auto& e : expected) {
    auto it = got.find(e.id);
    ASSERT_NE(it, got.end()) << "no result for " << e.id;
    const json& j = it->second;
    EXPECT_EQ(j["passed"], e.passed) << e.id << ": " << j.dump();
    EXPECT_EQ(j["status"], e.status) << e.id << ": " << j.dump();
    EXPECT_EQ(j["returncode"], e.returncode) << e.id << ": " << j.dump();
    EXPECT_EQ(j["completed"], e.completed) << e.id << ": " << j.dump();
    EXPECT_EQ(j["node"], node) << e.id;
    EXPECT_EQ(j["isolation"], isolation) << e.id;
    EXPECT_GE(j["attempt"].get<int>(), 1) << e.id;
    EXPECT_GT(j["wall_ms"].get<int64_t>(), 0) << e.id;
  }
  // What the programs printed reached the file.
  EXPECT_NE(got.at("corral/8")["stderr"].get<std::string>().find("ValueError"), std::string::npos);
  EXPECT_NE(got.at("corral/js/1")["stderr"].get<std::string>().find("AssertionError"),
            std::string::npos);
  EXPECT_EQ(got.at("stdin/reverse-lines")["stdout"], "one\ntwo\nthree\n");
  EXPECT_GE(got.at("corral/7")["wall_ms"].get<int64_t>(), 2000);
}

// The summary line of a sweep's stderr.
std::string summary_of(const run_result& r) {
  std::string last;
  for (const auto& l : lines_of(r.err))
    if (l.rfind("corral sweep: ", 0) == 0) last = l;
  return last;
}

class Sweep : public test::deployment_test<sweep_options> {
 protected:
  void SetUp() override {
    test::deployment_test<sweep_options>::SetUp();
    char tmpl[] = "/tmp/corral-sweep-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  run_result sweep(const std::vector<std::string>& args) {
    std::vector<std::string> a = {"sweep"};
    a.insert(a.end(), args.begin(), args.end());
    return d_->corral(a, {}, sweep_deadline);
  }
  // Every result of a batch in the results stream.
  std::vector<json> results_in_stream(const std::string& batch) {
    bus::options bo;
    bo.urls = {d_->nats().url()};
    std::string why;
    auto conn = bus::connection::connect(bo, &why);
    EXPECT_NE(conn, nullptr) << why;
    if (!conn) return {};
    auto js = bus::jetstream::open(*conn, &why);
    EXPECT_NE(js, nullptr) << why;
    if (!js) return {};
    auto reader = js->reader(wire::subjects::results_stream(d_->tenant()),
                             "corral.v1." + d_->tenant() + ".results." + batch);
    EXPECT_TRUE(reader) << reader.detail;
    if (!reader) return {};
    std::vector<json> out;
    for (;;) {
      auto pending = reader.value->pending(5000);
      EXPECT_TRUE(pending) << pending.detail;
      if (!pending || pending.value.first == 0) break;
      auto got = reader.value->fetch(256, 5000);
      EXPECT_TRUE(got || got.error == bus::bus_error::timeout) << got.detail;
      for (auto& m : got.value) out.push_back(json{{"subject", m.subject()}, {"msg_id", m.msg_id()}});
    }
    return out;
  }
  std::string dir_;
};

TEST_F(Sweep, DirectRunsTheSampleAsExpectedAndReportsBadLines) {
  // The sample, then a line that is not JSON and one that repeats an id.
  const std::string input = dir_ + "/problems.jsonl";
  std::ofstream(input, std::ios::binary)
      << read_file(sample) << "not json\n"
      << R"J({"id": "corral/0", "source": "print(1)"})J" << "\n";
  const std::string out = dir_ + "/results.jsonl";
  auto r = sweep({input, "--out", out, "--concurrency", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = results_by_id(out);
  EXPECT_EQ(got.size(), sample_size + 2);
  expect_sample_results(got, "sweep-node", "fresh");
  EXPECT_EQ(got.at("line-18")["status"], "invalid");
  EXPECT_EQ(got.at("line-18")["message"], "not valid JSON");
  EXPECT_EQ(got.at("line-19")["status"], "invalid");
  EXPECT_NE(got.at("line-19")["message"].get<std::string>().find("duplicate id"), std::string::npos);
  EXPECT_NE(r.err.find(input + ":18: not valid JSON"), std::string::npos) << r.err;
  EXPECT_EQ(summary_of(r).find("corral sweep: 19 programs: 8 passed, 9 failed, 2 invalid, 0 errors"),
            0u) << r.err;
  EXPECT_NE(summary_of(r).find("17 new results, 0 already in"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "no progress bar off a terminal";
}

TEST_F(Sweep, ResumeRunsOnlyTheProgramsWithoutAResult) {
  const std::string out = dir_ + "/results.jsonl";
  auto first = sweep({sample, "--out", out, "--concurrency", "4"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto all = lines_of(read_file(out));
  ASSERT_EQ(all.size(), sample_size);

  // A crash after 6 lines, in the middle of the 7th.
  constexpr std::size_t kept = 6;
  std::string cut;
  for (std::size_t i = 0; i < kept; ++i) cut += all[i] + "\n";
  std::ofstream(out, std::ios::binary | std::ios::trunc) << cut << all[kept].substr(0, 25);

  auto again = sweep({sample, "--out", out, "--concurrency", "4"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("cut off a partial last line"), std::string::npos) << again.err;
  EXPECT_NE(summary_of(again).find(std::to_string(sample_size - kept) + " new results, " +
                                   std::to_string(kept) + " already in"),
            std::string::npos)
      << again.err;
  EXPECT_EQ(summary_of(again).find("corral sweep: 17 programs: 8 passed, 9 failed, 0 invalid, 0 errors"),
            0u) << again.err;
  const auto text = read_file(out);
  EXPECT_EQ(text.substr(0, cut.size()), cut);  // the finished lines, byte for byte
  auto got = results_by_id(out);               // one line per id
  EXPECT_EQ(got.size(), sample_size);
  EXPECT_EQ(lines_of(text).size(), sample_size);
  expect_sample_results(got, "sweep-node", "fresh");

  // Everything done: a third run runs nothing and writes nothing.
  auto third = sweep({sample, "--out", out});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_NE(summary_of(third).find("0 new results, 17 already in"), std::string::npos) << third.err;
  EXPECT_EQ(read_file(out), text);
}

TEST_F(Sweep, QueueRunsTheSampleAndResumesFromTheResultsStream) {
  const std::string out = dir_ + "/results.jsonl";
  const std::string batch = "queue-sample";
  auto r = sweep({sample, "--out", out, "--queue", "--batch", batch});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = results_by_id(out);
  EXPECT_EQ(got.size(), sample_size);
  expect_sample_results(got, "sweep-node", "fresh");
  for (const auto& [id, j] : got)
    EXPECT_EQ(j["job_id"].get<std::string>().rfind(batch + "-", 0), 0u) << id;
  EXPECT_EQ(summary_of(r).find("corral sweep: 17 programs: 8 passed, 9 failed, 0 invalid, 0 errors"),
            0u) << r.err;
  EXPECT_NE(summary_of(r).find("published 17"), std::string::npos) << r.err;
  auto in_stream = results_in_stream(batch);
  EXPECT_EQ(in_stream.size(), sample_size);

  // The output file loses all but 5 lines (an interrupted run): the other results are read
  // back from the results stream, byte-identical, and nothing is published or run again.
  const auto all = lines_of(read_file(out));
  std::string cut;
  for (std::size_t i = 0; i < 5; ++i) cut += all[i] + "\n";
  std::ofstream(out, std::ios::binary | std::ios::trunc) << cut;
  auto again = sweep({sample, "--out", out, "--queue", "--batch", batch});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(summary_of(again).find("12 new results, 5 already in"), std::string::npos) << again.err;
  EXPECT_NE(summary_of(again).find("published 0"), std::string::npos) << again.err;
  EXPECT_NE(summary_of(again).find("0 duplicate results ignored"), std::string::npos) << again.err;
  auto after = lines_of(read_file(out));
  ASSERT_EQ(after.size(), sample_size);
  std::map<std::string, std::string> before_by_id, after_by_id;
  for (const auto& l : all) before_by_id[json::parse(l)["id"]] = l;
  for (const auto& l : after) after_by_id[json::parse(l)["id"]] = l;
  EXPECT_EQ(after_by_id, before_by_id);  // the very same results, not new runs
  EXPECT_EQ(results_in_stream(batch).size(), sample_size);  // no job ran twice
}

TEST_F(Sweep, QueueCountsDuplicateResultsOnce) {
  // A job whose result is in the stream twice (an executor re-ran it after a lost ack, past the
  // dedup window): a sweep of the batch into a fresh output file writes it once and counts the
  // other copy.
  const std::string input = dir_ + "/three.jsonl";
  const auto sample_lines = lines_of(read_file(sample));
  std::ofstream(input, std::ios::binary)
      << sample_lines[0] << "\n" << sample_lines[1] << "\n" << sample_lines[2] << "\n";
  const std::string out = dir_ + "/r1.jsonl";
  const std::string batch = "queue-dups";
  auto r = sweep({input, "--out", out, "--queue", "--batch", batch});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto first = lines_of(read_file(out));
  ASSERT_EQ(first.size(), 3u);

  // Publish a copy of the first result again under another msg id, as a second run would.
  bus::options bo;
  bo.urls = {d_->nats().url()};
  std::string why;
  auto conn = bus::connection::connect(bo, &why);
  ASSERT_NE(conn, nullptr) << why;
  auto js = bus::jetstream::open(*conn, &why);
  ASSERT_NE(js, nullptr) << why;
  auto reader = js->reader(wire::subjects::results_stream("sweep"), "corral.v1.sweep.results." + batch);
  ASSERT_TRUE(reader) << reader.detail;
  auto msgs = reader.value->fetch(1, 5000);
  ASSERT_TRUE(msgs) << msgs.detail;
  ASSERT_EQ(msgs.value.size(), 1u);
  auto ack = js->publish(msgs.value[0].subject(), msgs.value[0].data().data(),
                         msgs.value[0].data().size(), "a-second-run", 5000);
  ASSERT_TRUE(ack) << ack.detail;
  EXPECT_FALSE(ack.value.duplicate);

  const std::string out2 = dir_ + "/r2.jsonl";
  auto again = sweep({input, "--out", out2, "--queue", "--batch", batch});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(summary_of(again).find("published 0"), std::string::npos) << again.err;
  EXPECT_NE(summary_of(again).find("1 duplicate results ignored"), std::string::npos) << again.err;
  auto got = results_by_id(out2);
  EXPECT_EQ(got.size(), 3u);
}

TEST_F(Sweep, StrictIsolationGetsASandboxPerProgram) {
  const std::string input = dir_ + "/three.jsonl";
  const auto sample_lines = lines_of(read_file(sample));
  std::ofstream(input, std::ios::binary)
      << sample_lines[0] << "\n" << sample_lines[2] << "\n" << sample_lines[6] << "\n";
  const std::string out = dir_ + "/strict.jsonl";
  auto r = sweep({input, "--out", out, "--isolation", "strict", "--concurrency", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = results_by_id(out);
  ASSERT_EQ(got.size(), 3u);
  for (const auto& [id, j] : got) EXPECT_EQ(j["isolation"], "strict") << id;
  EXPECT_EQ(got.at("corral/0")["passed"], true);
  EXPECT_EQ(got.at("corral/2")["passed"], false);
  EXPECT_EQ(got.at("corral/6")["passed"], false);
  EXPECT_EQ(got.at("corral/6")["returncode"], 0);
}

// --queue against NATS servers where no executor made the job streams.
TEST(SweepQueue, FailsClearlyWithoutTheStreams) {
  const std::string dir = [] {
    char tmpl[] = "/tmp/corral-sweep-nostreams-XXXXXX";
    return std::string(mkdtemp(tmpl) ? tmpl : "");
  }();
  ASSERT_FALSE(dir.empty());
  for (bool jetstream : {true, false}) {
    test::nats_server_process::options so;
    so.jetstream = jetstream;
    test::nats_server_process server(so);
    ASSERT_TRUE(server.start()) << server.error();
    const std::string out = dir + "/r.jsonl";
    auto r = test::run({test::bin("corral"), "--nats", server.url(), "--tenant", "t", "sweep",
                        sample, "--out", out, "--queue"},
                       {}, 60s);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    // No executor answers the setup of the tenant's job streams (with or without JetStream).
    const std::string want = "cannot set up the job streams";
    EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("or run with --direct"), std::string::npos) << r.err;
    EXPECT_NE(summary_of(r).find("17 errors"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(out), "");  // nothing pretended
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace corral
