// Port-I/O and MMIO dispatch by address range.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace edgevisor {

// A device on a bus. Offsets are relative to the device's base. Accesses may come from any
// vCPU thread at once: a device guards its own state.
class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual void Read(uint64_t offset, absl::Span<uint8_t> data) = 0;
  virtual void Write(uint64_t offset, absl::Span<const uint8_t> data) = 0;
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  // Fails if the range is empty, wraps, or overlaps a device already on the bus.
  absl::Status Insert(std::shared_ptr<BusDevice> dev, uint64_t base, uint64_t len,
                      std::string dev_name);

  // Returns false when no device claims [addr, addr + data.size()). The access must fit inside
  // one device's range.
  bool Read(uint64_t addr, absl::Span<uint8_t> data) const;
  bool Write(uint64_t addr, absl::Span<const uint8_t> data) const;

 private:
  struct Entry {
    uint64_t len;
    std::shared_ptr<BusDevice> dev;
    std::string name;
  };
  // Returns the entry and offset for an access, or nullptr.
  const Entry* Find(uint64_t addr, uint64_t size, uint64_t* offset) const;

  std::string name_;
  std::map<uint64_t, Entry> devices_;  // keyed by base; filled before vCPUs start
};

}  // namespace edgevisor
