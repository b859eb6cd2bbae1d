// Kernel-style command line parsing: whitespace-separated `key`, `key=value` tokens.
#include "rt.h"

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Iterates tokens matching key. For each, calls fn (if any); stops at the first match when
// `first` is set. Returns the number of matches; *val/*len describe the first match.
static int scan(const char* cmdline, const char* key, bool first, const char** val, size_t* len,
                void (*fn)(const char*, size_t, void*), void* ctx) {
  if (cmdline == NULL || key == NULL) return 0;
  const size_t klen = strlen(key);
  if (klen == 0) return 0;
  int matches = 0;
  const char* p = cmdline;
  while (*p != '\0') {
    while (is_space(*p)) p++;
    if (*p == '\0') break;
    const char* tok = p;
    while (*p != '\0' && !is_space(*p)) p++;
    const size_t tlen = (size_t)(p - tok);
    if (tlen < klen || memcmp(tok, key, klen) != 0) continue;
    const char* v;
    size_t vlen;
    if (tlen == klen) {
      v = tok + tlen;  // bare flag: empty value
      vlen = 0;
    } else if (tok[klen] == '=') {
      v = tok + klen + 1;
      vlen = tlen - klen - 1;
    } else {
      continue;  // a longer key that merely starts with `key`
    }
    if (matches == 0) {
      if (val != NULL) *val = v;
      if (len != NULL) *len = vlen;
    }
    matches++;
    if (fn != NULL) fn(v, vlen, ctx);
    if (first) break;
  }
  return matches;
}

bool rt_cmdline_find_in(const char* cmdline, const char* key, const char** val, size_t* len) {
  return scan(cmdline, key, true, val, len, NULL, NULL) > 0;
}

bool rt_cmdline_get_in(const char* cmdline, const char* key, char* out, size_t outlen) {
  const char* v = NULL;
  size_t vlen = 0;
  const bool found = rt_cmdline_find_in(cmdline, key, &v, &vlen);
  if (out != NULL && outlen > 0) {
    if (!found) vlen = 0;
    if (vlen > outlen - 1) vlen = outlen - 1;
    if (vlen > 0) memcpy(out, v, vlen);
    out[vlen] = '\0';
  }
  return found;
}

bool rt_cmdline_get_u64_in(const char* cmdline, const char* key, uint64_t* out) {
  const char* v = NULL;
  size_t vlen = 0;
  if (!rt_cmdline_find_in(cmdline, key, &v, &vlen)) return false;
  uint64_t x;
  if (!rt_parse_u64(v, vlen, &x)) return false;
  if (out != NULL) *out = x;
  return true;
}

int rt_cmdline_each_in(const char* cmdline, const char* key,
                       void (*fn)(const char* val, size_t len, void* ctx), void* ctx) {
  return scan(cmdline, key, false, NULL, NULL, fn, ctx);
}

bool rt_cmdline_get(const char* key, char* out, size_t outlen) {
  return rt_cmdline_get_in(rt_cmdline(), key, out, outlen);
}

bool rt_cmdline_get_u64(const char* key, uint64_t* out) {
  return rt_cmdline_get_u64_in(rt_cmdline(), key, out);
}

int rt_cmdline_each(const char* key, void (*fn)(const char* val, size_t len, void* ctx),
                    void* ctx) {
  return rt_cmdline_each_in(rt_cmdline(), key, fn, ctx);
}

static int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

size_t rt_parse_u64_prefix(const char* s, size_t len, uint64_t* out) {
  if (s == NULL) return 0;
  size_t i = 0;
  unsigned base = 10;
  if (len >= 3 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && digit_value(s[2]) >= 0) {
    base = 16;
    i = 2;
  }
  const size_t first_digit = i;
  uint64_t v = 0;
  for (; i < len; i++) {
    const int d = digit_value(s[i]);
    if (d < 0 || (unsigned)d >= base) break;
    if (v > (UINT64_MAX - (uint64_t)d) / base) return 0;  // overflow
    v = v * base + (uint64_t)d;
  }
  if (i == first_digit) return 0;
  if (i < len) {
    unsigned shift = 0;
    switch (s[i]) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      default:
        break;
    }
    if (shift != 0) {
      if (v > (UINT64_MAX >> shift)) return 0;  // overflow
      v <<= shift;
      i++;
    }
  }
  if (out != NULL) *out = v;
  return i;
}

bool rt_parse_u64(const char* s, size_t len, uint64_t* out) {
  uint64_t v;
  if (len == 0 || rt_parse_u64_prefix(s, len, &v) != len) return false;
  if (out != NULL) *out = v;
  return true;
}
