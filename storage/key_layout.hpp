#pragma once
// The store's on-disk layout: column family names and key encodings. Used by store.cpp, and by
// tests that write raw bytes under a record's key. Changing anything here changes the format
// of existing databases.
//
//   column family  key                                  value
//   sandboxes      {sb}                                 sandbox_record
//   processes      {sb} 0x00 {ex}                       process_record
//   output         {sb} 0x00 {ex} 0x00 be64(seq)        output_chunk
//   meta           any non-empty string                 raw bytes
//   usage          {sb}                                 usage_record
//
// Ids never contain a NUL byte (valid_id), so "{sb} 0x00" is a prefix of exactly the keys of
// sandbox sb, and [{sb} 0x00, {sb} 0x01) is the range holding all of them. The big-endian seq
// makes RocksDB's bytewise order the seq order.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "schemas/status.hpp"

namespace corral::storage::key_layout {

inline constexpr const char* sandboxes_cf = "sandboxes";
inline constexpr const char* processes_cf = "processes";
inline constexpr const char* output_cf = "output";
inline constexpr const char* usage_cf = "usage";
inline constexpr const char* meta_cf = "meta";

// ok when id is non-empty, at most max_bytes long and free of NUL bytes; invalid_argument
// naming `what` otherwise.
[[nodiscard]] status valid_id(std::string_view id, std::size_t max_bytes, const char* what);

// "{sb}"
[[nodiscard]] std::string sandbox_key(std::string_view sandbox_id);
// "{sb}\0": prefix of every process and output key of the sandbox.
[[nodiscard]] std::string sandbox_prefix(std::string_view sandbox_id);
// "{sb}\1": first key past sandbox_prefix's range.
[[nodiscard]] std::string sandbox_prefix_end(std::string_view sandbox_id);
// "{sb}\0{ex}"
[[nodiscard]] std::string process_key(std::string_view sandbox_id, std::string_view exec_id);
// "{sb}\0{ex}\0": prefix of every output key of the exec.
[[nodiscard]] std::string output_prefix(std::string_view sandbox_id, std::string_view exec_id);
// "{sb}\0{ex}\1": first key past output_prefix's range.
[[nodiscard]] std::string output_prefix_end(std::string_view sandbox_id, std::string_view exec_id);
// "{sb}\0{ex}\0" + be64(seq)
[[nodiscard]] std::string output_key(std::string_view sandbox_id, std::string_view exec_id,
                                     uint64_t seq);
// The seq of an output key that starts with `prefix` (from output_prefix); false when the key
// is not prefix + 8 bytes.
[[nodiscard]] bool parse_output_seq(std::string_view key, std::string_view prefix, uint64_t& seq);

}  // namespace corral::storage::key_layout
