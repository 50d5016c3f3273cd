#pragma once
// The harness of `corral sweep`'s integration suite (tests/sweep_direct_test.cpp,
// tests/sweep_queue_test.cpp): one deployment (a real nats-server and corral-executor running
// gVisor sandboxes) shared by the suite, the sample problems (examples/sweep/problems.jsonl) and
// what each must come to, and readers of the output file and the results stream.
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

namespace corral::sweep_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using test::deployment;
using test::run_result;

inline const std::string sample = std::string(CORRAL_SOURCE_DIR) + "/examples/sweep/problems.jsonl";
constexpr auto sweep_deadline = std::chrono::minutes(10);

// What each sample program must come to (the comments in the sample's generator say why).
struct expectation {
  const char* id;
  bool passed;
  const char* status;
  int returncode;
  bool completed;
};
inline const expectation expected[] = {
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

inline deployment::options sweep_options() {
  deployment::options o;
  o.node = "sweep-node";
  o.tenant = "sweep";
  o.executor_args = {"--max-sandboxes", "8", "--job-slots", "2"};
  return o;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The output file by id; a test failure when a line is not JSON or an id comes twice.
inline std::map<std::string, json> results_by_id(const std::string& path) {
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

inline void expect_sample_results(const std::map<std::string, json>& got, const std::string& node,
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
inline std::string summary_of(const run_result& r) {
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
    EXPECT_TRUE(reader) << reader.error().message;
    if (!reader) return {};
    std::vector<json> out;
    for (;;) {
      auto pending = reader.value()->pending(5000);
      EXPECT_TRUE(pending) << pending.error().message;
      if (!pending || pending.value().first == 0) break;
      auto got = reader.value()->fetch(256, 5000);
      EXPECT_TRUE(got || got.error().code == bus::errc::timeout) << got.error().message;
      if (!got) continue;
      for (auto& m : got.value()) out.push_back(json{{"subject", m.subject()}, {"msg_id", m.msg_id()}});
    }
    return out;
  }
  std::string dir_;
};

}  // namespace corral::sweep_test
