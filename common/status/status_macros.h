// Error propagation helpers for code that returns absl::Status / absl::StatusOr<T>.
//
// Debian 12's Abseil (20220623) ships Status and StatusOr but not the macros Google code uses,
// nor CHECK. This header provides the small set Polder needs:
//
//   absl::Status Load(const std::string& path) {
//     RETURN_IF_ERROR(CheckReadable(path));
//     ASSIGN_OR_RETURN(std::string text, ReadFile(path));
//     ASSIGN_OR_RETURN(Config config, Parse(text), _.Prepend("parsing " + path + ": "));
//     ...
//   }
//
// POLDER_CHECK(cond) aborts with a message when an invariant is broken. Use it for programming
// errors and start-up only; never for network or user input, which gets a Status.
#ifndef POLDER_COMMON_STATUS_STATUS_MACROS_H_
#define POLDER_COMMON_STATUS_STATUS_MACROS_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace polder {

// Returns `status` with `prefix` put before its message; code and payloads are kept.
absl::Status Prepend(const absl::Status& status, absl::string_view prefix);

// Returns `status` with `suffix` appended to its message; code and payloads are kept.
absl::Status Append(const absl::Status& status, absl::string_view suffix);

namespace status_internal {

// Lets the third ASSIGN_OR_RETURN argument refer to the failed status as `_` and add context:
// `_.Prepend("reading x: ")`.
class StatusBuilder {
 public:
  explicit StatusBuilder(absl::Status status) : status_(std::move(status)) {}
  StatusBuilder& Prepend(absl::string_view prefix) {
    status_ = ::polder::Prepend(status_, prefix);
    return *this;
  }
  StatusBuilder& Append(absl::string_view suffix) {
    status_ = ::polder::Append(status_, suffix);
    return *this;
  }
  operator absl::Status() const& { return status_; }         // NOLINT: implicit by design
  operator absl::Status() && { return std::move(status_); }  // NOLINT
  template <typename T>
  operator absl::StatusOr<T>() const& {  // NOLINT
    return absl::StatusOr<T>(status_);
  }
  template <typename T>
  operator absl::StatusOr<T>() && {  // NOLINT
    return absl::StatusOr<T>(std::move(status_));
  }

 private:
  absl::Status status_;
};

inline const absl::Status& AsStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& AsStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const std::string& message);

}  // namespace status_internal
}  // namespace polder

#define POLDER_STATUS_CONCAT_INNER_(a, b) a##b
#define POLDER_STATUS_CONCAT_(a, b) POLDER_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status or absl::StatusOr<T>); returns its status from the enclosing
// function if it is not OK.
#define RETURN_IF_ERROR(expr)                                         \
  do {                                                                \
    const auto& polder_status_tmp_ = (expr);                          \
    if (!polder_status_tmp_.ok()) {                                   \
      return ::polder::status_internal::AsStatus(polder_status_tmp_); \
    }                                                                 \
  } while (false)

#define POLDER_ASSIGN_OR_RETURN_IMPL_2_(var, lhs, expr) \
  auto var = (expr);                                    \
  if (!var.ok()) return std::move(var).status();        \
  lhs = std::move(var).value()

#define POLDER_ASSIGN_OR_RETURN_IMPL_3_(var, lhs, expr, error_expr)      \
  auto var = (expr);                                                     \
  if (!var.ok()) {                                                       \
    ::polder::status_internal::StatusBuilder _(std::move(var).status()); \
    (void)_;                                                             \
    return (error_expr);                                                 \
  }                                                                      \
  lhs = std::move(var).value()

#define POLDER_ASSIGN_OR_RETURN_PICK_(_1, _2, _3, NAME, ...) NAME

// ASSIGN_OR_RETURN(lhs, expr) evaluates `expr` (an absl::StatusOr<T>); on error returns its
// status, otherwise moves the value into `lhs` (which may declare a variable).
// ASSIGN_OR_RETURN(lhs, expr, error_expr) returns `error_expr` instead, in which `_` is a
// StatusBuilder holding the error: `ASSIGN_OR_RETURN(auto x, F(), _.Prepend("f: "))`.
#define ASSIGN_OR_RETURN(...)                                            \
  POLDER_ASSIGN_OR_RETURN_PICK_(__VA_ARGS__, POLDER_ASSIGN_OR_RETURN_3_, \
                                POLDER_ASSIGN_OR_RETURN_2_, unused)      \
  (__VA_ARGS__)
#define POLDER_ASSIGN_OR_RETURN_2_(lhs, expr) \
  POLDER_ASSIGN_OR_RETURN_IMPL_2_(POLDER_STATUS_CONCAT_(polder_statusor_, __LINE__), lhs, expr)
#define POLDER_ASSIGN_OR_RETURN_3_(lhs, expr, error_expr)                                       \
  POLDER_ASSIGN_OR_RETURN_IMPL_3_(POLDER_STATUS_CONCAT_(polder_statusor_, __LINE__), lhs, expr, \
                                  error_expr)

// Aborts the process with file, line and condition when `cond` is false. For invariants and
// start-up checks only.
#define POLDER_CHECK(cond)                                                              \
  do {                                                                                  \
    if (!(cond)) ::polder::status_internal::CheckFailed(__FILE__, __LINE__, #cond, ""); \
  } while (false)

// Like POLDER_CHECK, with a message (a std::string or C string) added to the report.
#define POLDER_CHECK_MSG(cond, message)                                                        \
  do {                                                                                         \
    if (!(cond)) ::polder::status_internal::CheckFailed(__FILE__, __LINE__, #cond, (message)); \
  } while (false)

// Aborts when `expr` (a Status or StatusOr) is not OK, printing the status.
#define POLDER_CHECK_OK(expr)                                                 \
  do {                                                                        \
    const auto& polder_check_tmp_ = (expr);                                   \
    if (!polder_check_tmp_.ok())                                              \
      ::polder::status_internal::CheckFailed(                                 \
          __FILE__, __LINE__, #expr " is OK",                                 \
          ::polder::status_internal::AsStatus(polder_check_tmp_).ToString()); \
  } while (false)

#endif  // POLDER_COMMON_STATUS_STATUS_MACROS_H_
