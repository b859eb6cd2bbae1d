// Vmm::CreateSnapshot: the paused VM's state and memory to files (snapshot/file.h).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "absl/strings/str_format.h"
#include "src/base/errors.h"
#include "src/base/log.h"
#include "src/vmm/snapshot/file.h"
#include "src/vmm/snapshot/vm_state.h"
#include "src/vmm/vmm.h"
#if defined(__aarch64__)
#include "src/platform/vgic_state.h"
#include "src/vmm/arch/aarch64/layout.h"
#endif

namespace edgevisor {
namespace {

absl::Status WriteAll(int fd, const uint8_t* p, size_t n, uint64_t offset,
                      const std::string& what) {
  while (n > 0) {
    const ssize_t w = pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return ErrnoError(absl::StrFormat("write %s", what));
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return absl::OkStatus();
}

// A snapshot file is written under a temporary name next to PATH and renamed over it only when
// complete: a failed snapshot leaves no half file, and the file a restored VM (or its clones)
// maps privately keeps its inode, so writing a new snapshot to the same path never pulls pages
// from under a running guest.
class NewFile {
 public:
  static absl::StatusOr<NewFile> Create(const std::string& path, const char* field) {
    NewFile f;
    f.path_ = path;
    f.tmp_ = path + ".tmp";
    f.field_ = field;
    f.fd_.Reset(open(f.tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!f.fd_.valid()) return ErrnoError(absl::StrFormat("%s: %s", field, f.tmp_));
    return f;
  }
  NewFile() = default;
  NewFile(NewFile&&) = default;
  ~NewFile() {
    if (!tmp_.empty()) unlink(tmp_.c_str());  // not committed
  }
  int fd() const { return fd_.get(); }
  absl::Status Commit() {
    if (rename(tmp_.c_str(), path_.c_str()) != 0) {
      return ErrnoError(absl::StrFormat("%s: rename to %s", field_, path_));
    }
    tmp_.clear();
    return absl::OkStatus();
  }

 private:
  std::string path_, tmp_;
  const char* field_ = "";
  UniqueFd fd_;
};

constexpr uint64_t kPage = GuestMemory::kDirtyPageSize;

// A memory file as long as guest RAM, its regions back to back, holding the pages for which
// WANTED(region index, page index) holds, runs of them at once; the rest stay holes. Returns
// the number of pages written.
template <typename Wanted>
absl::StatusOr<uint64_t> WriteMemoryPages(const GuestMemory& mem, const std::string& path,
                                          Wanted wanted) {
  EV_ASSIGN_OR_RETURN(NewFile file, NewFile::Create(path, "mem_file_path"));
  if (ftruncate(file.fd(), static_cast<off_t>(mem.total_size())) != 0) {
    return ErrnoError(absl::StrFormat("mem_file_path: %s: ftruncate", path));
  }
  uint64_t file_offset = 0, written = 0;
  for (size_t i = 0; i < mem.regions().size(); ++i) {
    const GuestRegion& r = mem.regions()[i];
    const uint64_t pages = r.size / kPage;
    uint64_t run = 0;  // wanted pages waiting to be written, ending before `page`
    for (uint64_t page = 0; page <= pages; ++page) {
      if (page < pages && wanted(i, page)) {
        ++run;
        continue;
      }
      if (run > 0) {
        const uint64_t at = (page - run) * kPage;
        EV_RETURN_IF_ERROR(WriteAll(file.fd(), r.hva + at, run * kPage, file_offset + at,
                                    "mem_file_path " + path));
        written += run;
        run = 0;
      }
    }
    file_offset += r.size;
  }
  EV_RETURN_IF_ERROR(file.Commit());
  return written;
}

// Full: every page but those of zeros, so a 1 GiB guest that touched 40 MiB writes 40 MiB and
// its clones share only what it wrote.
absl::StatusOr<uint64_t> WriteMemoryFile(const GuestMemory& mem, const std::string& path) {
  static const uint8_t kZero[kPage] = {};
  return WriteMemoryPages(mem, path, [&mem](size_t i, uint64_t page) {
    return std::memcmp(mem.regions()[i].hva + page * kPage, kZero, kPage) != 0;
  });
}

// The dirty pages of region I: those KVM logged for the vCPUs and those the devices touched
// (GuestMemory), one bit per page; reading them clears both logs.
absl::StatusOr<std::vector<uint64_t>> TakeDirtyPages(const VmParts& p, size_t i) {
  const GuestRegion& r = p.mem->regions()[i];
  EV_ASSIGN_OR_RETURN(std::vector<uint64_t> bits,
                      p.vm.GetDirtyLog(static_cast<uint32_t>(i), r.size));
  const std::vector<uint64_t> dev = p.mem->TakeDirty(i);
  for (size_t w = 0; w < bits.size() && w < dev.size(); ++w) bits[w] |= dev[w];
  return bits;
}

// Diff: only the pages written since the last snapshot (or the start), zero pages too, at their
// offsets; every other page is a hole. `edgevisor rebase-snap` copies its data onto the
// previous snapshot's memory file.
absl::StatusOr<uint64_t> WriteDirtyPages(const VmParts& p, const std::string& path) {
  std::vector<std::vector<uint64_t>> bits;
  for (size_t i = 0; i < p.mem->regions().size(); ++i) {
    EV_ASSIGN_OR_RETURN(std::vector<uint64_t> b, TakeDirtyPages(p, i));
    bits.push_back(std::move(b));
  }
  return WriteMemoryPages(*p.mem, path, [&bits](size_t i, uint64_t page) {
    return ((bits[i][page / 64] >> (page % 64)) & 1) != 0;
  });
}

absl::Status WriteStateFile(const std::string& bytes, const std::string& path) {
  EV_ASSIGN_OR_RETURN(NewFile file, NewFile::Create(path, "snapshot_path"));
  EV_RETURN_IF_ERROR(WriteAll(file.fd(), reinterpret_cast<const uint8_t*>(bytes.data()),
                              bytes.size(), 0, "snapshot_path " + path));
  return file.Commit();
}

// The vCPUs and the interrupt controller, of a VM whose vCPUs are all paused.
absl::Status SaveCpusAndIrqchip(const VmParts& p, snapshot::VmState& s) {
#if defined(__x86_64__)
  const size_t xsave_size = p.vm.XsaveSize();
  EV_ASSIGN_OR_RETURN(std::vector<uint32_t> listed, p.kvm.MsrIndexList());
  EV_ASSIGN_OR_RETURN(std::vector<uint32_t> msrs, p.vcpus[0]->ReadableMsrs(listed));
  for (const auto& vcpu : p.vcpus) {
    auto v = vcpu->SaveState(msrs, xsave_size);
    if (!v.ok()) return Annotate(v.status(), absl::StrFormat("vcpu%d", vcpu->index()));
    auto cpuid = arch::GuestCpuid(p.kvm, vcpu->index(), static_cast<int>(p.vcpus.size()));
    if (!cpuid.ok()) return cpuid.status();
    v->cpuid = *std::move(cpuid);
    s.vcpus.push_back(*std::move(v));
  }
  EV_ASSIGN_OR_RETURN(s.irqchip, p.vm.SaveIrqchip());
#else
  std::vector<uint64_t> mpidrs;
  for (const auto& vcpu : p.vcpus) {
    auto v = vcpu->SaveState();
    if (!v.ok()) return Annotate(v.status(), absl::StrFormat("vcpu%d", vcpu->index()));
    s.vcpus.push_back(*std::move(v));
    EV_ASSIGN_OR_RETURN(uint64_t mpidr, vcpu->Mpidr());
    mpidrs.push_back(mpidr);
  }
  EV_ASSIGN_OR_RETURN(
      s.gic, SaveGic(p.arch.irqchip.get(), static_cast<uint32_t>(p.arch.irqchip_version),
                     p.arch.its.valid() ? p.arch.its.get() : -1, mpidrs, aarch64::kGicNumIrqs));
#endif
  return absl::OkStatus();
}

}  // namespace

absl::Status Vmm::CreateSnapshot(const std::string& state_path, const std::string& mem_path,
                                 const std::string& vmm_version, bool diff) {
  {
    absl::MutexLock lock(&pause_mu_);
    if (!pause_requested_.load() || paused_count_ != p_.vcpus.size()) {
      return absl::FailedPreconditionError(
          "the microVM must be Paused first (PATCH /vm {\"state\": \"Paused\"})");
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  snapshot::VmState s;
  s.config = p_.config;
  s.mem_bytes = p_.mem->total_size();
  // Devices first: each finishes its I/O in flight (which writes guest memory) and stops. They
  // stay stopped until Resume(): a paused VM that was snapshotted must not go on doing what its
  // guest queued (on the disk a restored copy will use), since the snapshot has it still to do.
  for (auto& t : p_.virtio_devices) {
    EV_ASSIGN_OR_RETURN(Json j, t->SaveState());
    s.virtio.push_back(std::move(j));
  }
  s.uart = p_.uart ? p_.uart->SaveState() : Json();
  s.i8042 = p_.i8042 ? p_.i8042->SaveState() : Json();
  s.rtc = p_.rtc ? p_.rtc->SaveState() : Json();
  // Before the memory: on aarch64 the ITS writes its tables into guest RAM.
  EV_RETURN_IF_ERROR(SaveCpusAndIrqchip(p_, s));
  const bool tracking = p_.mem->tracking_dirty();
  if (diff && !tracking) {
    return absl::FailedPreconditionError(
        "a Diff snapshot needs dirty-page tracking (machine-config track_dirty_pages)");
  }
  std::string what = "all of it";
  if (diff) {
    EV_ASSIGN_OR_RETURN(uint64_t pages, WriteDirtyPages(p_, mem_path));
    what = absl::StrFormat("%d dirty pages", pages);
  } else {
    EV_RETURN_IF_ERROR(WriteMemoryFile(*p_.mem, mem_path).status());
    // The next Diff holds what changes after this snapshot.
    for (size_t i = 0; tracking && i < p_.mem->regions().size(); ++i) {
      EV_RETURN_IF_ERROR(TakeDirtyPages(p_, i).status());
    }
  }
  const std::string bytes = snapshot::Encode(snapshot::ToJson(s), vmm_version);
  EV_RETURN_IF_ERROR(WriteStateFile(bytes, state_path));
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("snapshot ({}): state {} ({} bytes), memory {} ({} MiB: {}) in {:.1f} ms",
               diff ? "Diff" : "Full", state_path, bytes.size(), mem_path, s.mem_bytes >> 20, what,
               ms);
  return absl::OkStatus();
}

}  // namespace edgevisor
