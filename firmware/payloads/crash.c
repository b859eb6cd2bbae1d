// Crash payload: ends the VM the ways a broken or rebooting guest does, to test how the VMM
// reports each one. The mode is a command-line word.
// x86_64:
//   triple-fault[=ud2|pf|int3]  load an empty IDT and raise an exception (default #UD):
//                 exception -> #GP -> #DF -> shutdown. On PVM hosts `int3` cannot be emulated and
//                 gives a KVM internal error instead, which tests that path.
//   i8042-reset   pulse the reset line through the keyboard controller (Linux reboot=k)
//   acpi-poweroff write SLP_TYP=5|SLP_EN to the FADT's sleep-control register (port 0x600), as
//                 Linux's ACPI power-off does on a hardware-reduced platform
//   acpi-reset    write the FADT's reset value (1) to its reset register (port 0x602)
//   ctrl-alt-del  wait for Ctrl+Alt+Del on the i8042 keyboard (the API's SendCtrlAltDel), then
//                 reset through the controller, as Linux does on that key combination. Polls the
//                 status register; prints each scan code it reads.
// aarch64 (PSCI, which KVM implements and hands to the VMM as a system event):
//   psci-reset    SYSTEM_RESET, as Linux's reboot does
//   psci-off      SYSTEM_OFF, as Linux's power-off does
#include "rt.h"
#if defined(__x86_64__)
#include "rt_x86_64.h"
#elif defined(__aarch64__)
#include "rt_aarch64.h"
#endif

#if defined(__x86_64__)
static void triple_fault(const char* how) {
  rt_printf("crash: triple fault (%s)\n", how[0] ? how : "ud2");
  const struct __attribute__((packed)) {
    uint16_t limit;
    uint64_t base;
  } empty = {0, 0};
  __asm__ volatile("lidt %0" : : "m"(empty) : "memory");
  if (strcmp(how, "int3") == 0) {
    __asm__ volatile("int3");
  } else if (strcmp(how, "pf") == 0) {
    (void)*(volatile uint64_t*)0x4000000000ull;  // not mapped: only the low 4 GiB are
  } else {
    __asm__ volatile("ud2");
  }
}

static void ctrl_alt_del(void) {
  rt_print("crash: waiting for ctrl-alt-del\n");
  // Scan code set 2 make codes: Ctrl 0x14, Alt 0x11, Del 0xe0 0x71.
  static const uint8_t want[] = {0x14, 0x11, 0xe0, 0x71};
  unsigned matched = 0;
  while (matched < sizeof(want)) {
    if (!(inb(0x64) & 0x01)) {  // output buffer empty
      __asm__ volatile("pause");
      continue;
    }
    const uint8_t code = inb(0x60);
    rt_printf("crash: scan code %x\n", code);
    matched = code == want[matched] ? matched + 1 : (code == want[0] ? 1 : 0);
  }
  rt_print("crash: ctrl-alt-del received, resetting\n");
  outb(0x64, 0xfe);
}

// The mode's crash; false if CMDLINE names none of this architecture's.
static bool crash(const char* cmdline) {
  char v[8];
  if (rt_cmdline_get_in(cmdline, "triple-fault", v, sizeof(v))) {
    triple_fault(v);
  } else if (rt_cmdline_get_in(cmdline, "i8042-reset", v, sizeof(v))) {
    rt_print("crash: i8042 reset\n");
    outb(0x64, 0xfe);
  } else if (rt_cmdline_get_in(cmdline, "acpi-poweroff", v, sizeof(v))) {
    rt_print("crash: ACPI S5\n");
    outb(0x601, 0x80);             // clear the wake status first, as ACPICA does
    outb(0x600, (5 << 2) | 0x20);  // SLP_TYP = 5 (\_S5), SLP_EN
  } else if (rt_cmdline_get_in(cmdline, "acpi-reset", v, sizeof(v))) {
    rt_print("crash: ACPI reset register\n");
    outb(0x602, 0x01);
  } else if (rt_cmdline_get_in(cmdline, "ctrl-alt-del", v, sizeof(v))) {
    ctrl_alt_del();
  } else {
    return false;
  }
  return true;
}
#define CRASH_MODES "triple-fault | i8042-reset | acpi-poweroff | acpi-reset | ctrl-alt-del"

#elif defined(__aarch64__)
static bool crash(const char* cmdline) {
  char v[8];
  if (rt_cmdline_get_in(cmdline, "psci-reset", v, sizeof(v))) {
    rt_print("crash: PSCI SYSTEM_RESET\n");
    rt_psci_call(PSCI_0_2_FN_SYSTEM_RESET, 0, 0, 0);
  } else if (rt_cmdline_get_in(cmdline, "psci-off", v, sizeof(v))) {
    rt_print("crash: PSCI SYSTEM_OFF\n");
    rt_psci_call(PSCI_0_2_FN_SYSTEM_OFF, 0, 0, 0);
  } else {
    return false;
  }
  return true;
}
#define CRASH_MODES "psci-reset | psci-off"
#endif

int payload_main(const char* cmdline) {
  if (!crash(cmdline)) {
    rt_print("crash: no mode given (" CRASH_MODES ")\n");
    return 2;
  }
  rt_print("crash: still running after the crash request\n");
  return 1;
}
