#include "client/sweep/out_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "client/sweep/text.hpp"
#include "client/write_all.hpp"

namespace corral::sweep {

using json = nlohmann::json;
using detail::trim;

out_file_state scan_out_file(std::istream& in) {
  out_file_state st;
  std::string line;
  uint64_t offset = 0;
  while (std::getline(in, line)) {
    const bool last = in.eof();  // no '\n' after it
    offset += line.size() + (last ? 0 : 1);
    if (trim(line).empty()) {
      if (!last) st.complete_bytes = offset;
      continue;
    }
    json j = json::parse(line, nullptr, false);
    const bool readable =
        !j.is_discarded() && j.is_object() && j.contains("id") && j["id"].is_string();
    if (last) {
      // A whole result without its newline is kept (and the newline added); anything else is
      // a line cut short by a crash, cut off.
      st.partial_tail = !readable;
      st.needs_newline = readable;
      if (!readable) break;
    }
    st.complete_bytes = offset;
    if (!readable) {
      ++st.unreadable_lines;
      continue;
    }
    earlier_result e;
    if (auto it = j.find("passed"); it != j.end() && it->is_boolean()) e.passed = it->get<bool>();
    if (auto it = j.find("status"); it != j.end() && it->is_string())
      e.invalid = it->get<std::string>() == "invalid";
    st.finished[j["id"].get<std::string>()] = e;
  }
  return st;
}

out_file::~out_file() {
  if (fd_ >= 0) ::close(fd_);
}

bool out_file::open(const std::string& path, const out_file_state& earlier, std::string* why) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    *why = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  if (earlier.partial_tail && ::ftruncate(fd_, static_cast<off_t>(earlier.complete_bytes)) != 0) {
    *why = "cannot cut the partial last line of " + path + ": " + std::strerror(errno);
    return false;
  }
  if (earlier.needs_newline && !append("\n")) {
    *why = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool out_file::append(const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  return client::write_all(fd_, line.data(), line.size());
}

}  // namespace corral::sweep
