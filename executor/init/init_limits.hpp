#pragma once
// The limits of corral-init, each with its default. They can be changed on init's command line
// (`--name=value`, names as below with '-' for '_'), and are validated once at start-up: init
// refuses to start with an invalid value rather than run with a surprising one.
#include <cstddef>
#include <string>

namespace corral::init {

struct init_limits {
  // Bytes read from a child's stdout or stderr at a time; each read becomes one Output frame.
  // Range [1 KiB, 1 MiB - 4 KiB] (an Output frame must fit in wire::max_message_bytes).
  std::size_t read_chunk_bytes = 64 * 1024;
  // Encoded events buffered for the executor while it does not read init's stdout. At this size
  // init stops reading its children's output (they block on full pipes: back-pressure, nothing
  // is dropped); it resumes once the buffer has drained to half. Events that are not output
  // (HelloAck, Started, Exited, SpawnFailed) are always queued. Range [4 * read_chunk_bytes, 1 GiB].
  std::size_t max_outbound_bytes = 16 * 1024 * 1024;
  // stdin bytes buffered per process that its process has not read yet. A StdinData that would
  // go over it is dropped whole and logged: the executor bounds what it sends. Range [0, 1 GiB].
  std::size_t max_stdin_buffer_bytes = 4 * 1024 * 1024;
  // After a process is reaped, everything that was already in its output pipes is sent before
  // Exited. Output that arrives after that (from a grandchild still holding the pipes) is also
  // read until the pipes are momentarily empty, but at most this many bytes, so that a
  // grandchild cannot postpone Exited forever. Range [0, 1 GiB].
  std::size_t max_drain_after_exit_bytes = 4 * 1024 * 1024;
  // Milliseconds a Started event may wait to be written with the process's next event (for a
  // short process, its Exited: one write and one executor wake-up instead of two). The executor
  // acts on no Started. 0 writes it at once. Range [0, 1000].
  std::size_t started_delay_ms = 50;
  // File operations (FsCall): each call is bounded by these, so that it never holds the event
  // loop for long; the executor continues with offsets. Bytes of one read (a larger FsCall
  // length is clamped), range [4 KiB, 960 KiB] (an FsResult must fit in 1 MiB).
  std::size_t fs_max_read_bytes = 512 * 1024;
  // Entries of one list, range [1, 2048] (2048 names of 255 bytes fit in one FsResult).
  std::size_t fs_max_list_entries = 1000;
  // Entries one recursive remove deletes before it answers "not done yet", range [1, 10^6].
  std::size_t fs_max_remove_entries = 10000;
};

// Parses init's command line into limits. Returns an empty string on success, else what is
// wrong (unknown option, malformed number, value out of range).
[[nodiscard]] std::string parse_init_limits(int argc, const char* const* argv, init_limits& out);

}  // namespace corral::init
