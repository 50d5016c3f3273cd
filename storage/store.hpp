#pragma once
// The executor's typed store (docs/architecture.md, "Storage"): sandbox and process records, exec output and a few
// node-wide values, kept in one RocksDB per node. Actors persist every state change here before
// they acknowledge it (docs/promises.md P2, P10). No RocksDB type appears in this interface.
//
// Durability. Every call that writes is one atomic WriteBatch: after a crash either all of it
// is there or none of it. When a write returns ok:
//   - a synced write (put_sandbox, put_sandbox_with_processes, put_process, delete_sandbox,
//     put_meta, put_usage, with store_options::sync_state_writes = true, the default) is in the write-ahead
//     log and fsync'ed: it survives a kill -9 of the process and a crash of the machine.
//   - an unsynced write (append_output, unless store_options::sync_output) is in the write-ahead
//     log in the OS page cache: it survives a kill -9 of the process, but a crash of the machine
//     or the OS may lose it, and with it any later unsynced writes. The log is synced as a
//     whole, so the next synced write of any kind, or close(), makes every earlier unsynced
//     write durable too. A process actor that writes its record (synced) after appending output
//     therefore knows that output is durable once that write returns.
// Recovery keeps a consistent prefix of the log: a write that returned ok is never lost while
// a later one is kept.
//
// Reads see every write that returned before they started. list_* and read_output read from one
// point-in-time view of the database.
//
// Errors: every call answers with a corral::status or corral::result (schemas/status.hpp). Codes:
//   not_found            no record under that key (get_* only)
//   invalid_argument     an id is empty, too long or contains a NUL byte; records disagree
//   too_large            an encoded record or chunk is over store_options::max_record_bytes
//   malformed            bytes in the database do not decode as the expected record
//   failed_precondition  a record written by a newer format version than this build reads
//   resource_exhausted   the disk is full
//   unavailable          the store is closed, or the database is locked or busy
//   internal             any other RocksDB or file system error (message says which)
//
// Threads: every method, close() included, may be called from any thread at any time. close()
// waits for calls in flight; calls after it fail with `unavailable`.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/records.hpp"
#include "schemas/status.hpp"

namespace corral::storage {

// Upper bound for store_options::max_record_bytes, and the cap used when decoding what is
// already stored (so lowering max_record_bytes never makes existing records unreadable).
inline constexpr std::size_t max_record_bytes_limit = 64 * 1024 * 1024;

struct store_options {
  // fsync the log before synced writes return (see Durability). false trades crash safety for
  // speed: only for tests and benchmarks, never for an executor (docs/promises.md P2).
  bool sync_state_writes = true;
  // fsync the log before append_output returns. Default false: output is written often and in
  // small batches, and becomes durable with the next synced write.
  bool sync_output = false;
  // Memtable size of the sandboxes, processes, usage, meta and default column families.
  // [64 KiB, 1 GiB]
  std::size_t state_write_buffer_bytes = 8 * 1024 * 1024;
  // Memtable size of the output column family, which takes most of the writes. [64 KiB, 1 GiB]
  std::size_t output_write_buffer_bytes = 64 * 1024 * 1024;
  // RocksDB background flush and compaction threads. [1, 64]
  int max_background_jobs = 2;
  // Longest sandbox id, exec id or meta key accepted. [1, 1024]
  std::size_t max_id_bytes = 128;
  // Largest encoded record, output chunk or meta value accepted by a write.
  // [1 KiB, max_record_bytes_limit]
  std::size_t max_record_bytes = default_max_record_bytes;
};

// ok, or invalid_argument naming the first option out of its range.
[[nodiscard]] status validate(const store_options& options);

// Listing of one kind of record. A stored value that does not decode (or whose ids disagree with
// its key) is not dropped silently: its key's id is reported in `undecodable` so that start-up
// can log it and end or delete that sandbox.
template <class T>
struct listing {
  std::vector<T> records;
  // Sandbox ids (list_sandboxes) or exec ids (list_processes) whose values did not decode.
  std::vector<std::string> undecodable;
};

class store {
 public:
  virtual ~store() = default;

  // Opens, or creates, the database in `dir` (parent directories included) with the column
  // families sandboxes, processes, output, usage and meta. Column families found on disk that
  // this build does not know are opened and left alone. Errors: invalid_argument (options),
  // unavailable or internal (the directory cannot be created, another process holds the
  // database, RocksDB fails to recover it).
  [[nodiscard]] static result<std::unique_ptr<store>> open(const std::string& dir,
                                                           const store_options& options);

  // Writes (replaces) a sandbox record. Synced.
  virtual status put_sandbox(const sandbox_record& sandbox) = 0;
  // Writes a sandbox record and process records of that sandbox in one atomic, synced batch.
  // invalid_argument, and nothing written, when a process's sandbox_id is not sandbox.id.
  virtual status put_sandbox_with_processes(const sandbox_record& sandbox,
                                            const std::vector<process_record>& processes) = 0;
  // not_found when there is none; malformed when the stored bytes do not decode.
  virtual result<sandbox_record> get_sandbox(const std::string& sandbox_id) const = 0;
  // Every sandbox, ordered by id.
  virtual result<listing<sandbox_record>> list_sandboxes() const = 0;

  // Writes (replaces) a process record. Synced. Does not check that its sandbox exists.
  virtual status put_process(const process_record& process) = 0;
  virtual result<process_record> get_process(const std::string& sandbox_id,
                                             const std::string& exec_id) const = 0;
  // Every process of the sandbox, ordered by handle, then exec id.
  virtual result<listing<process_record>> list_processes(const std::string& sandbox_id) const = 0;

  // Stores chunks of one exec's output in one atomic batch, each under its seq (a chunk with a
  // seq already stored replaces it). Not synced by default: see Durability.
  virtual status append_output(const std::string& sandbox_id, const std::string& exec_id,
                               const std::vector<output_chunk>& chunks) = 0;
  // Stored chunks of one exec with seq >= from_seq, in seq order, until the next chunk would
  // take the total data size past max_bytes. The first chunk is returned whatever its size, so a
  // reader always makes progress; an empty result means no chunk at or after from_seq. Fails
  // with malformed rather than skip a chunk that does not decode (output is never silently cut,
  // docs/promises.md P4).
  virtual result<std::vector<output_chunk>> read_output(const std::string& sandbox_id,
                                                        const std::string& exec_id,
                                                        uint64_t from_seq,
                                                        std::size_t max_bytes) const = 0;

  // Removes the exec's stored chunks with seq < before_seq (the oldest output, dropped for a
  // quota: docs/security.md, "Fair share"); a later read_output from before them starts past the
  // gap. Not synced (as output is not). Ok when there are none.
  virtual status drop_output_before(const std::string& sandbox_id, const std::string& exec_id,
                                    uint64_t before_seq) = 0;
  // The seq and data size of every stored chunk of the exec, in seq order (without copying
  // the data out): what a restarted executor counts against its quotas.
  struct chunk_size {
    uint64_t seq = 0;
    uint64_t bytes = 0;
  };
  virtual result<std::vector<chunk_size>> output_sizes(const std::string& sandbox_id,
                                                       const std::string& exec_id) const = 0;

  // Removes the sandbox record, all its process records and all their output, in one atomic,
  // synced batch. Ok when nothing was stored. Touches no other sandbox.
  virtual status delete_sandbox(const std::string& sandbox_id) = 0;
  // Removes all stored output of the sandbox's execs (output retention), keeping the sandbox and
  // process records. Synced. Ok when there is none.
  virtual status delete_output(const std::string& sandbox_id) = 0;

  // Metered use, one record per sandbox (actors/usage.hpp). put_usage writes all of `records`
  // in one atomic batch, synced like a state write (store_options::sync_state_writes), so what
  // it returned ok for survives a kill -9. delete_sandbox removes the sandbox's usage too.
  virtual status put_usage(const std::vector<usage_record>& records) = 0;
  // not_found when there is none; malformed when the stored bytes do not decode.
  virtual result<usage_record> get_usage(const std::string& sandbox_id) const = 0;
  // Every usage record, ordered by sandbox id.
  virtual result<listing<usage_record>> list_usage() const = 0;

  // Node-wide values (e.g. the session counter). put_meta is synced.
  virtual result<std::string> get_meta(const std::string& key) const = 0;
  virtual status put_meta(const std::string& key, const std::string& value) = 0;

  // Syncs the log (making unsynced output durable), flushes memtables and closes the database.
  // Returns the first failure, but closes regardless. Idempotent. The destructor calls it and
  // ignores the status: call close() to see it.
  virtual status close() = 0;
};

}  // namespace corral::storage
