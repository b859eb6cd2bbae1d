// Runtime self-test. Prints one line per check ("ok - <name>", "FAIL - <name>: <details>",
// "skip - <name>: <reason>") and finally "selftest: N passed, M failed"; returns 0 iff nothing
// failed.
//
// Expected command line: "selftest a=1 b=0x10 c=4K flag". Without "a=1" the checks on the real
// command line are skipped (the parser itself is always tested on a built-in string).
// Debug aid: "crash=ud|pf|gp|de" (aarch64: ud|pf) raises that exception after the checks (the
// runtime's trap handler then reports it and exits with code 0x7f).
//
// The CPU, paging and boot-info checks are per architecture: long mode, the PVH start_info and
// the page tables on x86_64; EL1, the MMU through AT S1E1R, and the device tree on aarch64.
#include "rt.h"
#if defined(__aarch64__)
#include "rt_aarch64.h"
#endif

// ---- formatting ----------------------------------------------------------------------------

static void check_fmt(const char* name, const char* got, int ret, const char* expected) {
  const int want = (int)strlen(expected);
  RT_CHECKF(strcmp(got, expected) == 0 && ret == want, name,
            "got \"%s\" (returned %d), expected \"%s\" (%d)", got, ret, expected, want);
}

#define FMT_CASE(expected, ...)                                      \
  do {                                                               \
    char buf_[128];                                                  \
    int ret_ = rt_snprintf(buf_, sizeof(buf_), __VA_ARGS__);         \
    check_fmt("snprintf(" #__VA_ARGS__ ")", buf_, ret_, (expected)); \
  } while (0)

static void test_format(void) {
  const char* volatile null_str = NULL;

  FMT_CASE("hello", "hello");
  FMT_CASE("", "%s", "");
  FMT_CASE("0", "%d", 0);
  FMT_CASE("-42", "%d", -42);
  FMT_CASE("123", "%i", 123);
  FMT_CASE("-2147483648", "%d", (int)(-2147483647 - 1));
  FMT_CASE("4294967295", "%u", 4294967295u);
  FMT_CASE("deadbeef", "%x", 0xdeadbeefu);
  FMT_CASE("DEADBEEF", "%X", 0xdeadbeefu);
  FMT_CASE("   42", "%5d", 42);
  FMT_CASE("42   |", "%-5d|", 42);
  FMT_CASE("00042", "%05d", 42);
  FMT_CASE("-0042", "%05d", -42);
  FMT_CASE("0000beef", "%08x", 0xbeefu);
  FMT_CASE("-9223372036854775808", "%ld", (long)(-9223372036854775807L - 1));
  FMT_CASE("18446744073709551615", "%lu", 18446744073709551615ul);
  FMT_CASE("123456789abcdef", "%llx", 0x123456789abcdefull);
  FMT_CASE("-1", "%lld", -1ll);
  FMT_CASE("12345", "%zu", (size_t)12345);
  FMT_CASE("fff", "%zx", (size_t)0xfff);
  FMT_CASE("44", "%hhu", 300);
  FMT_CASE("-1", "%hd", 65535);
  FMT_CASE("str", "%s", "str");
  FMT_CASE("     abc|", "%8s|", "abc");
  FMT_CASE("abc     |", "%-8s|", "abc");
  FMT_CASE("(null)", "%s", null_str);
  FMT_CASE("abc", "%.3s", "abcdef");
  FMT_CASE("ab", "%.*s", 2, "abcdef");
  FMT_CASE("abc", "%c%c%c", 'a', 'b', 'c');
  FMT_CASE("  x|x  ", "%3c|%-3c", 'x', 'x');
  FMT_CASE("0x1000", "%p", (void*)0x1000);
  FMT_CASE("0x0", "%p", (void*)0);
  FMT_CASE("100%", "%d%%", 100);
  FMT_CASE("   7", "%*d", 4, 7);
  FMT_CASE("7   |", "%*d|", -4, 7);
  FMT_CASE("0x1f", "%#x", 0x1fu);
  FMT_CASE("+5", "%+d", 5);
  FMT_CASE(" 5", "% d", 5);
  FMT_CASE("007", "%.3d", 7);
  FMT_CASE("a=1 b=two c=0x3", "a=%d b=%s c=0x%x", 1, "two", 3u);

  // Truncation: C99 return value, always NUL-terminated.
  char small[5];
  int r = rt_snprintf(small, sizeof(small), "%s", "abcdefgh");
  RT_CHECKF(r == 8 && strcmp(small, "abcd") == 0, "snprintf truncates and terminates",
            "got \"%s\" returned %d", small, r);
  char untouched[4] = {'z', 'z', 'z', '\0'};
  r = rt_snprintf(untouched, 0, "%d", 12345);
  RT_CHECKF(r == 5 && untouched[0] == 'z', "snprintf with n=0 writes nothing",
            "returned %d, buf[0]='%c'", r, untouched[0]);
}

// ---- mem* / str* ---------------------------------------------------------------------------

static void test_mem(void) {
  unsigned char a[64];
  unsigned char b[64];

  memset(a, 0xab, sizeof(a));
  bool ok = true;
  for (size_t i = 0; i < sizeof(a); i++) ok = ok && a[i] == 0xab;
  RT_CHECK(ok, "memset");

  memset(a, 0, sizeof(a));
  memset(a + 3, 0x5a, 17);  // unaligned start and length
  ok = a[2] == 0 && a[3] == 0x5a && a[19] == 0x5a && a[20] == 0;
  RT_CHECK(ok, "memset unaligned");

  for (size_t i = 0; i < sizeof(a); i++) a[i] = (unsigned char)i;
  memset(b, 0, sizeof(b));
  memcpy(b + 1, a + 1, 50);
  ok = b[0] == 0 && b[51] == 0;
  for (size_t i = 1; i <= 50; i++) ok = ok && b[i] == i;
  RT_CHECK(ok, "memcpy");

  RT_CHECK(memcmp(a, a, sizeof(a)) == 0, "memcmp equal");
  b[10] = 200;
  RT_CHECK(memcmp(a, b, 11) < 0 && memcmp(b, a, 11) > 0, "memcmp order");
  RT_CHECK(memcmp(a, b, 0) == 0, "memcmp zero length");

  // memmove forward and backward overlap.
  for (size_t i = 0; i < sizeof(a); i++) a[i] = (unsigned char)i;
  memmove(a + 4, a, 16);
  ok = true;
  for (size_t i = 0; i < 16; i++) ok = ok && a[4 + i] == i;
  RT_CHECK(ok, "memmove overlap dst>src");
  for (size_t i = 0; i < sizeof(a); i++) a[i] = (unsigned char)i;
  memmove(a, a + 4, 16);
  ok = true;
  for (size_t i = 0; i < 16; i++) ok = ok && a[i] == i + 4;
  RT_CHECK(ok, "memmove overlap dst<src");

  RT_CHECK(strlen("") == 0 && strlen("hello") == 5, "strlen");
  RT_CHECK(strnlen("hello", 3) == 3 && strnlen("hi", 10) == 2, "strnlen");
  RT_CHECK(strcmp("abc", "abc") == 0 && strcmp("abc", "abd") < 0 && strcmp("b", "a") > 0 &&
               strcmp("ab", "abc") < 0,
           "strcmp");
  RT_CHECK(strncmp("abcX", "abcY", 3) == 0 && strncmp("abcX", "abcY", 4) < 0 &&
               strncmp("a", "a", 10) == 0,
           "strncmp");
  const char* s = "key=value";
  RT_CHECK(strchr(s, '=') == s + 3 && strchr(s, 'z') == NULL && strchr(s, '\0') == s + 9, "strchr");
}

// ---- command-line parser (built-in string) -------------------------------------------------

// Parses a virtio_mmio.device value "<size>@<base>:<irq>" (QEMU / Linux syntax).
static bool parse_virtio_mmio(const char* v, size_t len, uint64_t* size, uint64_t* base,
                              uint64_t* irq) {
  size_t p = rt_parse_u64_prefix(v, len, size);
  if (p == 0 || p >= len || v[p] != '@') return false;
  p++;
  const size_t q = rt_parse_u64_prefix(v + p, len - p, base);
  if (q == 0 || p + q >= len || v[p + q] != ':') return false;
  p += q + 1;
  return rt_parse_u64(v + p, len - p, irq);
}

// QEMU appends one virtio_mmio.device token per plugged virtio-mmio device; check each parses.
static void check_virtio_token(const char* val, size_t len, void* ctx) {
  (void)ctx;
  uint64_t size = 0, base = 0, irq = 0;
  const bool ok = parse_virtio_mmio(val, len, &size, &base, &irq);
  char name[80];
  rt_snprintf(name, sizeof(name), "cmdline virtio_mmio.device=%.*s parses", (int)len, val);
  RT_CHECKF(ok && size > 0 && base != 0, name, "ok=%d size=0x%lx base=0x%lx irq=%lu", ok, size,
            base, irq);
}

static const char kTestCmdline[] =
    "  console=ttyS0 foo=bar\tbaz= flag num=0x1f size=4K big=2G dec=1234 bad=12q hex=0x "
    "over=18446744073709551616 max=18446744073709551615 overk=0xfffffffffffffffK eq=a=b "
    "foobar=1 virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=4K@0xfeb01000:5 "
    "dup=first dup=second last=end  ";

struct each_ctx {
  int count;
  char vals[4][32];
};

static void collect(const char* val, size_t len, void* ctx) {
  struct each_ctx* c = ctx;
  if (c->count < 4) rt_snprintf(c->vals[c->count], sizeof(c->vals[0]), "%.*s", (int)len, val);
  c->count++;
}

static void test_cmdline_parser(void) {
  const char* cl = kTestCmdline;
  char v[32];

  bool f = rt_cmdline_get_in(cl, "foo", v, sizeof(v));
  RT_CHECKF(f && strcmp(v, "bar") == 0, "cmdline get foo=bar", "found=%d value=\"%s\"", f, v);
  f = rt_cmdline_get_in(cl, "console", v, sizeof(v));
  RT_CHECKF(f && strcmp(v, "ttyS0") == 0, "cmdline get first token (leading spaces)",
            "found=%d value=\"%s\"", f, v);
  f = rt_cmdline_get_in(cl, "last", v, sizeof(v));
  RT_CHECKF(f && strcmp(v, "end") == 0, "cmdline get last token (trailing spaces)",
            "found=%d value=\"%s\"", f, v);
  f = rt_cmdline_get_in(cl, "baz", v, sizeof(v));
  RT_CHECKF(f && v[0] == '\0', "cmdline get empty value (baz=)", "found=%d value=\"%s\"", f, v);
  f = rt_cmdline_get_in(cl, "flag", v, sizeof(v));
  RT_CHECKF(f && v[0] == '\0', "cmdline get bare flag", "found=%d value=\"%s\"", f, v);
  f = rt_cmdline_get_in(cl, "eq", v, sizeof(v));
  RT_CHECKF(f && strcmp(v, "a=b") == 0, "cmdline value containing '='", "found=%d value=\"%s\"", f,
            v);
  f = rt_cmdline_get_in(cl, "dup", v, sizeof(v));
  RT_CHECKF(f && strcmp(v, "first") == 0, "cmdline repeated key returns first",
            "found=%d value=\"%s\"", f, v);

  v[0] = 'x';
  v[1] = '\0';
  f = rt_cmdline_get_in(cl, "missing", v, sizeof(v));
  RT_CHECKF(!f && v[0] == '\0', "cmdline absent key", "found=%d value=\"%s\"", f, v);
  RT_CHECK(!rt_cmdline_get_in(cl, "fo", v, sizeof(v)), "cmdline key prefix does not match");
  RT_CHECK(!rt_cmdline_get_in(cl, "bar", v, sizeof(v)), "cmdline value is not a key");
  RT_CHECK(!rt_cmdline_get_in(cl, "oobar", v, sizeof(v)), "cmdline key suffix does not match");
  RT_CHECK(rt_cmdline_get_in(cl, "foobar", NULL, 0), "cmdline presence test without buffer");
  RT_CHECK(!rt_cmdline_get_in("", "foo", v, sizeof(v)) && !rt_cmdline_get_in(NULL, "foo", v, 4),
           "cmdline empty/NULL string");
  RT_CHECK(!rt_cmdline_get_in(cl, "", v, sizeof(v)), "cmdline empty key");

  char tiny[3];
  f = rt_cmdline_get_in(cl, "console", tiny, sizeof(tiny));
  RT_CHECKF(f && strcmp(tiny, "tt") == 0, "cmdline get truncates to buffer",
            "found=%d value=\"%s\"", f, tiny);

  const char* val = NULL;
  size_t len = 0;
  f = rt_cmdline_find_in(cl, "foo", &val, &len);
  RT_CHECKF(f && len == 3 && memcmp(val, "bar", 3) == 0, "cmdline find returns slice",
            "found=%d len=%zu", f, len);

  struct {
    const char* key;
    bool ok;
    uint64_t want;
  } const nums[] = {
      {"num", true, 0x1f},
      {"size", true, 4096},
      {"big", true, 2ull << 30},
      {"dec", true, 1234},
      {"max", true, 18446744073709551615ull},
      {"bad", false, 0},
      {"hex", false, 0},
      {"over", false, 0},
      {"overk", false, 0},
      {"flag", false, 0},
      {"baz", false, 0},
      {"missing", false, 0},
  };
  for (size_t i = 0; i < RT_ARRAY_SIZE(nums); i++) {
    uint64_t got = 0xdeadull;
    const bool ok = rt_cmdline_get_u64_in(cl, nums[i].key, &got);
    char name[64];
    rt_snprintf(name, sizeof(name), "cmdline get_u64 %s -> %s", nums[i].key,
                nums[i].ok ? "value" : "error");
    if (nums[i].ok) {
      RT_CHECKF(ok && got == nums[i].want, name, "ok=%d got=0x%lx want=0x%lx", ok, got,
                nums[i].want);
    } else {
      RT_CHECKF(!ok && got == 0xdeadull, name, "ok=%d got=0x%lx (out must be untouched)", ok, got);
    }
  }

  uint64_t x = 0;
  RT_CHECK(rt_parse_u64("8m", 2, &x) && x == (8ull << 20), "parse_u64 lowercase suffix");
  RT_CHECK(rt_parse_u64("0X1F", 4, &x) && x == 0x1f, "parse_u64 0X prefix");
  RT_CHECK(!rt_parse_u64("", 0, &x) && !rt_parse_u64("K", 1, &x) && !rt_parse_u64("4KK", 3, &x),
           "parse_u64 rejects empty/suffix-only/double suffix");

  struct each_ctx ec;
  memset(&ec, 0, sizeof(ec));
  int n = rt_cmdline_each_in(cl, "virtio_mmio.device", collect, &ec);
  RT_CHECKF(n == 2 && ec.count == 2 && strcmp(ec.vals[0], "512@0xfeb00e00:12") == 0 &&
                strcmp(ec.vals[1], "4K@0xfeb01000:5") == 0,
            "cmdline each virtio_mmio.device", "n=%d vals=\"%s\",\"%s\"", n, ec.vals[0],
            ec.vals[1]);
  RT_CHECK(rt_cmdline_each_in(cl, "nothere", collect, &ec) == 0, "cmdline each no match");

  // Piecewise parse of a virtio_mmio.device value: <size>@<base>:<irq>.
  uint64_t size = 0, base = 0, irq = 0;
  const char* dev = "4K@0xfeb01000:5";
  bool ok = parse_virtio_mmio(dev, strlen(dev), &size, &base, &irq);
  RT_CHECKF(ok && size == 4096 && base == 0xfeb01000 && irq == 5, "parse virtio_mmio triple",
            "ok=%d size=0x%lx base=0x%lx irq=%lu", ok, size, base, irq);
  dev = "512@0xfeb00e00";
  RT_CHECK(!parse_virtio_mmio(dev, strlen(dev), &size, &base, &irq),
           "parse virtio_mmio rejects missing irq");
}

// ---- command line given by the VMM ---------------------------------------------------------

static void test_cmdline_values(const char* cmdline) {
  rt_cmdline_each("virtio_mmio.device", check_virtio_token, NULL);
  uint64_t a = 0;
  if (!rt_cmdline_get_u64("a", &a) || a != 1) {
    const char* names[] = {"cmdline value a", "cmdline value b", "cmdline value c",
                           "cmdline value flag", "cmdline absent key"};
    for (size_t i = 0; i < RT_ARRAY_SIZE(names); i++) {
      rt_check_skip(names[i], "cmdline lacks a=1 (run with \"selftest a=1 b=0x10 c=4K flag\")");
    }
    return;
  }
  RT_CHECKF(a == 1 && strcmp(cmdline, rt_cmdline()) == 0, "cmdline value a", "a=%lu cmdline=\"%s\"",
            a, cmdline);
  uint64_t b = 0, c = 0;
  bool ok = rt_cmdline_get_u64("b", &b);
  RT_CHECKF(ok && b == 0x10, "cmdline value b", "ok=%d b=0x%lx", ok, b);
  ok = rt_cmdline_get_u64("c", &c);
  RT_CHECKF(ok && c == 4096, "cmdline value c", "ok=%d c=0x%lx", ok, c);
  char v[8] = "x";
  ok = rt_cmdline_get("flag", v, sizeof(v));
  RT_CHECKF(ok && v[0] == '\0', "cmdline value flag", "ok=%d value=\"%s\"", ok, v);
  uint64_t d = 77;
  RT_CHECK(!rt_cmdline_get("nonexistent", NULL, 0) && !rt_cmdline_get_u64("d", &d) && d == 77,
           "cmdline absent key");
}

#if defined(__x86_64__)
// ---- CPU state -----------------------------------------------------------------------------

static void test_cpu(void) {
  const uint64_t cr0 = rt_read_cr0();
  const uint64_t cr4 = rt_read_cr4();
  const uint64_t efer = rt_read_efer();
  RT_CHECKF((cr0 & (X86_CR0_PE | X86_CR0_PG)) == (X86_CR0_PE | X86_CR0_PG), "cpu CR0.PE and CR0.PG",
            "cr0=0x%lx", cr0);
  RT_CHECKF(cr4 & X86_CR4_PAE, "cpu CR4.PAE", "cr4=0x%lx", cr4);
  RT_CHECKF((efer & (X86_EFER_LME | X86_EFER_LMA)) == (X86_EFER_LME | X86_EFER_LMA),
            "cpu EFER.LME and EFER.LMA (long mode)", "efer=0x%lx", efer);
  uint64_t rflags;
  __asm__ volatile("pushfq; popq %0" : "=r"(rflags));
  RT_CHECKF((rflags & (1u << 9)) == 0, "cpu interrupts disabled", "rflags=0x%lx", rflags);

  const uint64_t t0 = rt_ticks();
  for (volatile int i = 0; i < 1000; i++) {
  }
  const uint64_t t1 = rt_ticks();
  RT_CHECKF(t1 > t0, "cpu TSC advances", "t0=%lu t1=%lu", t0, t1);
}

// Walks the live page tables. Returns false if va is unmapped.
static bool translate(uint64_t va, uint64_t* pa, uint64_t* leaf) {
  const uint64_t* table = (const uint64_t*)(uintptr_t)(rt_read_cr3() & X86_PTE_ADDR_MASK);
  for (int level = 3; level >= 0; level--) {
    const uint64_t e = table[(va >> (12 + 9 * level)) & 511];
    if (!(e & X86_PTE_P)) return false;
    if (level == 0 || (level <= 2 && (e & X86_PTE_PS))) {
      const uint64_t page = 1ull << (12 + 9 * level);
      *pa = (e & X86_PTE_ADDR_MASK & ~(page - 1)) | (va & (page - 1));
      *leaf = e;
      return true;
    }
    table = (const uint64_t*)(uintptr_t)(e & X86_PTE_ADDR_MASK);
  }
  return false;
}

static void test_paging(void) {
  uintptr_t img_start, img_end;
  rt_image_range(&img_start, &img_end);
  struct {
    uint64_t va;
    bool uncached;
  } const cases[] = {
      {0x0, false},        {img_start, false},      {img_end - 1, false},
      {0x3ffff000, false}, {BOOT_TIMER_ADDR, true}, {RT_VIRTIO_MMIO_BASE, true},
      {0xfee00000, true},  {0xffffffff, true},
  };
  for (size_t i = 0; i < RT_ARRAY_SIZE(cases); i++) {
    uint64_t pa = 0, leaf = 0;
    const bool mapped = translate(cases[i].va, &pa, &leaf);
    const bool uc = (leaf & X86_PTE_PCD) != 0;
    char name[64];
    rt_snprintf(name, sizeof(name), "paging identity-maps 0x%lx%s", cases[i].va,
                cases[i].uncached ? " uncached" : "");
    RT_CHECKF(mapped && pa == cases[i].va && (leaf & X86_PTE_RW) && uc == cases[i].uncached, name,
              "mapped=%d pa=0x%lx pte=0x%lx", mapped, pa, leaf);
  }
  uint64_t pa, leaf;
  RT_CHECK(!translate(0x100000000ull, &pa, &leaf), "paging leaves 4 GiB and up unmapped");
}

#elif defined(__aarch64__)
// ---- CPU state -----------------------------------------------------------------------------

static void test_cpu(void) {
  const uint64_t el = (RT_READ_SYSREG(CurrentEL) >> 2) & 3;
  RT_CHECKF(el == 1, "cpu runs at EL1", "CurrentEL=%lu", el);
  const uint64_t sctlr = RT_READ_SYSREG(sctlr_el1);
  RT_CHECKF((sctlr & 0x5) == 0x5, "cpu SCTLR_EL1.M and .C (MMU and data cache on)", "sctlr=0x%lx",
            sctlr);
  const uint64_t daif = RT_READ_SYSREG(daif);
  RT_CHECKF((daif & 0x3c0) == 0x3c0, "cpu interrupts masked (DAIF)", "daif=0x%lx", daif);
  const uint64_t t0 = rt_ticks();
  for (volatile int i = 0; i < 1000; i++) {
  }
  const uint64_t t1 = rt_ticks();
  RT_CHECKF(t1 > t0, "cpu virtual counter advances", "t0=%lu t1=%lu", t0, t1);
}

// Translates va with the MMU (AT S1E1R); false if it faults. ATTR is PAR_EL1's memory
// attribute byte (MAIR encoding: 0x00 Device-nGnRnE, 0xff Normal write-back).
static bool translate(uint64_t va, uint64_t* pa, uint64_t* attr) {
  uint64_t par;
  __asm__ volatile("at s1e1r, %1; isb; mrs %0, par_el1" : "=r"(par) : "r"(va) : "memory");
  if (par & 1) return false;
  *pa = (par & 0x0000fffffffff000ull) | (va & 0xfff);
  *attr = par >> 56;
  return true;
}

static void test_paging(void) {
  uintptr_t img_start, img_end;
  rt_image_range(&img_start, &img_end);
  struct {
    uint64_t va;
    bool device;
  } const cases[] = {
      {img_start, false},          {img_end - 1, false},    {RT_IMAGE_BASE + 0x3fff000, false},
      {RT_UART_BASE, true},        {BOOT_TIMER_ADDR, true}, {RT_DEBUG_EXIT_ADDR, true},
      {RT_VIRTIO_MMIO_BASE, true}, {0x7ffff000ull, true},
  };
  for (size_t i = 0; i < RT_ARRAY_SIZE(cases); i++) {
    uint64_t pa = 0, attr = 0;
    const bool mapped = translate(cases[i].va, &pa, &attr);
    char name[64];
    rt_snprintf(name, sizeof(name), "paging identity-maps 0x%lx as %s", cases[i].va,
                cases[i].device ? "device" : "normal memory");
    RT_CHECKF(mapped && pa == cases[i].va && attr == (cases[i].device ? 0x00 : 0xff), name,
              "mapped=%d pa=0x%lx attr=0x%lx", mapped, pa, attr);
  }
  uint64_t pa, attr;
  RT_CHECK(!translate(1ull << 39, &pa, &attr), "paging leaves 512 GiB and up unmapped");
}

#endif

// ---- image sections ------------------------------------------------------------------------

static uint8_t g_bss_probe[4096];
static volatile uint32_t g_data_probe = 0x12345678;

static void test_image(void) {
  bool zero = true;
  for (size_t i = 0; i < sizeof(g_bss_probe); i++) zero = zero && g_bss_probe[i] == 0;
  RT_CHECK(zero, "image .bss is zeroed");
  RT_CHECKF(g_data_probe == 0x12345678, "image .data is loaded", "value=0x%x", g_data_probe);

  uintptr_t bottom, top;
  rt_stack_range(&bottom, &top);
  const uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  RT_CHECKF(sp > bottom && sp < top && top - bottom == 0x10000 && (top & 15) == 0,
            "image running on the 64 KiB boot stack", "fp=0x%lx stack=[0x%lx,0x%lx)", sp, bottom,
            top);

  uintptr_t start, end;
  rt_image_range(&start, &end);
  RT_CHECKF(start == RT_IMAGE_BASE && end > start && (uintptr_t)&g_bss_probe < end, "image range",
            "image=[0x%lx,0x%lx)", start, end);
}

// ---- boot info and RAM ---------------------------------------------------------------------

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
  return a < b + blen && b < a + alen;
}

static bool ram_covers(const struct hvm_memmap_table_entry* map, uint32_t n, uint64_t addr,
                       uint64_t len) {
  for (uint32_t i = 0; i < n; i++) {
    if (map[i].type == HVM_MEMMAP_TYPE_RAM && addr >= map[i].addr &&
        addr + len <= map[i].addr + map[i].size) {
      return true;
    }
  }
  return false;
}

// Whether [a, a + len) overlaps what the VMM handed over in RAM (the runtime has copies, but
// the originals stay intact): the PVH start_info, command line and memory map on x86_64, the
// device tree on aarch64.
static bool overlaps_boot_info(uint64_t a, uint64_t len) {
#if defined(__x86_64__)
  const struct hvm_start_info* si = rt_start_info();
  return overlaps(a, len, (uintptr_t)si, sizeof(*si)) ||
         (si->cmdline_paddr != 0 &&
          overlaps(a, len, si->cmdline_paddr, strlen(rt_cmdline()) + 1)) ||
         overlaps(a, len, si->memmap_paddr,
                  (uint64_t)si->memmap_entries * sizeof(struct hvm_memmap_table_entry));
#else
  const void* fdt = rt_fdt();
  return overlaps(a, len, (uintptr_t)fdt, __builtin_bswap32(((const uint32_t*)fdt)[1]));
#endif
}

static void test_ram_pattern(const struct hvm_memmap_table_entry* map, uint32_t n) {
  uintptr_t img_start, img_end;
  rt_image_range(&img_start, &img_end);
  const uint64_t win = 2ull << 20;

  // First 2 MiB-aligned 2 MiB window above the image (and at or above 2 MiB), in its first
  // GiB, inside RAM and clear of the boot info.
  uint64_t base = 0;
  const uint64_t from = (img_end + win - 1) & ~(win - 1);
  for (uint64_t cand = from > win ? from : win; cand < from + (1ull << 30); cand += win) {
    if (!ram_covers(map, n, cand, win) || overlaps_boot_info(cand, win)) continue;
    base = cand;
    break;
  }
  if (base == 0) {
    RT_CHECKF(false, "ram pattern", "no free 2 MiB RAM window in the GiB above the image");
    return;
  }

  // Sparse pattern: one u64 in every 512-byte block (its offset inside the block rotating), i.e.
  // 8 words in every 4 KiB page of the window. A dense 2 MiB pattern takes seconds on hosts that
  // emulate the guest (e.g. PVM runs this payload at a few million instructions per second).
  volatile uint64_t* p = (volatile uint64_t*)(uintptr_t)base;
  const size_t blocks = win / 512;
  const uint64_t seeds[2] = {0x5555aaaa5555aaaaull, 0x0123456789abcdefull};
  for (int pass = 0; pass < 2; pass++) {
    for (size_t k = 0; k < blocks; k++) {
      const size_t i = k * 64 + (k & 63);
      p[i] = (base + i * 8) * 0x9e3779b97f4a7c15ull ^ seeds[pass];
    }
    size_t bad = SIZE_MAX;
    for (size_t k = 0; k < blocks && bad == SIZE_MAX; k++) {
      const size_t i = k * 64 + (k & 63);
      if (p[i] != ((base + i * 8) * 0x9e3779b97f4a7c15ull ^ seeds[pass])) bad = i;
    }
    char name[64];
    rt_snprintf(name, sizeof(name), "ram pattern pass %d at [0x%lx,0x%lx)", pass + 1, base,
                base + win);
    RT_CHECKF(bad == SIZE_MAX, name, "mismatch at 0x%lx: 0x%lx", base + bad * 8,
              bad != SIZE_MAX ? p[bad] : 0);
  }
}

static void test_boot_info(void) {
#if defined(__x86_64__)
  const struct hvm_start_info* si = rt_start_info();
  if (!RT_CHECKF(rt_boot_ok() && si != NULL && si->magic == HVM_START_MAGIC_VALUE,
                 "start_info magic", "si=%p magic=0x%x", (const void*)si,
                 si != NULL ? si->magic : 0)) {
    return;
  }
  rt_printf("start_info: at %p version=%u flags=0x%x cmdline=0x%lx memmap=0x%lx entries=%u\n",
            (const void*)si, si->version, si->flags, si->cmdline_paddr, si->memmap_paddr,
            si->memmap_entries);
  RT_CHECKF(si->version >= 1, "start_info version >= 1 (has memmap)", "version=%u", si->version);
#else
  const void* fdt = rt_fdt();
  if (!RT_CHECKF(rt_boot_ok() && fdt != NULL, "device tree header", "fdt=%p", fdt)) return;
  const uint32_t size = __builtin_bswap32(((const uint32_t*)fdt)[1]);
  rt_printf("fdt: at %p, %u bytes\n", fdt, size);
  RT_CHECKF(((uintptr_t)fdt & 7) == 0 && size <= (2u << 20),
            "device tree 8-byte aligned, at most 2 MiB", "fdt=%p size=%u", fdt, size);
#endif

  uint32_t n = 0;
  const struct hvm_memmap_table_entry* map = rt_memmap(&n);
  for (uint32_t i = 0; i < n; i++) {
    rt_printf("memmap: addr=0x%lx size=0x%lx type=%u\n", map[i].addr, map[i].size, map[i].type);
  }
  bool any_ram = false;
  for (uint32_t i = 0; i < n; i++) any_ram = any_ram || map[i].type == HVM_MEMMAP_TYPE_RAM;
  RT_CHECKF(n > 0 && any_ram, "memmap has RAM", "entries=%u", n);

  uintptr_t start, end;
  rt_image_range(&start, &end);
  RT_CHECKF(ram_covers(map, n, start, end - start), "memmap RAM covers the payload image",
            "image=[0x%lx,0x%lx)", start, end);

  test_ram_pattern(map, n);
}

// ---- optional crash ------------------------------------------------------------------------

static void maybe_crash(void) {
  char what[8];
  if (!rt_cmdline_get("crash", what, sizeof(what))) return;
  rt_printf("selftest: raising %s as requested\n", what);
#if defined(__aarch64__)
  if (strcmp(what, "ud") == 0) {
    __asm__ volatile("udf #0");
  } else if (strcmp(what, "pf") == 0) {
    (void)*(volatile uint64_t*)(uintptr_t)(1ull << 40);  // above the identity map
  }
#else
  if (strcmp(what, "ud") == 0) {
    __asm__ volatile("ud2");
  } else if (strcmp(what, "pf") == 0) {
    (void)*(volatile uint64_t*)(uintptr_t)0x100000000ull;  // above the identity map
  } else if (strcmp(what, "gp") == 0) {
    (void)*(volatile uint64_t*)(uintptr_t)0x8000000000000000ull;  // non-canonical
  } else if (strcmp(what, "de") == 0) {
    volatile unsigned num = 100, zero = 0;
    rt_printf("%u\n", num / zero);
  }
#endif
}

int payload_main(const char* cmdline) {
  rt_printf("edgevisor selftest payload\n");
  rt_printf("cmdline: %s\n", cmdline);
  test_format();
  test_mem();
  test_cmdline_parser();
  test_cmdline_values(cmdline);
  test_cpu();
  test_paging();
  test_image();
  test_boot_info();
  maybe_crash();
  if (rt_checks_skipped() > 0) rt_printf("selftest: %u skipped\n", rt_checks_skipped());
  return rt_check_summary("selftest");
}
