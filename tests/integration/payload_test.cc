// Boots the firmware payloads on the host's /dev/kvm and checks console text and exit status.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "src/base/fd.h"
#include "tests/integration/vmm_process.h"
#include "tests/unit/elf_builder.h"
#include "tools/benchmark/qemu_microvm.h"

namespace edgevisor::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

std::vector<std::string> VmmArgs(std::vector<std::string> extra) {
  std::vector<std::string> a = {EdgevisorBin(), "run"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::string ReadFile(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class PayloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access("/dev/kvm", R_OK | W_OK), 0) << "/dev/kvm is required for integration tests";
  }
};

TEST_F(PayloadTest, HelloPrintsBannerAndCmdline) {
  auto r = RunProcess(VmmArgs(
      {"--kernel", Payload("hello"), "--cmdline", "hi there", "--mem", "64", "--debug-exit"}));
  EXPECT_EQ(r.exit_code, 1) << r.err;  // payload exit 0 -> (0 << 1) | 1
  EXPECT_EQ(r.out, "edgevisor hello payload\ncmdline: hi there\nhello: done\n");
}

TEST_F(PayloadTest, HelloWithoutDebugExitHaltsCleanly) {
  auto r = RunProcess(VmmArgs({"--kernel", Payload("hello"), "--mem", "32"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("hello: done"));
  EXPECT_THAT(r.err, HasSubstr("halted with interrupts disabled"));
}

// systemd's notification socket, as a Type=notify unit names it in NOTIFY_SOCKET: the VMM
// sends READY=1 when the guest writes its boot-timer mark, and nothing without the mark.
TEST_F(PayloadTest, ServiceManagerHearsReadyWhenTheGuestBoots) {
  const std::string path = "/tmp/ev-notify-payload-" + std::to_string(getpid()) + ".sock";
  edgevisor::UniqueFd manager(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  unlink(path.c_str());
  ASSERT_EQ(bind(manager.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  auto receive = [&] {
    char buf[256];
    const ssize_t n = recv(manager.get(), buf, sizeof(buf), MSG_DONTWAIT);
    return n < 0 ? std::string("<nothing>") : std::string(buf, static_cast<size_t>(n));
  };
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  auto r = RunProcess(VmmArgs({"--kernel", Payload("hello"), "--debug-exit"}));
  auto off = RunProcess(
      VmmArgs({"--kernel", Payload("hello"), "--cmdline", "boottimer=off", "--debug-exit"}));
  unsetenv("NOTIFY_SOCKET");
  unlink(path.c_str());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(receive(), MatchesRegex("READY=1\nSTATUS=guest booted in [0-9]+ ms"));
  EXPECT_EQ(off.exit_code, 1) << off.err;
  EXPECT_EQ(receive(), "<nothing>") << "no boot-timer mark, no READY";
}

TEST_F(PayloadTest, BootTimerIsLogged) {
  auto r = RunProcess(VmmArgs({"--kernel", Payload("hello"), "--debug-exit"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("Guest-boot-time ="));
}

TEST_F(PayloadTest, SelftestPasses) {
  auto r = RunProcess(VmmArgs({"--kernel", Payload("selftest"), "--cmdline",
                               "selftest a=1 b=0x10 c=4K flag", "--mem", "64", "--debug-exit"}));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, ContainsRegex(" [1-9][0-9]* passed, 0 failed"));
  EXPECT_THAT(r.out, Not(HasSubstr("FAIL")));
}

TEST_F(PayloadTest, SelftestWithTwoVcpusAndMoreMemory) {
  auto r = RunProcess(
      VmmArgs({"--kernel", Payload("selftest"), "--cmdline", "selftest a=1 b=0x10 c=4K flag",
               "--mem", "512", "--vcpus", "2", "--debug-exit"}));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, ContainsRegex(" [1-9][0-9]* passed, 0 failed"));
}

TEST_F(PayloadTest, TwoVcpusHaltCleanlyWithSecondaryNeverStarted) {
  auto r = RunProcess(VmmArgs({"--kernel", Payload("hello"), "--vcpus", "2"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("halted"));
}

TEST_F(PayloadTest, SerialToFile) {
  const std::string path = ::testing::TempDir() + "/serial_to_file.log";
  unlink(path.c_str());
  auto r = RunProcess(VmmArgs({"--kernel", Payload("hello"), "--cmdline", "x", "--serial",
                               "file:" + path, "--debug-exit"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(ReadFile(path), "edgevisor hello payload\ncmdline: x\nhello: done\n");
}

TEST_F(PayloadTest, SerialOffDiscards) {
  auto r = RunProcess(VmmArgs({"--kernel", Payload("hello"), "--serial", "off", "--debug-exit"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
}

TEST_F(PayloadTest, ConsoleInputReachesGuest) {
  auto r = RunProcess(VmmArgs({"--kernel", Payload("console"), "--debug-exit"}),
                      "first line\nsecond\nexit\n");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("echo: first line\n"));
  EXPECT_THAT(r.out, HasSubstr("echo: second\n"));
}

TEST_F(PayloadTest, ConsoleInputByInterrupt) {
  auto r = RunProcess(VmmArgs({"--kernel", Payload("console"), "--cmdline", "irq", "--debug-exit"}),
                      "via irq\nexit\n");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("echo: via irq\n"));
}

TEST_F(PayloadTest, ConsoleInputLongerThanTheFifoArrivesWhole) {
  // 400 bytes against a 64-byte receive FIFO: input stops when it is full, and goes on when the
  // guest makes room (the UART's room event, not a timer).
  std::string input;
  for (int i = 0; i < 40; ++i) input += "line " + std::to_string(100 + i) + "\n";
  auto r = RunProcess(VmmArgs({"--kernel", Payload("console"), "--debug-exit"}), input + "exit\n");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("echo: line 100\n"));
  EXPECT_THAT(r.out, HasSubstr("echo: line 139\n"));
}

// What the VMM's threads have been scheduled in (schedstat's third field), summed: each count
// is one wake-up.
uint64_t TimesScheduled(pid_t pid) {
  uint64_t total = 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  auto [rc, tids] = Sh("ls " + dir);
  std::istringstream in(tids);
  for (std::string tid; in >> tid;) {
    std::istringstream st(ReadFile(dir + "/" + tid + "/schedstat"));
    uint64_t cpu = 0, wait = 0, runs = 0;
    st >> cpu >> wait >> runs;
    total += runs;
  }
  return total;
}

TEST_F(PayloadTest, AnIdleGuestCostsNoWakeups) {
  // The idle payload halts with interrupts enabled after its ready line; nothing is programmed
  // to interrupt it. The halted-guest checks run at 0.05, 0.25, 1.05, 4.25 and 17.05 s after
  // the guest's last exit: from 5 s to 12 s nothing may run at all (a 50 ms poll would run
  // 280 times).
  Spawned vm(VmmArgs({"--kernel", Payload("idle"), "--mem", "32"}));
  ASSERT_TRUE(vm.WaitFor("idle: ready", 10000)) << vm.out() << vm.err();
  usleep(5'000'000);
  const uint64_t before = TimesScheduled(vm.pid());
  usleep(7'000'000);
  const uint64_t after = TimesScheduled(vm.pid());
  EXPECT_EQ(after - before, 0u) << "the VMM's threads woke while its guest idled";
  kill(vm.pid(), SIGTERM);
  ProcessResult r = vm.Finish(10000);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(PayloadTest, ASilentHaltAfterAQuietSpellIsStillNoticed) {
  // 1.5 s without a single exit, then cli; hlt: the checks have backed off by then, and the one
  // at 4.25 s after the last exit must still see it.
  auto start = std::chrono::steady_clock::now();
  auto r = RunProcess(
      VmmArgs({"--kernel", Payload("idle"), "--mem", "32", "--cmdline", "halt_after=1500"}));
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("guest halted with interrupts disabled"));
  EXPECT_LT(secs, 10.0);
}

TEST_F(PayloadTest, SigtermStopsRunningGuest) {
  for (int sig : {SIGTERM, SIGINT}) {
    auto r = RunProcess(
        VmmArgs({"--kernel", Payload("console"), "--debug-exit"}), "", 20000,
        [sig](const std::string& out) {
          return out.find("console: ready") != std::string::npos ? sig : 0;
        },
        /*close_stdin=*/false);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("stopped by signal"));
  }
}

TEST_F(PayloadTest, TripleFaultIsReportedAsCrash) {
  auto r = RunProcess(VmmArgs({"--kernel", Payload("crash"), "--cmdline", "triple-fault"}));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("triple fault"));
  EXPECT_THAT(r.err, HasSubstr("RIP 0x"));
}

TEST_F(PayloadTest, PageFaultTripleFaultIsReportedAsCrash) {
  auto r = RunProcess(VmmArgs({"--kernel", Payload("crash"), "--cmdline", "triple-fault=pf"}));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("triple fault"));
}

// int3 with no IDT is a triple fault on hardware KVM; PVM cannot emulate int3 and reports an
// internal error. Either way: exit 3 and a readable message with the RIP.
TEST_F(PayloadTest, InternalErrorOrShutdownIsReadable) {
  auto r = RunProcess(VmmArgs({"--kernel", Payload("crash"), "--cmdline", "triple-fault=int3"}));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("RIP 0x"));
  if (access("/sys/module/kvm_pvm", F_OK) == 0) {
    EXPECT_THAT(r.err, HasSubstr("KVM internal error, suberror 1 (emulation failure)"));
    EXPECT_THAT(r.err, HasSubstr("hint: this host's KVM is PVM"));
  } else {
    EXPECT_THAT(r.err, HasSubstr("triple fault"));
  }
}

TEST_F(PayloadTest, I8042ResetEndsVm) {
  auto r = RunProcess(VmmArgs({"--kernel", Payload("crash"), "--cmdline", "i8042-reset"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("reset through the i8042"));
}

// Firecracker's reboot=k behaviour with a configurable status: a guest reboot ends the VMM.
TEST_F(PayloadTest, RebootExitCodeIsConfigurable) {
  auto r = RunProcess(VmmArgs(
      {"--kernel", Payload("crash"), "--cmdline", "i8042-reset", "--reboot-exit-code", "7"}));
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_THAT(r.err, HasSubstr("reset through the i8042"));
}

// The FADT's registers (what Linux's ACPI power-off and reboot write; the nested rig shows a
// Debian kernel doing it).
TEST_F(PayloadTest, AcpiPowerOffExitsZero) {
  auto r = RunProcess(VmmArgs(
      {"--kernel", Payload("crash"), "--cmdline", "acpi-poweroff", "--reboot-exit-code", "7"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("guest powered off (ACPI S5)"));
  EXPECT_THAT(r.out, Not(HasSubstr("still running")));
}

TEST_F(PayloadTest, AcpiResetIsAReboot) {
  auto r = RunProcess(VmmArgs(
      {"--kernel", Payload("crash"), "--cmdline", "acpi-reset", "--reboot-exit-code", "9"}));
  EXPECT_EQ(r.exit_code, 9) << r.err;
  EXPECT_THAT(r.err, HasSubstr("guest reset through ACPI"));
}

// Bad user input: exit code 2 and a message naming the argument.
struct BadArgCase {
  const char* name;
  std::vector<std::string> args;
  const char* expect;
};

class BadArgsTest : public PayloadTest, public ::testing::WithParamInterface<BadArgCase> {};

TEST_P(BadArgsTest, ExitsTwoNamingTheArgument) {
  auto r = RunProcess(VmmArgs(GetParam().args));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(GetParam().expect));
  EXPECT_EQ(r.out, "");
}

std::string WriteTemp(const std::string& name, const std::vector<uint8_t>& data) {
  std::string p = ::testing::TempDir() + "/" + name;
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(data.data()), data.size());
  return p;
}

std::vector<uint8_t> Nops() { return std::vector<uint8_t>(16, 0x90); }

INSTANTIATE_TEST_SUITE_P(
    Cli, BadArgsTest,
    ::testing::Values(
        BadArgCase{"NoKernel", {"--mem", "64"}, "--kernel"},
        BadArgCase{"MissingKernel", {"--kernel", "/nonexistent.elf"}, "--kernel /nonexistent.elf"},
        BadArgCase{"KernelIsDir", {"--kernel", "/"}, "not a regular file"},
        BadArgCase{"NotElf", {"--kernel", "/etc/os-release"}, "not an ELF"},
        BadArgCase{"ElfWithoutPvhNote", {"--kernel", "/bin/true"}, "--kernel /bin/true"},
        BadArgCase{"VmlinuxEntryOutsideSegments",
                   {"--kernel", WriteTemp("nonote.elf", BuildElf({{0x100000, Nops(), 16}}, {},
                                                                 EM_X86_64, 0x800000))},
                   "entry point 0x800000 is outside"},
        BadArgCase{"MissingInitrd",
                   {"--kernel", Payload("hello"), "--initrd", "/nonexistent.cpio"},
                   "--initrd /nonexistent.cpio"},
        BadArgCase{"OverlappingSegments",
                   {"--kernel", WriteTemp("overlap.elf", BuildElf({{0x100000, Nops(), 0x2000},
                                                                   {0x101000, Nops(), 16}},
                                                                  {PvhNote(0x100000)}))},
                   "overlap"},
        BadArgCase{
            "SegmentOutsideRam",
            {"--kernel",
             WriteTemp("far.elf", BuildElf({{0x40000000, Nops(), 16}}, {PvhNote(0x40000000)})),
             "--mem", "16"},
            "does not fit in guest RAM"},
        BadArgCase{"ZeroMem", {"--kernel", "/bin/true", "--mem", "0"}, "--mem"},
        BadArgCase{"HugeMem", {"--kernel", "/bin/true", "--mem", "100000000"}, "--mem"},
        BadArgCase{"ZeroVcpus", {"--kernel", "/bin/true", "--vcpus", "0"}, "--vcpus"},
        BadArgCase{"UnknownFlag", {"--kernel", "/bin/true", "--bogus"}, "--bogus"},
        BadArgCase{"SerialFileInMissingDir",
                   {"--kernel", Payload("hello"), "--serial", "file:/nonexistent/dir/x"},
                   "--serial"}),
    [](const ::testing::TestParamInfo<BadArgCase>& i) { return i.param.name; });

TEST_F(PayloadTest, HelloRunsUnchangedUnderQemu) {
  const std::string qemu = "/usr/bin/qemu-system-x86_64";
  ASSERT_EQ(access(qemu.c_str(), X_OK), 0) << "qemu-system-x86 is a test dependency (the peer)";
  auto r = RunProcess(QemuMicrovm(qemu, Payload("hello"), "hi there", "64"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("edgevisor hello payload\ncmdline: hi there\nhello: done\n"));
}

}  // namespace
}  // namespace edgevisor::testing
