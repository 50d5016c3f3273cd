#pragma once
// Standard base64 (RFC 4648, with padding), for the JSON that carries bytes: the gateway's output
// lines and the job runner's guest requests.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace corral::client {

[[nodiscard]] std::string base64_encode(const uint8_t* data, std::size_t n);
// Decodes up to the first byte outside the alphabet (padding included).
[[nodiscard]] std::vector<uint8_t> base64_decode(std::string_view s);

}  // namespace corral::client
