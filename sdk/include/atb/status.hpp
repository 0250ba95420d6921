// Status and Expected: the error currency of the SDK and of plugins built with the plugin kit.
// A Status carries an atb_status code and a message that names the field, the value and what is
// allowed; it never throws.  (std::expected is C++23; this is the small subset we need.)
#pragma once

#include <atb/abi.h>

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace atb {

class Status {
 public:
  Status() = default;  // OK
  Status(atb_status code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status invalid(std::string message) { return {ATB_ERR_INVALID_ARGUMENT, std::move(message)}; }
  static Status unsupported(std::string message) { return {ATB_ERR_UNSUPPORTED, std::move(message)}; }
  static Status internal(std::string message) { return {ATB_ERR_INTERNAL, std::move(message)}; }

  bool is_ok() const { return code_ == ATB_OK; }
  explicit operator bool() const { return is_ok(); }
  atb_status code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  atb_status code_ = ATB_OK;
  std::string message_;
};

const char* status_name(atb_status code);

// Either a value or a non-OK Status.
template <class T>
class Expected {
 public:
  Expected(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Expected(Status error) : state_(std::move(error)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(state_).is_ok());
  }

  bool has_value() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Status& error() const { return std::get<Status>(state_); }

 private:
  std::variant<T, Status> state_;
};

inline const char* status_name(atb_status code) {
  switch (code) {
    case ATB_OK:
      return "ok";
    case ATB_ERR_INVALID_ARGUMENT:
      return "invalid argument";
    case ATB_ERR_UNSUPPORTED:
      return "unsupported";
    case ATB_ERR_VERSION_MISMATCH:
      return "version mismatch";
    case ATB_ERR_OUT_OF_MEMORY:
      return "out of memory";
    case ATB_ERR_INTERNAL:
      return "internal error";
  }
  return "unknown status";
}

}  // namespace atb

// Early return of a non-OK Status from a function returning Status or Expected<T>.
#define ATB_RETURN_IF_ERROR(expr)                         \
  do {                                                    \
    ::atb::Status atb_status_tmp_ = (expr);               \
    if (!atb_status_tmp_.is_ok()) return atb_status_tmp_; \
  } while (0)
