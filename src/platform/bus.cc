#include "src/platform/bus.h"

#include "absl/strings/str_format.h"

namespace edgevisor {

absl::Status Bus::Insert(std::shared_ptr<BusDevice> dev, uint64_t base, uint64_t len,
                         std::string dev_name) {
  if (len == 0 || base + len < base) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s bus: device %s has bad range 0x%x+0x%x", name_, dev_name, base, len));
  }
  auto next = devices_.lower_bound(base);
  if (next != devices_.end() && next->first < base + len) {
    return absl::AlreadyExistsError(absl::StrFormat("%s bus: %s at 0x%x overlaps %s at 0x%x", name_,
                                                    dev_name, base, next->second.name,
                                                    next->first));
  }
  if (next != devices_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.len > base) {
      return absl::AlreadyExistsError(absl::StrFormat("%s bus: %s at 0x%x overlaps %s at 0x%x",
                                                      name_, dev_name, base, prev->second.name,
                                                      prev->first));
    }
  }
  devices_.emplace(base, Entry{len, std::move(dev), std::move(dev_name)});
  return absl::OkStatus();
}

const Bus::Entry* Bus::Find(uint64_t addr, uint64_t size, uint64_t* offset) const {
  auto it = devices_.upper_bound(addr);
  if (it == devices_.begin()) return nullptr;
  --it;
  const uint64_t off = addr - it->first;
  if (off >= it->second.len || size > it->second.len - off) return nullptr;
  *offset = off;
  return &it->second;
}

bool Bus::Read(uint64_t addr, absl::Span<uint8_t> data) const {
  uint64_t off = 0;
  const Entry* e = Find(addr, data.size(), &off);
  if (e == nullptr) return false;
  e->dev->Read(off, data);
  return true;
}

bool Bus::Write(uint64_t addr, absl::Span<const uint8_t> data) const {
  uint64_t off = 0;
  const Entry* e = Find(addr, data.size(), &off);
  if (e == nullptr) return false;
  e->dev->Write(off, data);
  return true;
}

}  // namespace edgevisor
