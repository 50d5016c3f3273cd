#pragma once
// What the hostile job tests share: building a Job, reading a JobResult, one run request
// against a deployment (tests/support/deployment.hpp).
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "bus/connection.hpp"
#include "schemas/codec.hpp"
#include "schemas/subjects.hpp"

namespace corral::hostile {

struct job_spec {
  std::string id, batch = "hostile", language = "python", source;
  std::vector<std::string> argv;
  std::string stdin_data;
  std::vector<std::pair<std::string, std::string>> files;
  int64_t timeout_ms = 30'000;
  wire::Isolation isolation = wire::Isolation::fresh;
};

inline std::vector<uint8_t> job_bytes(const job_spec& j) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  auto id = fbb.CreateString(j.id);
  auto batch = fbb.CreateString(j.batch);
  auto lang = fbb.CreateString(j.language);
  auto src = fbb.CreateString(j.source);
  auto argv = fbb.CreateVectorOfStrings(j.argv);
  auto in = fbb.CreateVector(reinterpret_cast<const uint8_t*>(j.stdin_data.data()), j.stdin_data.size());
  std::vector<flatbuffers::Offset<wire::JobFile>> fs;
  for (const auto& [p, d] : j.files)
    fs.push_back(wire::CreateJobFile(fbb, fbb.CreateString(p),
                                     fbb.CreateVector(reinterpret_cast<const uint8_t*>(d.data()), d.size())));
  auto files = fbb.CreateVector(fs);
  wire::JobBuilder b(fbb);
  b.add_job_id(id);
  b.add_batch_id(batch);
  b.add_language(lang);
  b.add_source(src);
  b.add_argv(argv);
  b.add_stdin(in);
  b.add_files(files);
  b.add_timeout_ms(j.timeout_ms);
  b.add_isolation(j.isolation);
  fbb.Finish(b.Finish(), wire::JobIdentifier());
  return wire::release(fbb);
}

struct result_view {
  std::string job_id, out, err, message;
  wire::Outcome outcome = wire::Outcome::internal;
  int exit_code = -1;
  bool completed = false;
};

inline std::optional<result_view> parse_result(const std::vector<uint8_t>& data) {
  const auto* r = wire::verify<wire::JobResult>(data.data(), data.size());
  if (r == nullptr) return std::nullopt;
  result_view v;
  v.job_id = std::string(wire::str(r->job_id()));
  if (r->stdout()) v.out.assign(r->stdout()->begin(), r->stdout()->end());
  if (r->stderr()) v.err.assign(r->stderr()->begin(), r->stderr()->end());
  if (r->status()) {
    v.outcome = r->status()->outcome();
    v.exit_code = r->status()->exit_code();
    v.message = std::string(wire::str(r->status()->message()));
  }
  v.completed = r->completed();
  return v;
}

inline std::unique_ptr<bus::connection> connect(const std::string& url) {
  bus::options o;
  o.urls = {url};
  std::string why;
  auto c = bus::connection::connect(o, &why);
  EXPECT_TRUE(c) << why;
  return c;
}

// One run request; the result, or a test failure. Retries while every slot is busy.
inline result_view run_direct(bus::connection& c, const std::string& tenant, const job_spec& j) {
  auto payload = job_bytes(j);
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto r = c.request(wire::subjects::run(tenant, "default"), payload.data(), payload.size(),
                       j.timeout_ms + 90'000);
    if (!r) {
      ADD_FAILURE() << "run " << j.id << ": " << r.error().message;
      return {};
    }
    if (auto v = parse_result(r.value().data)) return *v;
    const auto* e = wire::verify<wire::ErrorReply>(r.value().data.data(), r.value().data.size());
    if (e != nullptr && (e->code() == wire::ErrorCode::resource_exhausted ||
                         e->code() == wire::ErrorCode::unavailable))
      continue;
    ADD_FAILURE() << "run " << j.id << ": not a JobResult";
    return {};
  }
  ADD_FAILURE() << "run " << j.id << ": no slot";
  return {};
}

}  // namespace corral::hostile
