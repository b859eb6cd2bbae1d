// The density benchmark's guest (tools/density): boots (the runtime has written the boot timer
// by the time payload_main runs), prints one ready line, then waits for interrupts forever with
// interrupts enabled, as an idle OS does. Nothing in the machine is programmed to interrupt it,
// so a VMM that costs nothing while its guest idles never runs again after the ready line.
// Only the runtime's exception vectors are installed: an interrupt that does arrive finds no
// gate, and the guest reports a fatal exception and exits, which tools/density reports as that
// VM's failure. (Installing 224 do-nothing gates would cost 3.3 ms of vCPU time per boot on a
// software-virtualized host, a third of the whole boot.)
//
// The ready line is "idle: ready", which tools/density waits for on the console.
//
// x86_64 only, for the VMM's tests: `halt_after=MS` spins that long after the ready line without
// any exit to the VMM, then halts with interrupts disabled, silently: edgevisor must still notice
// (its checks back off after the guest's last exit, and must not stop too early).
#include "rt.h"

int payload_main(const char* cmdline) {
  (void)cmdline;
#if defined(__x86_64__)
  uint64_t halt_after_ms = 0;
  const bool halt = rt_cmdline_get_u64("halt_after", &halt_after_ms);
#endif
  rt_print("idle: ready\n");
#if defined(__x86_64__)
  if (halt) {
    const uint64_t end = rt_ticks() + rt_ms_to_ticks(halt_after_ms);
    while (rt_ticks() < end) __asm__ volatile("pause");
    for (;;) __asm__ volatile("cli; hlt" ::: "memory");
  }
#endif
  for (;;) {
#if defined(__x86_64__)
    __asm__ volatile("sti; hlt" ::: "memory");
#elif defined(__aarch64__)
    // IRQs stay masked (the runtime's vectors report any exception as fatal); WFI still sleeps
    // until an interrupt is pending, which with nothing programmed never happens.
    __asm__ volatile("wfi" ::: "memory");
#endif
  }
}
