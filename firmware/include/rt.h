// edgevisor guest payload runtime: the API a payload (firmware/payloads/*.c) programs against.
//
// A payload defines `int payload_main(const char *cmdline)`. The arch entry code sets up the CPU
// (x86_64: long mode; aarch64: the MMU with an identity map), a stack and zeroed .bss, then calls
// runtime_start(), which captures the boot info, writes the boot timer, initialises the console
// and calls payload_main(); its return value is passed to rt_exit(). Everything runs
// single-threaded with interrupts disabled.
#ifndef EDGEVISOR_FW_RT_H
#define EDGEVISOR_FW_RT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rt_hvm.h"
#include "rt_mmio.h"
#include "rt_platform.h"

#if defined(__x86_64__)
#include "rt_x86_64.h"
#elif defined(__aarch64__)
#include "rt_aarch64.h"
#endif

#define RT_NORETURN __attribute__((noreturn))
#define RT_PRINTF(fmt_idx, first_arg) __attribute__((format(printf, fmt_idx, first_arg)))
#define RT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

// Maximum command line the runtime keeps (longer ones are truncated), and memmap entries kept.
#define RT_CMDLINE_MAX 4096
#define RT_MEMMAP_MAX 128

// ---- Entry points -------------------------------------------------------------------------

// Defined by each payload. `cmdline` is the same string as rt_cmdline() (never NULL).
int payload_main(const char* cmdline);

// Called by the arch entry code with the boot-info pointer: x86_64 the struct hvm_start_info
// from EBX (PVH), aarch64 the flattened device tree from x0 (the Linux arm64 boot protocol).
// Never returns.
RT_NORETURN void runtime_start(const void* boot_info);

// Exit through the debug-exit device (VMM exit status (code << 1) | 1). If no such device is
// present, stops the way rt_halt() does.
RT_NORETURN void rt_exit(int code);
// Stops for good. x86_64: halts forever with interrupts disabled, which edgevisor treats as a
// clean stop. aarch64: PSCI SYSTEM_OFF (edgevisor exits 0).
RT_NORETURN void rt_halt(void);

// ---- Console -------------------------------------------------------------------------------

void rt_console_init(void);
void rt_putc(char c);  // no '\n' -> "\r\n" translation
void rt_write(const char* s, size_t len);
void rt_print(const char* s);  // writes s as-is (no newline appended)

// ---- Formatting ----------------------------------------------------------------------------
// Conversions: %s %c %d %i %u %x %X %p %%; flags '-', '0', '+', ' ', '#'; width and precision
// (digits or '*'); length modifiers hh h l ll z j t. %p prints 0x<hex> (0x0 for NULL), %s
// prints "(null)" for NULL. Unknown conversions are printed verbatim.

typedef void (*rt_emit_fn)(char c, void* ctx);
// Core formatter: calls emit for each output character; returns the number of characters.
int rt_vformat(rt_emit_fn emit, void* ctx, const char* fmt, va_list ap);

int rt_printf(const char* fmt, ...) RT_PRINTF(1, 2);
int rt_vprintf(const char* fmt, va_list ap);
// C99 semantics: writes at most n-1 characters plus a NUL (if n > 0) and returns the length the
// full output would have had.
int rt_snprintf(char* buf, size_t n, const char* fmt, ...) RT_PRINTF(3, 4);
int rt_vsnprintf(char* buf, size_t n, const char* fmt, va_list ap);

// ---- Memory and strings (also the symbols gcc may emit calls to) -------------------------

#include "libc/string.h"  // memset ... memchr, strlen ... strrchr: lib/string.c

// ---- Command line --------------------------------------------------------------------------
// The command line is a list of whitespace-separated tokens (no quoting). A token matches key
// when it is exactly `key` (bare flag, empty value) or starts with `key=` (value = the rest of
// the token, which may itself contain '='). Lookups return the FIRST matching token.

const char* rt_cmdline(void);  // never NULL; "" if the VMM passed none

// Copies the value of `key` into out (NUL-terminated, truncated to outlen-1 characters). out may
// be NULL / outlen 0 to test for presence only. Returns false (and sets out to "") if absent.
bool rt_cmdline_get(const char* key, char* out, size_t outlen);
// Parses the value with rt_parse_u64(). False if absent, bare, or not a valid number.
bool rt_cmdline_get_u64(const char* key, uint64_t* out);
// Calls fn(value, value_len, ctx) for every token matching key, in order (value is NOT
// NUL-terminated). Returns the number of matches.
int rt_cmdline_each(const char* key, void (*fn)(const char* val, size_t len, void* ctx), void* ctx);

// The same operations on an explicit command-line string.
bool rt_cmdline_find_in(const char* cmdline, const char* key, const char** val, size_t* len);
bool rt_cmdline_get_in(const char* cmdline, const char* key, char* out, size_t outlen);
bool rt_cmdline_get_u64_in(const char* cmdline, const char* key, uint64_t* out);
int rt_cmdline_each_in(const char* cmdline, const char* key,
                       void (*fn)(const char* val, size_t len, void* ctx), void* ctx);

// Number parsing: decimal or 0x/0X hex, optionally followed by one K/M/G (or k/m/g) binary
// suffix. rt_parse_u64_prefix parses the longest valid prefix of s[0..len) and returns the number
// of characters consumed (0 on failure: no digits or overflow), so that compound values such as
// "4K@0xfeb00e00:12" can be parsed piecewise. rt_parse_u64 requires the whole s[0..len).
size_t rt_parse_u64_prefix(const char* s, size_t len, uint64_t* out);
bool rt_parse_u64(const char* s, size_t len, uint64_t* out);

// ---- Boot information ----------------------------------------------------------------------

// True if the boot info was valid (x86_64: hvm_start_info with the right magic; aarch64: a
// device tree that passes fdt_check_header).
bool rt_boot_ok(void);
// A private copy of the memory map taken at boot, in the PVH entry layout whatever the
// architecture (x86_64: empty if start_info version < 1; aarch64: the /memory nodes' ranges,
// all HVM_MEMMAP_TYPE_RAM).
const struct hvm_memmap_table_entry* rt_memmap(uint32_t* count);
// The end of the highest RAM range in the memory map (0 if it has none).
uint64_t rt_ram_top(void);

// A device the platform describes (aarch64: a device-tree node): its first MMIO window and its
// first interrupt (the GIC INTID: 32 + n for SPI n).
struct rt_device {
  uint64_t base;
  uint64_t size;
  uint32_t irq;
};
// Stores up to `max` enabled devices compatible with `compatible`, in device-tree order, and
// returns how many there are (possibly more than max). Returns -1 where the platform has no
// device description (x86_64: devices come from the command line instead).
int rt_find_devices(const char* compatible, struct rt_device* out, int max);
// Physical extent of the loaded image including .bss and the boot stack: [start, end).
void rt_image_range(uintptr_t* start, uintptr_t* end);
// The boot stack: [bottom, top).
void rt_stack_range(uintptr_t* bottom, uintptr_t* top);

// ---- Self-checks ---------------------------------------------------------------------------
// Each check prints "ok - <name>" or "FAIL - <name>: <details>"; skips print
// "skip - <name>: <reason>". rt_check_summary() prints "<prefix>: N passed, M failed" and
// returns 0 if nothing failed, else 1.

bool rt_check_report(bool ok, const char* name, const char* fail_fmt, ...) RT_PRINTF(3, 4);
void rt_check_skip(const char* name, const char* reason_fmt, ...) RT_PRINTF(2, 3);
int rt_check_summary(const char* prefix);
unsigned rt_checks_passed(void);
unsigned rt_checks_failed(void);
unsigned rt_checks_skipped(void);

#ifdef __FILE_NAME__
#define RT_FILE_NAME __FILE_NAME__
#else
#define RT_FILE_NAME __FILE__
#endif

// RT_CHECK(cond, name): on failure the details are the condition text and its location.
#define RT_CHECK(cond, name) \
  rt_check_report(!!(cond), (name), "%s (%s:%d)", #cond, RT_FILE_NAME, __LINE__)
// RT_CHECKF(cond, name, fmt, ...): printf-style failure details.
#define RT_CHECKF(cond, name, ...) rt_check_report(!!(cond), (name), __VA_ARGS__)

// ---- Time ----------------------------------------------------------------------------------
// rt_ticks() (arch header: x86_64 the TSC, aarch64 the virtual counter CNTVCT_EL0) counts at
// rt_ticks_hz() (x86_64: from CPUID, cached; aarch64: CNTFRQ_EL0).
uint64_t rt_ticks_hz(void);
static inline uint64_t rt_ms_to_ticks(uint64_t ms) { return rt_ticks_hz() / 1000 * ms; }

// ---- Architecture hooks (implemented in firmware/<arch>/) ----------------------------------

void rt_arch_init(void);  // exception handlers etc.; runs before anything touches boot info
// Copies the command line (NUL-terminated, truncated to cmdline_max - 1) and up to map_max
// memory-map entries out of the boot info. Returns false (and leaves both empty) if the boot
// info is not valid.
bool rt_arch_boot_info(const void* boot_info, char* cmdline, size_t cmdline_max,
                       struct hvm_memmap_table_entry* map, uint32_t map_max, uint32_t* map_count);

#endif  // EDGEVISOR_FW_RT_H
