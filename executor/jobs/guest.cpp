#include "executor/jobs/guest.hpp"

#include <charconv>

namespace corral::jobs {

const std::string& guest_runner_script() {
  static const std::string script = [] {
    std::string s = guest_runner_source();
    const std::string placeholder = "@CORRAL_GUEST_NATIVE@";
    const auto at = s.find(placeholder);
    if (at != std::string::npos) s.replace(at, placeholder.size(), guest_native_blob());
    return s;
  }();
  return script;
}

std::vector<std::string> guest_runner_argv() {
  return {"python3", "-I", "-c", guest_runner_script()};
}

std::vector<uint8_t> encode_frame(const nlohmann::json& j) {
  const std::string body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string head = "CRZ1 " + std::to_string(body.size()) + "\n";
  std::vector<uint8_t> out;
  out.reserve(head.size() + body.size());
  out.insert(out.end(), head.begin(), head.end());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

bool frame_reader::feed(const uint8_t* data, std::size_t n) {
  buf_.append(reinterpret_cast<const char*>(data), n);
  for (;;) {
    const auto nl = buf_.find('\n');
    if (nl == std::string::npos) return buf_.size() <= 32;
    if (nl > 32 || buf_.compare(0, 5, "CRZ1 ") != 0) return false;
    std::size_t len = 0;
    auto [p, ec] = std::from_chars(buf_.data() + 5, buf_.data() + nl, len);
    if (ec != std::errc() || p != buf_.data() + nl || len > max_) return false;
    if (buf_.size() < nl + 1 + len) return true;
    auto j = nlohmann::json::parse(buf_.begin() + static_cast<std::ptrdiff_t>(nl + 1),
                                   buf_.begin() + static_cast<std::ptrdiff_t>(nl + 1 + len), nullptr,
                                   /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return false;
    ready_.push_back(std::move(j));
    buf_.erase(0, nl + 1 + len);
  }
}

std::optional<nlohmann::json> frame_reader::next() {
  if (taken_ >= ready_.size()) {
    ready_.clear();
    taken_ = 0;
    return std::nullopt;
  }
  return std::move(ready_[taken_++]);
}

}  // namespace corral::jobs
