#pragma once
// The executor's side of the guest runner (guest_runner.py): the script itself, and its framing
// ("CRZ1 <length>\n" + JSON) over the runner process's stdin and stdout.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace corral::jobs {

// The Python source of guest_runner.py, embedded at build time, with its native module
// (guest_native_unsafe.cpp, zlib + base64) in place of its NATIVE_BLOB placeholder.
const std::string& guest_runner_script();
// The parts, as built: the script with the placeholder, and the native module.
const std::string& guest_runner_source();
const char* guest_native_blob();

// argv that starts the runner in a sandbox; it answers jobs until its stdin ends.
std::vector<std::string> guest_runner_argv();

// One frame carrying `j`.
std::vector<uint8_t> encode_frame(const nlohmann::json& j);

// Reassembles frames from the runner's stdout, whatever the chunking.
class frame_reader {
 public:
  explicit frame_reader(std::size_t max_frame_bytes = 64u << 20) : max_(max_frame_bytes) {}
  // Appends bytes; false when the stream is corrupt (bad header, oversized frame, bad JSON):
  // the runner is then not to be trusted any more.
  [[nodiscard]] bool feed(const uint8_t* data, std::size_t n);
  // The next complete frame, if any.
  std::optional<nlohmann::json> next();
  [[nodiscard]] std::size_t buffered() const { return buf_.size(); }

 private:
  std::size_t max_;
  std::string buf_;
  std::vector<nlohmann::json> ready_;
  std::size_t taken_ = 0;
};

}  // namespace corral::jobs
