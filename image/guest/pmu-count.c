// The guest's PMU at work (arm64 bundled guest): counts CPU cycles, and instructions where the
// PMU has them, over a short busy loop through perf_event_open, and prints
// "EV_PMU_OK cycles=N instructions=M" (M "-" when that counter is missing), or EV_PMU_FAIL.
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_counter(uint64_t config) {
  struct perf_event_attr a;
  memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  a.type = PERF_TYPE_HARDWARE;
  a.config = config;
  a.disabled = 1;
  a.exclude_hv = 1;
  return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

int main(void) {
  const int cycles = open_counter(PERF_COUNT_HW_CPU_CYCLES);
  const int insns = open_counter(PERF_COUNT_HW_INSTRUCTIONS);
  if (cycles < 0) {
    perror("EV_PMU_FAIL perf_event_open(cycles)");
    return 1;
  }
  ioctl(cycles, PERF_EVENT_IOC_ENABLE, 0);
  if (insns >= 0) ioctl(insns, PERF_EVENT_IOC_ENABLE, 0);
  volatile uint64_t sum = 0;
  for (uint64_t i = 0; i < 1000000; i++) sum += i;
  ioctl(cycles, PERF_EVENT_IOC_DISABLE, 0);
  if (insns >= 0) ioctl(insns, PERF_EVENT_IOC_DISABLE, 0);
  uint64_t c = 0, n = 0;
  if (read(cycles, &c, sizeof(c)) != sizeof(c) || c == 0) {
    printf("EV_PMU_FAIL cycles=%llu\n", (unsigned long long)c);
    return 1;
  }
  if (insns >= 0 && read(insns, &n, sizeof(n)) == sizeof(n)) {
    printf("EV_PMU_OK cycles=%llu instructions=%llu\n", (unsigned long long)c,
           (unsigned long long)n);
  } else {
    printf("EV_PMU_OK cycles=%llu instructions=-\n", (unsigned long long)c);
  }
  return 0;
}
