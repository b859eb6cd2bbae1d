#include "src/jailer/exit_codes.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace edgevisor::jailer {
namespace {
constexpr char kExitCodePayload[] = "edgevisor/jailer-exit-code";
}  // namespace

absl::Status JailerError(int exit_code, absl::string_view message) {
  absl::Status s = exit_code == kExitUsage ? absl::InvalidArgumentError(message)
                                           : absl::FailedPreconditionError(message);
  s.SetPayload(kExitCodePayload, absl::Cord(std::to_string(exit_code)));
  return s;
}

int ExitCodeOf(const absl::Status& s) {
  if (s.ok()) return kExitOk;
  int code = kExitJail;
  if (auto p = s.GetPayload(kExitCodePayload)) {
    if (!absl::SimpleAtoi(std::string(*p), &code)) code = kExitJail;
  }
  return code;
}

absl::Status WithContext(const absl::Status& s, absl::string_view context) {
  if (s.ok()) return s;
  absl::Status out(s.code(), absl::StrCat(context, ": ", s.message()));
  s.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace edgevisor::jailer
