// One writer per disk: a drive opened read-write takes an exclusive OFD lock on its file, a
// read-only drive a shared one, as QEMU does. A second VM (or any process that honours the
// locks) that opens the same image read-write fails with a message naming the image and the
// holder, instead of corrupting it; read-only sharing still works. OFD locks belong to the
// open file description, so they survive fork and exec and go away with the last fd.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace edgevisor::block {

// Locks the whole file behind FD (opened from PATH, read-write when !READ_ONLY). Fails, naming
// PATH and the holder's pid when /proc shows it, if a conflicting lock is held.
absl::Status LockDisk(int fd, const std::string& path, bool read_only);

// Whether FDINFO_TEXT (a /proc/PID/fdinfo/N file) shows a lock held on the file MAJOR:MINOR:INODE.
// Public for the unit test.
bool FdinfoHoldsLock(const std::string& fdinfo_text, unsigned major, unsigned minor,
                     unsigned long inode);  // NOLINT(runtime/int)

}  // namespace edgevisor::block
