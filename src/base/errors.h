// Helpers that turn errno into absl::Status with a message naming what failed.
#pragma once

#include <cerrno>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace edgevisor {

// Returns a status for the current errno: "<what>: <strerror>".
inline absl::Status ErrnoError(absl::string_view what, int err = errno) {
  return absl::ErrnoToStatus(err, what);
}

// An error in what the user asked for (a flag, a config field, an input file). The process exits
// with the usage code for these; an errno-derived InvalidArgument from the host does not count.
inline constexpr char kUsageErrorPayload[] = "edgevisor/usage-error";
inline absl::Status UsageError(absl::string_view message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kUsageErrorPayload, absl::Cord("1"));
  return s;
}
inline bool IsUsageError(const absl::Status& s) {
  return s.GetPayload(kUsageErrorPayload).has_value();
}

// Prefixes a non-OK status with context, keeping its code and whether it is a usage error.
inline absl::Status Annotate(const absl::Status& s, absl::string_view context) {
  if (s.ok()) return s;
  if (IsUsageError(s)) return UsageError(absl::StrCat(context, ": ", s.message()));
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

}  // namespace edgevisor

#define EV_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status ev_status_ = (expr);      \
    if (!ev_status_.ok()) return ev_status_; \
  } while (0)

#define EV_CONCAT_INNER(a, b) a##b
#define EV_CONCAT(a, b) EV_CONCAT_INNER(a, b)
#define EV_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(*tmp)
#define EV_ASSIGN_OR_RETURN(lhs, expr) \
  EV_ASSIGN_OR_RETURN_IMPL(EV_CONCAT(ev_statusor_, __LINE__), lhs, expr)
