#pragma once
// A minimal JSON writer (for the OCI config.json the runtime generates) and reader (for the
// output of `runsc state` / `runsc list --format=json`). Not a general-purpose library: it
// supports exactly what those need. The reader is bounded (input size, nesting depth) because
// its input, although written by runsc, lives on disk next to sandbox-controlled data.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corral::gvisor_detail {

// Builds JSON text. Callers are responsible for well-formed nesting (begin/end pairs); commas
// are inserted automatically.
class json_writer {
 public:
  json_writer& begin_object();
  json_writer& end_object();
  json_writer& begin_array();
  json_writer& end_array();
  // Object key; must be followed by exactly one value (or a begin_*).
  json_writer& key(std::string_view k);
  json_writer& value(std::string_view s);
  json_writer& value(const char* s) { return value(std::string_view(s)); }
  json_writer& value(int64_t n);
  json_writer& value(uint64_t n);
  json_writer& value(int n) { return value(static_cast<int64_t>(n)); }
  json_writer& value(uint32_t n) { return value(static_cast<uint64_t>(n)); }
  json_writer& value(bool b);
  json_writer& string_array(const std::vector<std::string>& items);
  [[nodiscard]] const std::string& text() const { return out_; }

 private:
  void separate();
  std::string out_;
  bool need_comma_ = false;
};

// A parsed JSON value.
struct json_value {
  enum class kind { null, boolean, number, string, array, object };
  kind type = kind::null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<json_value> array;
  std::map<std::string, json_value> object;

  // Member lookup on an object; nullptr when absent or not an object.
  [[nodiscard]] const json_value* get(const std::string& k) const;
  [[nodiscard]] std::string get_string(const std::string& k) const;
  [[nodiscard]] std::optional<int64_t> get_int(const std::string& k) const;
};

// Parses text; nullopt on any syntax error, on input over max_bytes or nesting over max_depth.
[[nodiscard]] std::optional<json_value> parse_json(std::string_view text,
                                                   std::size_t max_bytes = 4 * 1024 * 1024,
                                                   int max_depth = 32);

}  // namespace corral::gvisor_detail
