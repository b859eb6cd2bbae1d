// Which x86_64 boot protocol a kernel is entered through (--boot-protocol).
#pragma once

namespace edgevisor {

enum class BootProtocol {
  kAuto,   // PVH for an ELF with the PVH note; the Linux 64-bit protocol otherwise
  kPvh,    // the ELF's Xen PVH entry (32-bit protected mode, hvm_start_info)
  kLinux,  // the Linux 64-bit boot protocol (long mode, boot_params), for a vmlinux or bzImage
};

}  // namespace edgevisor
