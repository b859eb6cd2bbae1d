// Pass/fail bookkeeping for self-test payloads.
#include "rt.h"

static unsigned g_passed;
static unsigned g_failed;
static unsigned g_skipped;

bool rt_check_report(bool ok, const char* name, const char* fail_fmt, ...) {
  if (ok) {
    g_passed++;
    rt_printf("ok - %s\n", name);
    return true;
  }
  g_failed++;
  rt_printf("FAIL - %s: ", name);
  va_list ap;
  va_start(ap, fail_fmt);
  rt_vprintf(fail_fmt, ap);
  va_end(ap);
  rt_putc('\n');
  return false;
}

void rt_check_skip(const char* name, const char* reason_fmt, ...) {
  g_skipped++;
  rt_printf("skip - %s: ", name);
  va_list ap;
  va_start(ap, reason_fmt);
  rt_vprintf(reason_fmt, ap);
  va_end(ap);
  rt_putc('\n');
}

int rt_check_summary(const char* prefix) {
  rt_printf("%s: %u passed, %u failed\n", prefix, g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}

unsigned rt_checks_passed(void) { return g_passed; }
unsigned rt_checks_failed(void) { return g_failed; }
unsigned rt_checks_skipped(void) { return g_skipped; }
