#include "storage/store.hpp"

#include <sys/stat.h>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string_view>
#include <tuple>
#include <utility>

#include "storage/key_layout.hpp"

namespace corral::storage {
namespace {

namespace kl = key_layout;
using wire::ErrorCode;

status from_rocksdb(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return {};
  ErrorCode code = ErrorCode::internal;
  if (s.IsNotFound()) {
    code = ErrorCode::not_found;
  } else if (s.IsNoSpace()) {
    code = ErrorCode::resource_exhausted;
  } else if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) {
    code = ErrorCode::unavailable;
  }
  return failure(code, std::string(what) + ": " + s.ToString());
}

status too_large(std::string_view what, std::size_t size, std::size_t cap) {
  return failure(ErrorCode::too_large, std::string(what) + " is " + std::to_string(size) +
                                           " bytes, over the cap of " + std::to_string(cap));
}

std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// Every file RocksDB creates is made readable by its owner only (0600): the store holds every
// tenant's argv, env and output (docs/security.md, "Local users"). The directory itself is
// 0700, so no file is reachable by others even before its chmod.
class private_file_system final : public rocksdb::FileSystemWrapper {
 public:
  explicit private_file_system(const std::shared_ptr<rocksdb::FileSystem>& target)
      : rocksdb::FileSystemWrapper(target) {}
  static const char* kClassName() { return "CorralPrivateFileSystem"; }
  const char* Name() const override { return kClassName(); }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* d) override {
    return owner_only(f, target()->NewWritableFile(f, o, r, d));
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* d) override {
    return owner_only(f, target()->ReopenWritableFile(f, o, r, d));
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* d) override {
    return owner_only(f, target()->ReuseWritableFile(f, old, o, r, d));
  }
  rocksdb::IOStatus NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                                    rocksdb::IODebugContext* d) override {
    return owner_only(f, target()->NewRandomRWFile(f, o, r, d));
  }
  rocksdb::IOStatus NewLogger(const std::string& f, const rocksdb::IOOptions& o,
                              std::shared_ptr<rocksdb::Logger>* r,
                              rocksdb::IODebugContext* d) override {
    return owner_only(f, target()->NewLogger(f, o, r, d));
  }
  rocksdb::IOStatus LockFile(const std::string& f, const rocksdb::IOOptions& o,
                             rocksdb::FileLock** l, rocksdb::IODebugContext* d) override {
    return owner_only(f, target()->LockFile(f, o, l, d));
  }

 private:
  static rocksdb::IOStatus owner_only(const std::string& f, rocksdb::IOStatus s) {
    if (s.ok() && ::chmod(f.c_str(), 0600) != 0)
      return rocksdb::IOStatus::IOError("chmod 0600 " + f + ": " + std::strerror(errno));
    return s;
  }
};

class rocksdb_store final : public store {
 public:
  // Column family handles in the order open() passed their descriptors.
  enum cf_index : std::size_t { default_cf, sandboxes, processes, output, usage, meta, known_cfs };

  rocksdb_store(store_options options, std::unique_ptr<rocksdb::Env> env,
                std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : options_(std::move(options)),
        env_(std::move(env)),
        db_(std::move(db)),
        handles_(std::move(handles)) {}

  ~rocksdb_store() override {
    // Ignored: a destructor has nowhere to report; owners that care call close() first.
    (void)close();
  }

  status put_sandbox(const sandbox_record& sandbox) override {
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::WriteBatch batch;
    if (auto st = add_sandbox(batch, sandbox); !st.ok()) return st;
    return write(batch, options_.sync_state_writes, "put sandbox " + sandbox.id);
  }

  status put_sandbox_with_processes(const sandbox_record& sandbox,
                                    const std::vector<process_record>& processes) override {
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::WriteBatch batch;
    if (auto st = add_sandbox(batch, sandbox); !st.ok()) return st;
    for (const auto& process : processes) {
      if (process.sandbox_id != sandbox.id) {
        return failure(ErrorCode::invalid_argument, "process " + process.exec_id +
                                                        " belongs to sandbox " +
                                                        process.sandbox_id + ", not " + sandbox.id);
      }
      if (auto st = add_process(batch, process); !st.ok()) return st;
    }
    return write(batch, options_.sync_state_writes, "put sandbox with processes " + sandbox.id);
  }

  result<sandbox_record> get_sandbox(const std::string& sandbox_id) const override {
    if (auto st = kl::valid_id(sandbox_id, options_.max_id_bytes, "sandbox id"); !st.ok())
      return st;
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::PinnableSlice value;
    const auto s =
        db_->Get(rocksdb::ReadOptions(), handles_[sandboxes], kl::sandbox_key(sandbox_id), &value);
    if (!s.ok()) return from_rocksdb(s, "get sandbox " + sandbox_id);
    return decode_sandbox_at(sandbox_id, view(value));
  }

  result<listing<sandbox_record>> list_sandboxes() const override {
    const auto gate = enter();
    if (!gate) return closed();
    listing<sandbox_record> out;
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), handles_[sandboxes]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string id(view(it->key()));
      auto rec = decode_sandbox_at(id, view(it->value()));
      if (rec) {
        out.records.push_back(std::move(*rec));
      } else {
        out.undecodable.push_back(id);
      }
    }
    if (const auto s = it->status(); !s.ok()) return from_rocksdb(s, "list sandboxes");
    return out;
  }

  status put_process(const process_record& process) override {
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::WriteBatch batch;
    if (auto st = add_process(batch, process); !st.ok()) return st;
    return write(batch, options_.sync_state_writes,
                 "put process " + process.sandbox_id + "/" + process.exec_id);
  }

  result<process_record> get_process(const std::string& sandbox_id,
                                     const std::string& exec_id) const override {
    if (auto st = check_ids(sandbox_id, exec_id); !st.ok()) return st;
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::PinnableSlice value;
    const auto s = db_->Get(rocksdb::ReadOptions(), handles_[processes],
                            kl::process_key(sandbox_id, exec_id), &value);
    if (!s.ok()) return from_rocksdb(s, "get process " + sandbox_id + "/" + exec_id);
    return decode_process_at(sandbox_id, exec_id, view(value));
  }

  result<listing<process_record>> list_processes(const std::string& sandbox_id) const override {
    if (auto st = kl::valid_id(sandbox_id, options_.max_id_bytes, "sandbox id"); !st.ok())
      return st;
    const auto gate = enter();
    if (!gate) return closed();
    const std::string prefix = kl::sandbox_prefix(sandbox_id);
    const std::string end = kl::sandbox_prefix_end(sandbox_id);
    const rocksdb::Slice upper_bound(end);
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper_bound;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handles_[processes]));
    listing<process_record> out;
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      const std::string exec_id(view(it->key()).substr(prefix.size()));
      auto rec = decode_process_at(sandbox_id, exec_id, view(it->value()));
      if (rec) {
        out.records.push_back(std::move(*rec));
      } else {
        out.undecodable.push_back(exec_id);
      }
    }
    if (const auto s = it->status(); !s.ok())
      return from_rocksdb(s, "list processes " + sandbox_id);
    std::sort(out.records.begin(), out.records.end(),
              [](const process_record& a, const process_record& b) {
                return std::tie(a.handle, a.exec_id) < std::tie(b.handle, b.exec_id);
              });
    return out;
  }

  status append_output(const std::string& sandbox_id, const std::string& exec_id,
                       const std::vector<output_chunk>& chunks) override {
    if (auto st = check_ids(sandbox_id, exec_id); !st.ok()) return st;
    if (chunks.empty()) return {};
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::WriteBatch batch;
    for (const auto& chunk : chunks) {
      const std::string value = encode(chunk);
      if (value.size() > options_.max_record_bytes) {
        return too_large("output chunk " + std::to_string(chunk.seq), value.size(),
                         options_.max_record_bytes);
      }
      if (const auto s =
              batch.Put(handles_[output], kl::output_key(sandbox_id, exec_id, chunk.seq), value);
          !s.ok()) {
        return from_rocksdb(s, "batch output");
      }
    }
    return write(batch, options_.sync_output, "append output " + sandbox_id + "/" + exec_id);
  }

  result<std::vector<output_chunk>> read_output(const std::string& sandbox_id,
                                                const std::string& exec_id, uint64_t from_seq,
                                                std::size_t max_bytes) const override {
    if (auto st = check_ids(sandbox_id, exec_id); !st.ok()) return st;
    const auto gate = enter();
    if (!gate) return closed();
    const std::string prefix = kl::output_prefix(sandbox_id, exec_id);
    const std::string end = kl::output_prefix_end(sandbox_id, exec_id);
    const rocksdb::Slice upper_bound(end);
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper_bound;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handles_[output]));
    const std::string where = "output " + sandbox_id + "/" + exec_id;
    std::vector<output_chunk> out;
    std::size_t total = 0;
    for (it->Seek(kl::output_key(sandbox_id, exec_id, from_seq)); it->Valid(); it->Next()) {
      if (!out.empty() && total >= max_bytes) break;  // budget spent: don't decode more
      uint64_t seq = 0;
      if (!kl::parse_output_seq(view(it->key()), prefix, seq)) {
        return failure(ErrorCode::malformed, where + ": key of unexpected length");
      }
      auto chunk = decode_output_chunk(view(it->value()), max_record_bytes_limit);
      if (!chunk) {
        return failure(chunk.code(),
                       where + " seq " + std::to_string(seq) + ": " + chunk.error().message);
      }
      if (chunk->seq != seq) {
        return failure(ErrorCode::malformed, where + " seq " + std::to_string(seq) +
                                                 ": chunk says seq " + std::to_string(chunk->seq));
      }
      if (!out.empty() && total + chunk->data.size() > max_bytes) break;
      total += chunk->data.size();
      out.push_back(std::move(*chunk));
    }
    if (const auto s = it->status(); !s.ok()) return from_rocksdb(s, "read " + where);
    return out;
  }

  status drop_output_before(const std::string& sandbox_id, const std::string& exec_id,
                            uint64_t before_seq) override {
    if (auto st = check_ids(sandbox_id, exec_id); !st.ok()) return st;
    if (before_seq == 0) return {};
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::WriteBatch batch;
    rocksdb::Status s = batch.DeleteRange(handles_[output], kl::output_key(sandbox_id, exec_id, 0),
                                          kl::output_key(sandbox_id, exec_id, before_seq));
    if (!s.ok()) return from_rocksdb(s, "batch drop output " + sandbox_id + "/" + exec_id);
    return write(batch, false, "drop output " + sandbox_id + "/" + exec_id);
  }

  result<std::vector<chunk_size>> output_sizes(const std::string& sandbox_id,
                                               const std::string& exec_id) const override {
    if (auto st = check_ids(sandbox_id, exec_id); !st.ok()) return st;
    const auto gate = enter();
    if (!gate) return closed();
    const std::string prefix = kl::output_prefix(sandbox_id, exec_id);
    const std::string end = kl::output_prefix_end(sandbox_id, exec_id);
    const rocksdb::Slice upper_bound(end);
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper_bound;
    read_options.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handles_[output]));
    std::vector<chunk_size> out;
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      uint64_t seq = 0;
      if (!kl::parse_output_seq(view(it->key()), prefix, seq))
        return failure(ErrorCode::malformed, "output " + sandbox_id + "/" + exec_id +
                                                 ": key of unexpected length");
      // The record's size bounds its data's; close enough for a quota, and no decode.
      out.push_back({seq, it->value().size()});
    }
    if (const auto s = it->status(); !s.ok())
      return from_rocksdb(s, "sizes of output " + sandbox_id + "/" + exec_id);
    return out;
  }

  status delete_sandbox(const std::string& sandbox_id) override {
    if (auto st = kl::valid_id(sandbox_id, options_.max_id_bytes, "sandbox id"); !st.ok())
      return st;
    const std::string prefix = kl::sandbox_prefix(sandbox_id);
    const std::string end = kl::sandbox_prefix_end(sandbox_id);
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::WriteBatch batch;
    rocksdb::Status s = batch.Delete(handles_[sandboxes], kl::sandbox_key(sandbox_id));
    if (s.ok()) s = batch.DeleteRange(handles_[processes], prefix, end);
    if (s.ok()) s = batch.DeleteRange(handles_[output], prefix, end);
    if (s.ok()) s = batch.Delete(handles_[usage], kl::sandbox_key(sandbox_id));
    if (!s.ok()) return from_rocksdb(s, "batch delete " + sandbox_id);
    return write(batch, options_.sync_state_writes, "delete sandbox " + sandbox_id);
  }

  status delete_output(const std::string& sandbox_id) override {
    if (auto st = kl::valid_id(sandbox_id, options_.max_id_bytes, "sandbox id"); !st.ok())
      return st;
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::WriteBatch batch;
    rocksdb::Status s = batch.DeleteRange(handles_[output], kl::sandbox_prefix(sandbox_id),
                                          kl::sandbox_prefix_end(sandbox_id));
    if (!s.ok()) return from_rocksdb(s, "batch delete output " + sandbox_id);
    return write(batch, options_.sync_state_writes, "delete output " + sandbox_id);
  }

  status put_usage(const std::vector<usage_record>& records) override {
    if (records.empty()) return {};
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::WriteBatch batch;
    for (const auto& rec : records) {
      if (auto st = kl::valid_id(rec.sandbox_id, options_.max_id_bytes, "sandbox id"); !st.ok())
        return st;
      const std::string value = encode(rec);
      if (value.size() > options_.max_record_bytes)
        return too_large("usage record " + rec.sandbox_id, value.size(), options_.max_record_bytes);
      if (auto st = from_rocksdb(batch.Put(handles_[usage], kl::sandbox_key(rec.sandbox_id), value),
                                 "batch usage " + rec.sandbox_id);
          !st.ok())
        return st;
    }
    return write(batch, options_.sync_state_writes, "put usage");
  }

  result<usage_record> get_usage(const std::string& sandbox_id) const override {
    if (auto st = kl::valid_id(sandbox_id, options_.max_id_bytes, "sandbox id"); !st.ok())
      return st;
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::PinnableSlice value;
    const auto s =
        db_->Get(rocksdb::ReadOptions(), handles_[usage], kl::sandbox_key(sandbox_id), &value);
    if (!s.ok()) return from_rocksdb(s, "get usage " + sandbox_id);
    return decode_usage_at(sandbox_id, view(value));
  }

  result<listing<usage_record>> list_usage() const override {
    const auto gate = enter();
    if (!gate) return closed();
    listing<usage_record> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[usage]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string id(view(it->key()));
      auto rec = decode_usage_at(id, view(it->value()));
      if (rec) {
        out.records.push_back(std::move(*rec));
      } else {
        out.undecodable.push_back(id);
      }
    }
    if (const auto s = it->status(); !s.ok()) return from_rocksdb(s, "list usage");
    return out;
  }

  result<std::string> get_meta(const std::string& key) const override {
    if (auto st = kl::valid_id(key, options_.max_id_bytes, "meta key"); !st.ok()) return st;
    const auto gate = enter();
    if (!gate) return closed();
    std::string value;
    const auto s = db_->Get(rocksdb::ReadOptions(), handles_[meta], key, &value);
    if (!s.ok()) return from_rocksdb(s, "get meta " + key);
    return value;
  }

  status put_meta(const std::string& key, const std::string& value) override {
    if (auto st = kl::valid_id(key, options_.max_id_bytes, "meta key"); !st.ok()) return st;
    if (value.size() > options_.max_record_bytes) {
      return too_large("meta value " + key, value.size(), options_.max_record_bytes);
    }
    const auto gate = enter();
    if (!gate) return closed();
    rocksdb::WriteBatch batch;
    if (const auto s = batch.Put(handles_[meta], key, value); !s.ok()) {
      return from_rocksdb(s, "batch meta " + key);
    }
    return write(batch, options_.sync_state_writes, "put meta " + key);
  }

  status close() override {
    // New calls stop entering now; the exclusive lock then waits for those in flight (a
    // reader-preferring shared_mutex would otherwise let a steady stream of calls starve it).
    closing_.store(true, std::memory_order_release);
    std::unique_lock gate(gate_);
    if (!db_) return {};
    status first;  // the first failure; closing goes on after one
    const auto note = [&first](const rocksdb::Status& s, std::string_view what) {
      if (!s.ok() && first.ok()) first = from_rocksdb(s, what);
    };
    // Makes unsynced output durable.
    note(db_->SyncWAL(), "close: sync log");
    // Not needed for durability (the log has everything); spares the next open a log replay.
    note(db_->Flush(rocksdb::FlushOptions(), handles_), "close: flush memtables");
    for (auto* handle : handles_) {
      note(db_->DestroyColumnFamilyHandle(handle), "close: release column family");
    }
    handles_.clear();
    note(db_->Close(), "close");
    db_.reset();
    return first;
  }

 private:
  static status closed() { return failure(ErrorCode::unavailable, "store is closed"); }

  // Enters the gate: a held shared lock while the store is open, an empty one (false) once
  // close() has begun. Handles and db_ may be used while the lock is held.
  std::shared_lock<std::shared_mutex> enter() const {
    if (closing_.load(std::memory_order_acquire)) return {};
    std::shared_lock gate(gate_);
    if (!db_) return {};
    return gate;
  }

  status check_ids(const std::string& sandbox_id, const std::string& exec_id) const {
    if (auto st = kl::valid_id(sandbox_id, options_.max_id_bytes, "sandbox id"); !st.ok())
      return st;
    return kl::valid_id(exec_id, options_.max_id_bytes, "exec id");
  }

  status add_sandbox(rocksdb::WriteBatch& batch, const sandbox_record& sandbox) const {
    if (auto st = kl::valid_id(sandbox.id, options_.max_id_bytes, "sandbox id"); !st.ok())
      return st;
    const std::string value = encode(sandbox);
    if (value.size() > options_.max_record_bytes) {
      return too_large("sandbox record " + sandbox.id, value.size(), options_.max_record_bytes);
    }
    return from_rocksdb(batch.Put(handles_[sandboxes], kl::sandbox_key(sandbox.id), value),
                        "batch sandbox " + sandbox.id);
  }

  status add_process(rocksdb::WriteBatch& batch, const process_record& process) const {
    if (auto st = check_ids(process.sandbox_id, process.exec_id); !st.ok()) return st;
    const std::string value = encode(process);
    if (value.size() > options_.max_record_bytes) {
      return too_large("process record " + process.sandbox_id + "/" + process.exec_id, value.size(),
                       options_.max_record_bytes);
    }
    return from_rocksdb(
        batch.Put(handles_[processes], kl::process_key(process.sandbox_id, process.exec_id), value),
        "batch process " + process.sandbox_id + "/" + process.exec_id);
  }

  // Decodes a stored sandbox and checks that it is the one its key names.
  static result<usage_record> decode_usage_at(std::string_view id, std::string_view bytes) {
    auto rec = decode_usage(bytes, max_record_bytes_limit);
    if (rec && rec->sandbox_id != id) {
      return failure(ErrorCode::malformed,
                     "usage record under key " + std::string(id) + " has id " + rec->sandbox_id);
    }
    return rec;
  }

  static result<sandbox_record> decode_sandbox_at(std::string_view id, std::string_view bytes) {
    auto rec = decode_sandbox(bytes, max_record_bytes_limit);
    if (rec && rec->id != id) {
      return failure(ErrorCode::malformed,
                     "sandbox record under key " + std::string(id) + " has id " + rec->id);
    }
    return rec;
  }

  static result<process_record> decode_process_at(std::string_view sandbox_id,
                                                  std::string_view exec_id,
                                                  std::string_view bytes) {
    auto rec = decode_process(bytes, max_record_bytes_limit);
    if (rec && (rec->sandbox_id != sandbox_id || rec->exec_id != exec_id)) {
      return failure(ErrorCode::malformed, "process record under key " + std::string(sandbox_id) +
                                               "/" + std::string(exec_id) + " has ids " +
                                               rec->sandbox_id + "/" + rec->exec_id);
    }
    return rec;
  }

  // Caller holds the gate (enter()).
  status write(rocksdb::WriteBatch& batch, bool sync, const std::string& what) {
    rocksdb::WriteOptions write_options;
    write_options.sync = sync;
    return from_rocksdb(db_->Write(write_options, &batch), what);
  }

  const store_options options_;
  // The Seastar-style gate: every call holds it shared (enter()), close() takes it exclusive
  // after setting closing_, so it waits for calls in flight and later calls see the store closed.
  mutable std::shared_mutex gate_;
  std::atomic<bool> closing_{false};
  std::unique_ptr<rocksdb::Env> env_;  // declared before db_: destroyed after it
  std::unique_ptr<rocksdb::DB> db_;
  // Indexed by cf_index for the known families, then any unknown ones found on disk. Read
  // under the gate: close() releases them.
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace

status validate(const store_options& o) {
  const auto out_of_range = [](const char* name) {
    return failure(ErrorCode::invalid_argument,
                   std::string("store option ") + name + " is out of range");
  };
  constexpr std::size_t min_write_buffer = 64 * 1024;
  constexpr std::size_t max_write_buffer = 1024 * 1024 * 1024;
  if (o.state_write_buffer_bytes < min_write_buffer ||
      o.state_write_buffer_bytes > max_write_buffer) {
    return out_of_range("state_write_buffer_bytes");
  }
  if (o.output_write_buffer_bytes < min_write_buffer ||
      o.output_write_buffer_bytes > max_write_buffer) {
    return out_of_range("output_write_buffer_bytes");
  }
  if (o.max_background_jobs < 1 || o.max_background_jobs > 64) {
    return out_of_range("max_background_jobs");
  }
  if (o.max_id_bytes < 1 || o.max_id_bytes > 1024) return out_of_range("max_id_bytes");
  if (o.max_record_bytes < 1024 || o.max_record_bytes > max_record_bytes_limit) {
    return out_of_range("max_record_bytes");
  }
  return {};
}

result<std::unique_ptr<store>> store::open(const std::string& dir, const store_options& options) {
  if (auto st = validate(options); !st.ok()) return st;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return failure(ErrorCode::internal, "create " + dir + ": " + ec.message());
  if (::chmod(dir.c_str(), 0700) != 0)
    return failure(ErrorCode::internal, "chmod 0700 " + dir + ": " + std::strerror(errno));

  // Outlives the database (rocksdb_store destroys it after db_).
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(
      std::make_shared<private_file_system>(rocksdb::FileSystem::Default()));
  rocksdb::DBOptions db_options;
  db_options.env = env.get();
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = options.max_background_jobs;
  // Replay the log up to the first damaged record (a write torn by a crash) and keep everything
  // before it: a consistent prefix in which every synced write is present.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.keep_log_file_num = 4;  // RocksDB's own info LOG files, not the write-ahead log

  rocksdb::ColumnFamilyOptions state_cf;
  state_cf.write_buffer_size = options.state_write_buffer_bytes;
  rocksdb::ColumnFamilyOptions output_cf = state_cf;
  output_cf.write_buffer_size = options.output_write_buffer_bytes;

  // Same order as rocksdb_store::cf_index.
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, state_cf},
      {kl::sandboxes_cf, state_cf},
      {kl::processes_cf, state_cf},
      {kl::output_cf, output_cf},
      {kl::usage_cf, state_cf},
      {kl::meta_cf, state_cf},
  };
  // RocksDB refuses to open a database without naming all its column families: open those a
  // newer build may have added too.
  if (std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec)) {
    std::vector<std::string> on_disk;
    const auto s = rocksdb::DB::ListColumnFamilies(db_options, dir, &on_disk);
    if (!s.ok()) return from_rocksdb(s, "list column families of " + dir);
    std::set<std::string> known;
    for (const auto& family : families) known.insert(family.name);
    for (const auto& name : on_disk) {
      if (known.count(name) == 0) families.emplace_back(name, state_cf);
    }
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw_db = nullptr;
  const auto s = rocksdb::DB::Open(db_options, dir, families, &handles, &raw_db);
  if (!s.ok()) return from_rocksdb(s, "open " + dir);
  return std::unique_ptr<store>(new rocksdb_store(options, std::move(env),
                                                  std::unique_ptr<rocksdb::DB>(raw_db),
                                                  std::move(handles)));
}

}  // namespace corral::storage
