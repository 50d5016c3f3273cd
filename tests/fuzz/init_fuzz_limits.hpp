#pragma once
// corral-init's limits for the init fuzz targets: the defaults, or each at an end of the range
// init_limits.hpp documents (and parse_init_limits accepts), as bits of one input byte say.
#include <cstdint>

#include "executor/init/init_limits.hpp"

namespace corral::fuzz {

inline init::init_limits limits_for(uint8_t knobs) {
  init::init_limits l;
  if (knobs & 0x01) l.started_delay_ms = 0;
  if (knobs & 0x02) {
    l.read_chunk_bytes = 1024 * 1024 - 4096;  // largest: one Output frame per read
    l.max_outbound_bytes = 4 * l.read_chunk_bytes;
  } else if (knobs & 0x04) {
    l.read_chunk_bytes = 1024;
    l.max_outbound_bytes = 4 * 1024;  // smallest: back-pressure at once
  }
  if (knobs & 0x08) {
    l.fs_max_read_bytes = 960 * 1024;  // the largest reads and listings init allows
    l.fs_max_list_entries = 2048;
  }
  if (knobs & 0x10) {
    l.fs_max_remove_entries = 1;
    l.max_stdin_buffer_bytes = 0;
    l.max_drain_after_exit_bytes = 0;
  }
  if (knobs & 0x20) l.fs_max_read_bytes = 4096;
  return l;
}

}  // namespace corral::fuzz
