// `corral sweep --queue` end to end: the sample through the JetStream job queue and results
// stream, resumed from the stream; duplicate results counted once; a clear failure without the
// job streams.
#include "tests/sweep_harness.hpp"

namespace corral::sweep_test {
namespace {

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
  ASSERT_TRUE(reader) << reader.error().message;
  auto msgs = reader.value()->fetch(1, 5000);
  ASSERT_TRUE(msgs) << msgs.error().message;
  ASSERT_EQ(msgs.value().size(), 1u);
  auto ack = js->publish(msgs.value()[0].subject(), msgs.value()[0].data().data(),
                         msgs.value()[0].data().size(), "a-second-run", 5000);
  ASSERT_TRUE(ack) << ack.error().message;
  EXPECT_FALSE(ack.value().duplicate);

  const std::string out2 = dir_ + "/r2.jsonl";
  auto again = sweep({input, "--out", out2, "--queue", "--batch", batch});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(summary_of(again).find("published 0"), std::string::npos) << again.err;
  EXPECT_NE(summary_of(again).find("1 duplicate results ignored"), std::string::npos) << again.err;
  auto got = results_by_id(out2);
  EXPECT_EQ(got.size(), 3u);
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
}  // namespace corral::sweep_test
