#pragma once
// The request bytes of corral's protocol (schemas/*.fbs), built in one place for every caller:
// client::session sends them and waits, the gateway sends them asynchronously. Each returns a
// finished FlatBuffer with its file identifier.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "client/client.hpp"

namespace corral::client {

using string_pairs = std::vector<std::pair<std::string, std::string>>;

[[nodiscard]] std::vector<uint8_t> create_request_bytes(const create_options& opts);
[[nodiscard]] std::vector<uint8_t> fs_request_bytes(const fs_request_options& request);
// An ExecRequest that starts argv (or re-attaches, when exec_id is known to the sandbox).
[[nodiscard]] std::vector<uint8_t> exec_request_bytes(const std::string& exec_id,
                                                      const exec_options& opts);
[[nodiscard]] std::vector<uint8_t> stdin_write_bytes(const std::string& exec_id,
                                                     const uint8_t* data, std::size_t n, bool eof);
[[nodiscard]] std::vector<uint8_t> signal_request_bytes(const std::string& exec_id, int32_t signal);
[[nodiscard]] std::vector<uint8_t> resize_request_bytes(const std::string& exec_id, uint16_t rows,
                                                        uint16_t cols);
// A ReplayRequest: the stored frames of exec_id from seq from_seq on.
[[nodiscard]] std::vector<uint8_t> replay_request_bytes(const std::string& exec_id, uint64_t from_seq);
// A SandboxQuery for wait: at most timeout_ms, until the end (or readiness).
[[nodiscard]] std::vector<uint8_t> sandbox_query_bytes(int64_t timeout_ms, bool until_ready);
[[nodiscard]] std::vector<uint8_t> set_tags_bytes(const string_pairs& tags);
[[nodiscard]] std::vector<uint8_t> list_request_bytes(bool include_ended, const std::string& name,
                                                      const string_pairs& tags);
[[nodiscard]] std::vector<uint8_t> usage_request_bytes(const std::string& sandbox_id);
[[nodiscard]] std::vector<uint8_t> results_read_bytes(const std::string& batch, uint64_t from_seq);

}  // namespace corral::client
