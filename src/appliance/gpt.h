// Growing the last GPT partition to the end of a larger disk: what the appliance does on its
// first boot, when its 127 MiB image has been written to a bigger disk. The disk's GPT is input
// we did not write (it may have been edited, or be damaged), so every field is checked: both
// CRCs, the header's own LBA and size, the entry array's place and size.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace edgevisor::appliance::gpt {

// A disk as bytes: read and write at byte offsets (a block device, an image file, a buffer).
struct Disk {
  std::function<absl::Status(uint64_t offset, absl::Span<uint8_t> out)> read;
  std::function<absl::Status(uint64_t offset, absl::Span<const uint8_t> data)> write;
  uint64_t bytes = 0;
  uint32_t sector = 512;
};

struct Growth {
  int number = 0;  // the partition's number (1-based)
  uint64_t first_lba = 0;
  uint64_t old_last_lba = 0;
  uint64_t new_last_lba = 0;
  bool changed = false;  // false: it already ends where it can
};

// Moves the backup GPT to the end of the disk and extends the partition named `name` (which
// must end after every other partition) to the last usable sector, at a 1 MiB boundary. Also
// updates the protective MBR's size.
absl::StatusOr<Growth> GrowPartitionToEnd(const Disk& disk, const std::string& name);

// CRC-32 (IEEE 802.3, reflected, as GPT uses it).
uint32_t Crc32(absl::Span<const uint8_t> data);

}  // namespace edgevisor::appliance::gpt
