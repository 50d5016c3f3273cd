#include "storage/records.hpp"

#include <flatbuffers/flatbuffers.h>

#include <cstring>
#include <memory>
#include <tuple>

#include "corral/storage/records_generated.h"

namespace corral::storage {
namespace {

namespace fbs = flatbuffers;

// Per-kind buffer identifiers. Distinct from every wire file_identifier (schemas/*.fbs: "CR..").
constexpr const char* sandbox_identifier = "CSSB";
constexpr const char* process_identifier = "CSPR";
constexpr const char* output_chunk_identifier = "CSOC";
constexpr const char* usage_identifier = "CSUS";

// FlatBuffers reads scalars in place, so a buffer must start on an 8-byte boundary (its widest
// scalar). Values handed out by RocksDB may not: this copies them when they are not.
class aligned_bytes {
 public:
  explicit aligned_bytes(std::string_view in) : size_(in.size()) {
    if (reinterpret_cast<std::uintptr_t>(in.data()) % alignof(uint64_t) == 0) {
      data_ = reinterpret_cast<const uint8_t*>(in.data());
      return;
    }
    copy_ = std::make_unique<uint64_t[]>((in.size() + sizeof(uint64_t) - 1) / sizeof(uint64_t));
    std::memcpy(copy_.get(), in.data(), in.size());
    data_ = reinterpret_cast<const uint8_t*>(copy_.get());
  }
  const uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  std::unique_ptr<uint64_t[]> copy_;
  const uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

status malformed(const char* kind, const char* why) {
  return failure(wire::ErrorCode::malformed, std::string(kind) + " record: " + why);
}

// Verifies that `bytes` hold a Table finished with `identifier`; returns its root or an error.
template <class Table>
result<const Table*> verified_root(const aligned_bytes& bytes, std::size_t max_bytes,
                                   const char* identifier, const char* kind) {
  // Smallest buffer: root offset + identifier.
  if (bytes.size() < sizeof(fbs::uoffset_t) + fbs::kFileIdentifierLength) {
    return malformed(kind, "too short");
  }
  if (bytes.size() > max_bytes) return malformed(kind, "over the size cap");
  if (!fbs::BufferHasIdentifier(bytes.data(), identifier)) {
    return malformed(kind, "wrong identifier");
  }
  fbs::Verifier::Options opts;
  opts.max_depth = 8;
  fbs::Verifier verifier(bytes.data(), bytes.size(), opts);
  if (!verifier.VerifyBuffer<Table>(identifier)) return malformed(kind, "does not verify");
  return fbs::GetRoot<Table>(bytes.data());
}

status check_version(uint16_t version, const char* kind) {
  if (version == 0) return malformed(kind, "no version");
  if (version > record_format_version) {
    return failure(wire::ErrorCode::failed_precondition,
                   std::string(kind) + " record: format version " + std::to_string(version) +
                       " is newer than this build reads (" + std::to_string(record_format_version) +
                       ")");
  }
  return {};
}

// Enums are stored as their wire number; anything past the enum's last member is refused.
template <class E>
bool to_enum(uint8_t raw, E& out) {
  if (raw > static_cast<uint8_t>(E::MAX)) return false;
  out = static_cast<E>(raw);
  return true;
}

std::string to_string(const fbs::String* s) { return s == nullptr ? std::string{} : s->str(); }

std::vector<std::string> to_strings(const fbs::Vector<fbs::Offset<fbs::String>>* v) {
  std::vector<std::string> out;
  if (v == nullptr) return out;
  out.reserve(v->size());
  for (const auto* s : *v) out.push_back(to_string(s));
  return out;
}

string_pairs to_pairs(const fbs::Vector<fbs::Offset<fb::StringPair>>* v) {
  string_pairs out;
  if (v == nullptr) return out;
  out.reserve(v->size());
  for (const auto* p : *v) out.emplace_back(to_string(p->key()), to_string(p->value()));
  return out;
}

fbs::Offset<fbs::Vector<fbs::Offset<fb::StringPair>>> build_pairs(fbs::FlatBufferBuilder& fbb,
                                                                  const string_pairs& pairs) {
  std::vector<fbs::Offset<fb::StringPair>> offsets;
  offsets.reserve(pairs.size());
  for (const auto& [key, value] : pairs) {
    auto k = fbb.CreateString(key);
    auto v = fbb.CreateString(value);
    offsets.push_back(fb::CreateStringPair(fbb, k, v));
  }
  return fbb.CreateVector(offsets);
}

std::string finish(fbs::FlatBufferBuilder& fbb, fbs::uoffset_t root, const char* identifier) {
  fbb.Finish(fbs::Offset<void>(root), identifier);
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

auto fields(const sandbox_record& r) {
  return std::tie(r.id, r.tenant, r.name, r.image, r.state, r.node, r.created_at_ms,
                  r.started_at_ms, r.ended_at_ms, r.timeout_ms, r.has_return_code, r.return_code,
                  r.message, r.tags, r.entrypoint, r.env, r.workdir, r.cpu_millis, r.memory_mib,
                  r.next_exec_handle, r.request_id, r.idle_timeout_ms, r.cpu_request_millis,
                  r.memory_request_mib, r.probe_command, r.probe_tcp_port, r.probe_interval_ms,
                  r.ready);
}

auto fields(const process_record& r) {
  return std::tie(r.sandbox_id, r.exec_id, r.handle, r.argv, r.env, r.workdir, r.timeout_ms,
                  r.stdin_open, r.started_at_ms, r.ended_at_ms, r.finished, r.outcome, r.exit_code,
                  r.signal, r.message, r.stdout_bytes, r.stderr_bytes, r.next_seq);
}

auto fields(const output_chunk& c) { return std::tie(c.seq, c.stream, c.offset, c.data); }

auto fields(const usage_record& u) {
  return std::tie(u.sandbox_id, u.tenant, u.cpu_core_seconds, u.gib_seconds, u.cost,
                  u.last_sample_ms, u.last_cpu_usage_ns);
}

}  // namespace

bool operator==(const sandbox_record& a, const sandbox_record& b) { return fields(a) == fields(b); }
bool operator==(const process_record& a, const process_record& b) { return fields(a) == fields(b); }
bool operator==(const output_chunk& a, const output_chunk& b) { return fields(a) == fields(b); }
bool operator==(const usage_record& a, const usage_record& b) { return fields(a) == fields(b); }

std::string encode(const sandbox_record& r) {
  fbs::FlatBufferBuilder fbb(256);
  auto id = fbb.CreateString(r.id);
  auto tenant = fbb.CreateString(r.tenant);
  auto name = fbb.CreateString(r.name);
  auto image = fbb.CreateString(r.image);
  auto node = fbb.CreateString(r.node);
  auto message = fbb.CreateString(r.message);
  auto tags = build_pairs(fbb, r.tags);
  auto entrypoint = fbb.CreateVectorOfStrings(r.entrypoint);
  auto env = build_pairs(fbb, r.env);
  auto workdir = fbb.CreateString(r.workdir);
  auto request_id = fbb.CreateString(r.request_id);
  auto probe_command = fbb.CreateVectorOfStrings(r.probe_command);
  fb::SandboxRecordBuilder b(fbb);
  b.add_version(record_format_version);
  b.add_id(id);
  b.add_tenant(tenant);
  b.add_name(name);
  b.add_image(image);
  b.add_state(static_cast<uint8_t>(r.state));
  b.add_node(node);
  b.add_created_at_ms(r.created_at_ms);
  b.add_started_at_ms(r.started_at_ms);
  b.add_ended_at_ms(r.ended_at_ms);
  b.add_timeout_ms(r.timeout_ms);
  b.add_has_return_code(r.has_return_code);
  b.add_return_code(r.return_code);
  b.add_message(message);
  b.add_tags(tags);
  b.add_entrypoint(entrypoint);
  b.add_env(env);
  b.add_workdir(workdir);
  b.add_cpu_millis(r.cpu_millis);
  b.add_memory_mib(r.memory_mib);
  b.add_next_exec_handle(r.next_exec_handle);
  b.add_request_id(request_id);
  b.add_idle_timeout_ms(r.idle_timeout_ms);
  b.add_cpu_request_millis(r.cpu_request_millis);
  b.add_memory_request_mib(r.memory_request_mib);
  b.add_probe_command(probe_command);
  b.add_probe_tcp_port(r.probe_tcp_port);
  b.add_probe_interval_ms(r.probe_interval_ms);
  b.add_ready(r.ready);
  return finish(fbb, b.Finish().o, sandbox_identifier);
}

std::string encode(const process_record& r) {
  fbs::FlatBufferBuilder fbb(256);
  auto sandbox_id = fbb.CreateString(r.sandbox_id);
  auto exec_id = fbb.CreateString(r.exec_id);
  auto argv = fbb.CreateVectorOfStrings(r.argv);
  auto env = build_pairs(fbb, r.env);
  auto workdir = fbb.CreateString(r.workdir);
  auto message = fbb.CreateString(r.message);
  fb::ProcessRecordBuilder b(fbb);
  b.add_version(record_format_version);
  b.add_sandbox_id(sandbox_id);
  b.add_exec_id(exec_id);
  b.add_handle(r.handle);
  b.add_argv(argv);
  b.add_env(env);
  b.add_workdir(workdir);
  b.add_timeout_ms(r.timeout_ms);
  b.add_stdin_open(r.stdin_open);
  b.add_started_at_ms(r.started_at_ms);
  b.add_ended_at_ms(r.ended_at_ms);
  b.add_finished(r.finished);
  b.add_outcome(static_cast<uint8_t>(r.outcome));
  b.add_exit_code(r.exit_code);
  b.add_signal(r.signal);
  b.add_message(message);
  b.add_stdout_bytes(r.stdout_bytes);
  b.add_stderr_bytes(r.stderr_bytes);
  b.add_next_seq(r.next_seq);
  return finish(fbb, b.Finish().o, process_identifier);
}

std::string encode(const output_chunk& c) {
  fbs::FlatBufferBuilder fbb(c.data.size() + 64);
  auto data = fbb.CreateVector(c.data);
  fb::OutputChunkRecordBuilder b(fbb);
  b.add_version(record_format_version);
  b.add_seq(c.seq);
  b.add_stream(static_cast<uint8_t>(c.stream));
  b.add_offset(c.offset);
  b.add_data(data);
  return finish(fbb, b.Finish().o, output_chunk_identifier);
}

result<sandbox_record> decode_sandbox(std::string_view bytes, std::size_t max_bytes) {
  constexpr const char* kind = "sandbox";
  const aligned_bytes aligned(bytes);
  auto root = verified_root<fb::SandboxRecord>(aligned, max_bytes, sandbox_identifier, kind);
  if (!root) return root.error();
  const fb::SandboxRecord& f = **root;
  if (auto st = check_version(f.version(), kind); !st.ok()) return st;
  sandbox_record r;
  if (!to_enum(f.state(), r.state)) return malformed(kind, "state out of range");
  r.id = to_string(f.id());
  r.tenant = to_string(f.tenant());
  r.name = to_string(f.name());
  r.image = to_string(f.image());
  r.node = to_string(f.node());
  r.created_at_ms = f.created_at_ms();
  r.started_at_ms = f.started_at_ms();
  r.ended_at_ms = f.ended_at_ms();
  r.timeout_ms = f.timeout_ms();
  r.has_return_code = f.has_return_code();
  r.return_code = f.return_code();
  r.message = to_string(f.message());
  r.tags = to_pairs(f.tags());
  r.entrypoint = to_strings(f.entrypoint());
  r.env = to_pairs(f.env());
  r.workdir = to_string(f.workdir());
  r.cpu_millis = f.cpu_millis();
  r.memory_mib = f.memory_mib();
  r.next_exec_handle = f.next_exec_handle();
  r.request_id = to_string(f.request_id());
  r.idle_timeout_ms = f.idle_timeout_ms();
  r.cpu_request_millis = f.cpu_request_millis();
  r.memory_request_mib = f.memory_request_mib();
  r.probe_command = to_strings(f.probe_command());
  r.probe_tcp_port = f.probe_tcp_port();
  r.probe_interval_ms = f.probe_interval_ms();
  r.ready = f.ready();
  return r;
}

result<process_record> decode_process(std::string_view bytes, std::size_t max_bytes) {
  constexpr const char* kind = "process";
  const aligned_bytes aligned(bytes);
  auto root = verified_root<fb::ProcessRecord>(aligned, max_bytes, process_identifier, kind);
  if (!root) return root.error();
  const fb::ProcessRecord& f = **root;
  if (auto st = check_version(f.version(), kind); !st.ok()) return st;
  process_record r;
  if (!to_enum(f.outcome(), r.outcome)) return malformed(kind, "outcome out of range");
  r.sandbox_id = to_string(f.sandbox_id());
  r.exec_id = to_string(f.exec_id());
  r.handle = f.handle();
  r.argv = to_strings(f.argv());
  r.env = to_pairs(f.env());
  r.workdir = to_string(f.workdir());
  r.timeout_ms = f.timeout_ms();
  r.stdin_open = f.stdin_open();
  r.started_at_ms = f.started_at_ms();
  r.ended_at_ms = f.ended_at_ms();
  r.finished = f.finished();
  r.exit_code = f.exit_code();
  r.signal = f.signal();
  r.message = to_string(f.message());
  r.stdout_bytes = f.stdout_bytes();
  r.stderr_bytes = f.stderr_bytes();
  r.next_seq = f.next_seq();
  return r;
}

result<output_chunk> decode_output_chunk(std::string_view bytes, std::size_t max_bytes) {
  constexpr const char* kind = "output chunk";
  const aligned_bytes aligned(bytes);
  auto root =
      verified_root<fb::OutputChunkRecord>(aligned, max_bytes, output_chunk_identifier, kind);
  if (!root) return root.error();
  const fb::OutputChunkRecord& f = **root;
  if (auto st = check_version(f.version(), kind); !st.ok()) return st;
  output_chunk c;
  if (!to_enum(f.stream(), c.stream)) return malformed(kind, "stream out of range");
  c.seq = f.seq();
  c.offset = f.offset();
  if (const auto* data = f.data(); data != nullptr) c.data.assign(data->begin(), data->end());
  return c;
}

std::string encode(const usage_record& u) {
  fbs::FlatBufferBuilder fbb(128 + u.sandbox_id.size() + u.tenant.size());
  auto id = fbb.CreateString(u.sandbox_id);
  auto tenant = fbb.CreateString(u.tenant);
  fb::UsageRecordBuilder b(fbb);
  b.add_version(record_format_version);
  b.add_sandbox_id(id);
  b.add_tenant(tenant);
  b.add_cpu_core_seconds(u.cpu_core_seconds);
  b.add_gib_seconds(u.gib_seconds);
  b.add_cost(u.cost);
  b.add_last_sample_ms(u.last_sample_ms);
  b.add_last_cpu_usage_ns(u.last_cpu_usage_ns);
  return finish(fbb, b.Finish().o, usage_identifier);
}

result<usage_record> decode_usage(std::string_view bytes, std::size_t max_bytes) {
  constexpr const char* kind = "usage record";
  const aligned_bytes aligned(bytes);
  auto root = verified_root<fb::UsageRecord>(aligned, max_bytes, usage_identifier, kind);
  if (!root) return root.error();
  const fb::UsageRecord& f = **root;
  if (auto st = check_version(f.version(), kind); !st.ok()) return st;
  usage_record u;
  u.sandbox_id = f.sandbox_id() != nullptr ? f.sandbox_id()->str() : std::string();
  u.tenant = f.tenant() != nullptr ? f.tenant()->str() : std::string();
  u.cpu_core_seconds = f.cpu_core_seconds();
  u.gib_seconds = f.gib_seconds();
  u.cost = f.cost();
  u.last_sample_ms = f.last_sample_ms();
  u.last_cpu_usage_ns = f.last_cpu_usage_ns();
  return u;
}

}  // namespace corral::storage
