// The unmodified Debian cloud kernel on this host's /dev/kvm, as far as the host allows. On a
// software-virtualized host (PVM) a stock kernel stops later in boot on instructions the host
// cannot emulate, so these tests check the early boot only: the kernel runs, prints its banner
// on the serial console, and reports the memory map, command line and initrd exactly as the VMM
// described them. Then the test stops the VM. The full boot (2 vCPUs, disk, net, ACPI poweroff)
// belongs to the nested rig, and so does the bzImage through the 64-bit boot protocol: its
// decompressor alone took about 80 s of CI's time on PVM, for a path that the rigs boot on real
// KVM with three Debian kernels and that tests/unit/vmm/arch/x86_64/linux_boot_test.cc checks
// field by field.
//
// The kernel comes from tools/guest-kernel (downloaded once into the build tree).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <fstream>

#include "tests/integration/vmm_process.h"

namespace edgevisor::testing {
namespace {

using ::testing::HasSubstr;

class LinuxEarlyBootTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string cmd = EnvOr("GUEST_KERNEL_TOOL", "tools/guest-kernel") + " " +
                            EnvOr("GUEST_KERNEL_CACHE", "build/guest-kernel") + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
    const int rc = pclose(p);
    if (rc == 0) {
      dir_ = out.substr(out.rfind('\n', out.size() - 2) + 1);
      while (!dir_.empty() && dir_.back() == '\n') dir_.pop_back();
    } else {
      fetch_error_ = out;
    }
  }
  void SetUp() override {
    ASSERT_FALSE(dir_.empty()) << "tools/guest-kernel failed:\n" << fetch_error_;
  }

  // Boots until the line with `until` appears on the console, then sends SIGTERM.
  ProcessResult Boot(const std::vector<std::string>& extra, const std::string& until,
                     int timeout_ms) {
    std::vector<std::string> argv = {
        EdgevisorBin(), "run",       "--mem",
        "512",          "--cmdline", "earlyprintk=serial,ttyS0,115200 console=ttyS0 nokaslr"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    // Stop once the whole line holding `until` has arrived.
    return RunProcess(argv, "", timeout_ms, [until](const std::string& out) {
      const size_t at = out.find(until);
      return at != std::string::npos && out.find('\n', at) != std::string::npos ? SIGTERM : 0;
    });
  }
  static inline std::string dir_, fetch_error_;
};

// The ELF form carries Linux's PVH note, so it boots through PVH, with the initrd as module 0.
TEST_F(LinuxEarlyBootTest, VmlinuxBootsThroughPvhWithInitrd) {
  const std::string initrd = ::testing::TempDir() + "/early.initrd";
  {
    std::ofstream f(initrd, std::ios::binary);
    f << std::string(65636, 'i');
  }
  auto r = Boot({"--kernel", dir_ + "/vmlinux", "--initrd", initrd}, "RAMDISK:", 120000);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("Linux version 6."));
  EXPECT_THAT(r.out, HasSubstr("Command line: earlyprintk=serial,ttyS0,115200 console=ttyS0"));
  EXPECT_THAT(r.out, HasSubstr("BIOS-e820: [mem 0x0000000000100000-0x000000001fffffff] usable"));
  // 65636 bytes, page-aligned at the top of the 512 MiB: 0x20000000 - 0x11000.
  EXPECT_THAT(r.out, HasSubstr("RAMDISK: [mem 0x1ffef000-0x1fffffff]"));
  EXPECT_THAT(r.out, HasSubstr("Hypervisor detected: KVM"));
}

}  // namespace
}  // namespace edgevisor::testing
