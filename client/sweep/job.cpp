#include "client/sweep/job.hpp"

#include <filesystem>

#include "client/sweep/text.hpp"

namespace corral::sweep {

using detail::hash_fields;
using detail::hex;

std::string default_batch_id(const std::string& input, const std::string& out) {
  auto canonical = [](const std::string& p) {
    std::error_code ec;
    auto abs = std::filesystem::weakly_canonical(std::filesystem::absolute(p, ec), ec);
    return ec ? p : abs.string();
  };
  return "sweep-" + hex(hash_fields({canonical(input), canonical(out)}), 16);
}

std::string job_id(const std::string& batch, const program& p) {
  const std::string timeout = std::to_string(p.timeout_ms);
  const uint64_t h = hash_fields({p.id, p.language, p.source, p.stdin_data, timeout});
  return batch + "-" + std::to_string(p.line) + "-" + hex(h, 8);
}

wire::bytes build_job(const program& p, const std::string& batch, const std::string& id,
                      const options& o) {
  flatbuffers::FlatBufferBuilder fbb(p.source.size() + p.stdin_data.size() + 512);
  auto job_id_off = fbb.CreateString(id);
  auto batch_off = fbb.CreateString(batch);
  auto language_off = fbb.CreateString(p.language);
  auto source_off = fbb.CreateString(p.source);
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> stdin_off;
  if (!p.stdin_data.empty())
    stdin_off = fbb.CreateVector(reinterpret_cast<const uint8_t*>(p.stdin_data.data()),
                                 p.stdin_data.size());
  wire::JobBuilder b(fbb);
  b.add_job_id(job_id_off);
  b.add_batch_id(batch_off);
  b.add_language(language_off);
  b.add_source(source_off);
  if (!p.stdin_data.empty()) b.add_stdin(stdin_off);
  b.add_timeout_ms(p.timeout_ms);
  b.add_isolation(o.isolation);
  b.add_output_limit_bytes(o.output_limit);
  fbb.Finish(b.Finish(), wire::JobIdentifier());
  return wire::release(fbb);
}

}  // namespace corral::sweep
