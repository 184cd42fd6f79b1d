// Status plumbing shared by every subsystem: absl::Status at boundaries, plus the two macros
// abseil keeps internal in the Debian 12 release (RETURN_IF_ERROR, ASSIGN_OR_RETURN).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define QSL_CONCAT_INNER_(a, b) a##b
#define QSL_CONCAT_(a, b) QSL_CONCAT_INNER_(a, b)

#define QSL_RETURN_IF_ERROR(expr)                  \
  do {                                             \
    ::absl::Status qsl_status_ = (expr);           \
    if (!qsl_status_.ok()) return qsl_status_;     \
  } while (0)

#define QSL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).status();   \
  lhs = std::move(tmp).value()

// QSL_ASSIGN_OR_RETURN(auto x, MakeX()); returns the error status from the enclosing function.
#define QSL_ASSIGN_OR_RETURN(lhs, expr) \
  QSL_ASSIGN_OR_RETURN_IMPL_(QSL_CONCAT_(qsl_statusor_, __LINE__), lhs, expr)

namespace qsl {

// Prefixes a status message with context ("model.safetensors: ...") keeping its code.
inline absl::Status Annotate(const absl::Status& s, absl::string_view context) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

}  // namespace qsl
