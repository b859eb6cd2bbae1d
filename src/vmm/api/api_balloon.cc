// The balloon's endpoints (Firecracker's /balloon, /balloon/statistics): before boot they edit
// the configuration; after boot they reach the running device.
#include "absl/strings/str_cat.h"
#include "src/devices/balloon/virtio_balloon_spec.h"
#include "src/vmm/api/api.h"
#include "src/vmm/api/responses.h"

namespace edgevisor::api {
namespace {

constexpr char kNoBalloon[] = "balloon: no balloon device is configured (PUT /balloon first)";

// Firecracker's BalloonStats names, by the virtio tag the guest sends each under (§5.5.6.3).
constexpr const char* kStatNames[balloon::kStatTags] = {
    "swap_in",       "swap_out",         "major_faults", "minor_faults",        "free_memory",
    "total_memory",  "available_memory", "disk_caches",  "hugetlb_allocations", "hugetlb_failures",
    "oom_kill",      "alloc_stall",      "async_scan",   "direct_scan",         "async_reclaim",
    "direct_reclaim"};

Json StatsJson(const balloon::BalloonStats& s) {
  Json out{{"target_pages", s.target_pages},
           {"actual_pages", s.actual_pages},
           {"target_mib", s.target_pages / balloon::kPagesPerMib},
           {"actual_mib", s.actual_pages / balloon::kPagesPerMib}};
  for (uint16_t tag = 0; tag < balloon::kStatTags; ++tag) {
    if (s.values[tag]) out[kStatNames[tag]] = *s.values[tag];
  }
  return out;
}

}  // namespace

HttpResponse ApiController::OnBalloon(const std::string& m, const std::string& what,
                                      const std::string& path, const Json& body) {
  const bool booted = vm_ != nullptr;
  if (m == "PUT") {
    if (booted) return Fault(absl::StrCat(what, " ", kAfterBoot));
    auto b = ParseBalloon(body, "");
    if (!b.ok()) return Fault(b.status());
    if (absl::Status s = CheckBalloonFits(b->amount_mib, resources_.machine.mem_mib, "amount_mib");
        !s.ok()) {
      return Fault(s);
    }
    resources_.balloon = *b;
    configured_ = true;
    return NoContent();
  }
  if (!resources_.balloon) return Fault(kNoBalloon);
  if (path == "/balloon") {
    auto amount = ParseBalloonUpdate(body, "");
    if (!amount.ok()) return Fault(amount.status());
    absl::Status s = booted ? vm_->UpdateBalloon(*amount)
                            : CheckBalloonFits(*amount, resources_.machine.mem_mib, "amount_mib");
    if (!s.ok()) return Fault(s);
    resources_.balloon->amount_mib = *amount;
    return NoContent();
  }
  auto interval = ParseBalloonStatsUpdate(body, "");
  if (!interval.ok()) return Fault(interval.status());
  if (booted) {
    if (absl::Status s = vm_->UpdateBalloonStatsInterval(*interval); !s.ok()) return Fault(s);
  }
  resources_.balloon->stats_polling_interval_s = *interval;
  return NoContent();
}

HttpResponse ApiController::GetBalloon() {
  if (!resources_.balloon) return Fault(kNoBalloon);
  return JsonOk(BalloonJson(*resources_.balloon));
}

HttpResponse ApiController::GetBalloonStatistics() {
  if (!resources_.balloon) return Fault(kNoBalloon);
  if (vm_ == nullptr) {
    return Fault(absl::StrCat("GET /balloon/statistics ", kBeforeBoot));
  }
  auto stats = vm_->BalloonStatistics();
  if (!stats.ok()) return Fault(stats.status());
  return JsonOk(StatsJson(*stats));
}

}  // namespace edgevisor::api
