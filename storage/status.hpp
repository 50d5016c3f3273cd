#pragma once
// Error values of the store: a status (code + message) and result<T> (a T or a status).
// No exceptions cross this module's boundary; both types are [[nodiscard]], so a caller that
// drops one gets a warning. Ignoring one on purpose is written `(void)call(); // why`.
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "schemas/codec.hpp"

namespace corral::storage {

// The outcome of a store call. Codes are the project's wire::ErrorCode, so an actor can put one
// in a reply as is. Codes the store uses:
//   ok                   success
//   not_found            no record under that key (get_* only)
//   invalid_argument     an id is empty, too long or contains a NUL byte; records disagree
//   too_large            an encoded record or chunk is over store_options::max_record_bytes
//   malformed            bytes in the database do not decode as the expected record
//   failed_precondition  a record written by a newer format version than this build reads
//   resource_exhausted   the disk is full
//   unavailable          the store is closed, or the database is locked or busy
//   internal             any other RocksDB or file system error (message says which)
struct [[nodiscard]] status {
  wire::ErrorCode code = wire::ErrorCode::ok;
  std::string message;

  bool ok() const { return code == wire::ErrorCode::ok; }
};

[[nodiscard]] inline status failure(wire::ErrorCode code, std::string message) {
  return status{code, std::move(message)};
}

// Either a value or an error status. A result built from an ok status (a bug in the caller)
// becomes an `internal` error, so ok() always means a value is present.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : value_(std::move(value)) {}  // NOLINT: implicit, like expected<T>
  result(status err) : error_(std::move(err)) {  // NOLINT
    if (error_.ok()) error_ = status{wire::ErrorCode::internal, "result built from an ok status"};
  }

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }

  // The error; code ok when a value is present.
  const status& error() const { return error_; }
  wire::ErrorCode code() const { return error_.code; }

  // Precondition: ok(). Reading the value of an error is a programming error and aborts.
  T& value() & {
    require_value();
    return *value_;
  }
  const T& value() const& {
    require_value();
    return *value_;
  }
  T&& value() && {
    require_value();
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void require_value() const {
    if (!value_) std::abort();
  }

  std::optional<T> value_;
  status error_;
};

}  // namespace corral::storage
