#pragma once
// The project's one result vocabulary: a status (a wire error code + a message) and result<T>
// (a T or a status). Every module's own calls answer with these, and no exception crosses a
// module's boundary (docs/architecture.md, "Results and errors"). Both types are [[nodiscard]], so
// a caller that drops one gets a warning; ignoring one on purpose is written
// `(void)call(); // why`. The codes are wire::ErrorCode, so a status can go into a reply as is.
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "schemas/codec.hpp"

namespace corral {

// The outcome of a call that returns no value. Each module documents the codes it uses.
struct [[nodiscard]] status {
  status() = default;
  status(wire::ErrorCode c, std::string m, std::string f = {})  // NOLINT: implicit, {code, msg}
      : code(c), message(std::move(m)), field(std::move(f)) {}

  wire::ErrorCode code = wire::ErrorCode::ok;
  std::string message;
  // The request field the error is about, when the wire said (an ErrorReply's field); empty
  // when none.
  std::string field;

  bool ok() const { return code == wire::ErrorCode::ok; }
  explicit operator bool() const { return ok(); }
  // Itself: lets code read a status and a result<T> alike (`x.error().code`).
  const status& error() const { return *this; }
};

[[nodiscard]] inline status failure(wire::ErrorCode code, std::string message,
                                    std::string field = {}) {
  return status{code, std::move(message), std::move(field)};
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
  // By value: `for (auto& x : call().value())` must not hold a reference into a temporary.
  T value() && {
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

}  // namespace corral
