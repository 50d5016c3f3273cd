#pragma once
// A storage::store that passes every call to a real store, except the put_sandbox and put_process calls a test
// chooses to fail (as a full disk or a failing device would): what the actors do when a synced
// state write fails.
#include <functional>
#include <memory>
#include <mutex>

#include "storage/store.hpp"

namespace corral::testing {

class failing_store final : public storage::store {
 public:
  explicit failing_store(std::unique_ptr<storage::store> real) : real_(std::move(real)) {}

  // From now on put_sandbox (alone or with processes) fails, writing nothing, for every record
  // `pred` holds for; an empty pred fails none.
  void fail_put_sandbox_when(std::function<bool(const storage::sandbox_record&)> pred) {
    std::lock_guard<std::mutex> lock(mu_);
    pred_ = std::move(pred);
  }
  // The same for put_process.
  void fail_put_process_when(std::function<bool(const storage::process_record&)> pred) {
    std::lock_guard<std::mutex> lock(mu_);
    process_pred_ = std::move(pred);
  }
  storage::store& real() { return *real_; }

  status put_sandbox(const storage::sandbox_record& s) override {
    if (fails(s)) return injected();
    return real_->put_sandbox(s);
  }
  status put_sandbox_with_processes(const storage::sandbox_record& s,
                                    const std::vector<storage::process_record>& p) override {
    if (fails(s)) return injected();
    return real_->put_sandbox_with_processes(s, p);
  }
  result<storage::sandbox_record> get_sandbox(const std::string& id) const override {
    return real_->get_sandbox(id);
  }
  result<storage::listing<storage::sandbox_record>> list_sandboxes() const override {
    return real_->list_sandboxes();
  }
  status put_process(const storage::process_record& p) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (process_pred_ && process_pred_(p)) return injected();
    }
    return real_->put_process(p);
  }
  result<storage::process_record> get_process(const std::string& sb,
                                              const std::string& ex) const override {
    return real_->get_process(sb, ex);
  }
  result<storage::listing<storage::process_record>> list_processes(
      const std::string& sb) const override {
    return real_->list_processes(sb);
  }
  status append_output(const std::string& sb, const std::string& ex,
                       const std::vector<storage::output_chunk>& chunks) override {
    return real_->append_output(sb, ex, chunks);
  }
  result<std::vector<storage::output_chunk>> read_output(const std::string& sb,
                                                         const std::string& ex, uint64_t from,
                                                         std::size_t max) const override {
    return real_->read_output(sb, ex, from, max);
  }
  status drop_output_before(const std::string& sb, const std::string& ex,
                            uint64_t before) override {
    return real_->drop_output_before(sb, ex, before);
  }
  result<std::vector<chunk_size>> output_sizes(const std::string& sb,
                                               const std::string& ex) const override {
    return real_->output_sizes(sb, ex);
  }
  status delete_sandbox(const std::string& sb) override { return real_->delete_sandbox(sb); }
  status delete_output(const std::string& sb) override { return real_->delete_output(sb); }
  status put_usage(const std::vector<storage::usage_record>& r) override {
    return real_->put_usage(r);
  }
  result<storage::usage_record> get_usage(const std::string& sb) const override {
    return real_->get_usage(sb);
  }
  result<storage::listing<storage::usage_record>> list_usage() const override {
    return real_->list_usage();
  }
  result<std::string> get_meta(const std::string& key) const override {
    return real_->get_meta(key);
  }
  status put_meta(const std::string& key, const std::string& value) override {
    return real_->put_meta(key, value);
  }
  status close() override { return real_->close(); }

 private:
  bool fails(const storage::sandbox_record& s) {
    std::lock_guard<std::mutex> lock(mu_);
    return pred_ && pred_(s);
  }
  static status injected() {
    return failure(wire::ErrorCode::internal, "injected failure of a synced write");
  }

  std::unique_ptr<storage::store> real_;
  std::mutex mu_;
  std::function<bool(const storage::sandbox_record&)> pred_;
  std::function<bool(const storage::process_record&)> process_pred_;
};

}  // namespace corral::testing
