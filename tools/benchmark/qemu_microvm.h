// The QEMU microvm command line that the benchmarks and the integration tests use as the
// side-by-side peer (flags from ../shared/reference/qemu-peer.md): `payload` booted with the
// debug-exit device; `extra` adds the devices under test. Our payloads drive virtio-mmio
// version 2, which QEMU offers only with {"-global", "virtio-mmio.force-legacy=false"}.
#pragma once

#include <string>
#include <vector>

namespace edgevisor {

inline std::vector<std::string> QemuMicrovm(const std::string& qemu, const std::string& payload,
                                            const std::string& cmdline, const std::string& mem_mib,
                                            const std::vector<std::string>& extra = {}) {
  std::vector<std::string> a = {qemu,
                                "-M",
                                "microvm,acpi=off,x-option-roms=off,pit=off,pic=off,rtc=off",
                                "-enable-kvm",
                                "-cpu",
                                "host,-arch-capabilities",
                                "-m",
                                mem_mib,
                                "-nodefaults",
                                "-no-user-config",
                                "-nographic",
                                "-serial",
                                "stdio",
                                "-kernel",
                                payload,
                                "-append",
                                cmdline,
                                "-device",
                                "isa-debug-exit,iobase=0xf4,iosize=4"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// A virtio-blk device on a raw image through io_uring, as modern (version 2) virtio-mmio.
// `iothread`: run the device in an iothread of that name (as edgevisor runs it in its own
// thread), instead of QEMU's main loop.
inline std::vector<std::string> QemuVirtioBlk(const std::string& image,
                                              const std::string& iothread = "") {
  std::vector<std::string> a = {"-global", "virtio-mmio.force-legacy=false", "-drive",
                                "file=" + image + ",if=none,id=d,format=raw,aio=io_uring"};
  if (iothread.empty()) {
    a.insert(a.end(), {"-device", "virtio-blk-device,drive=d"});
  } else {
    a.insert(a.end(), {"-object", "iothread,id=" + iothread, "-device",
                       "virtio-blk-device,drive=d,iothread=" + iothread});
  }
  return a;
}

}  // namespace edgevisor
