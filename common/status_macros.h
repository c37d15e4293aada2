// Status propagation helpers used across AutoQ. Abseil ships no public
// RETURN_IF_ERROR / ASSIGN_OR_RETURN, so the project defines its own here.
#ifndef AUTOQ_COMMON_STATUS_MACROS_H_
#define AUTOQ_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define AUTOQ_CONCAT_INNER_(a, b) a##b
#define AUTOQ_CONCAT_(a, b) AUTOQ_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status autoq_status_ = (expr);         \
    if (!autoq_status_.ok()) return autoq_status_; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  AUTOQ_ASSIGN_OR_RETURN_IMPL_(AUTOQ_CONCAT_(autoq_sor_, __LINE__), lhs, expr)

#define AUTOQ_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

#endif  // AUTOQ_COMMON_STATUS_MACROS_H_
