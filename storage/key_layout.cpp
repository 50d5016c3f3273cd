#include "storage/key_layout.hpp"

namespace corral::storage::key_layout {

status valid_id(std::string_view id, std::size_t max_bytes, const char* what) {
  if (id.empty())
    return failure(wire::ErrorCode::invalid_argument, std::string(what) + " is empty");
  if (id.size() > max_bytes) {
    return failure(wire::ErrorCode::invalid_argument,
                   std::string(what) + " is longer than " + std::to_string(max_bytes) + " bytes");
  }
  if (id.find('\0') != std::string_view::npos) {
    return failure(wire::ErrorCode::invalid_argument, std::string(what) + " contains a NUL byte");
  }
  return {};
}

std::string sandbox_key(std::string_view sandbox_id) { return std::string(sandbox_id); }

std::string sandbox_prefix(std::string_view sandbox_id) {
  std::string key(sandbox_id);
  key.push_back('\0');
  return key;
}

std::string sandbox_prefix_end(std::string_view sandbox_id) {
  std::string key(sandbox_id);
  key.push_back('\1');
  return key;
}

std::string process_key(std::string_view sandbox_id, std::string_view exec_id) {
  std::string key = sandbox_prefix(sandbox_id);
  key.append(exec_id);
  return key;
}

std::string output_prefix(std::string_view sandbox_id, std::string_view exec_id) {
  std::string key = process_key(sandbox_id, exec_id);
  key.push_back('\0');
  return key;
}

std::string output_prefix_end(std::string_view sandbox_id, std::string_view exec_id) {
  std::string key = process_key(sandbox_id, exec_id);
  key.push_back('\1');
  return key;
}

std::string output_key(std::string_view sandbox_id, std::string_view exec_id, uint64_t seq) {
  std::string key = output_prefix(sandbox_id, exec_id);
  for (int shift = 56; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>((seq >> shift) & 0xff));
  }
  return key;
}

bool parse_output_seq(std::string_view key, std::string_view prefix, uint64_t& seq) {
  if (key.size() != prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) return false;
  seq = 0;
  for (std::size_t i = prefix.size(); i < key.size(); ++i) {
    seq = (seq << 8) | static_cast<uint8_t>(key[i]);
  }
  return true;
}

}  // namespace corral::storage::key_layout
