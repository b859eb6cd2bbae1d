// printf-family formatting shared by rt_printf (console) and rt_snprintf (buffer).
#include "rt.h"

struct fmt_spec {
  bool left;   // '-'
  bool zero;   // '0'
  bool plus;   // '+'
  bool space;  // ' '
  bool alt;    // '#'
  int width;   // -1: none
  int prec;    // -1: none
};

struct fmt_out {
  rt_emit_fn emit;
  void* ctx;
  int count;
};

static void out_char(struct fmt_out* o, char c) {
  o->emit(c, o->ctx);
  o->count++;
}

static void out_repeat(struct fmt_out* o, char c, int n) {
  for (int i = 0; i < n; i++) out_char(o, c);
}

static void out_str(struct fmt_out* o, const struct fmt_spec* sp, const char* s) {
  if (s == NULL) s = "(null)";
  int len = 0;
  while (s[len] != '\0' && (sp->prec < 0 || len < sp->prec)) len++;
  int pad = sp->width > len ? sp->width - len : 0;
  if (!sp->left) out_repeat(o, ' ', pad);
  for (int i = 0; i < len; i++) out_char(o, s[i]);
  if (sp->left) out_repeat(o, ' ', pad);
}

// Formats an integer: magnitude `v`, `neg` for a negative signed value, `base` 10 or 16.
static void out_num(struct fmt_out* o, const struct fmt_spec* sp, uint64_t v, bool neg,
                    bool is_signed, unsigned base, bool upper, bool force_prefix) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char buf[24];
  int n = 0;
  if (!(v == 0 && sp->prec == 0)) {  // C: zero with precision 0 prints no digits
    do {
      buf[n++] = digits[v % base];
      v /= base;
    } while (v != 0);
  }

  char prefix[3];
  int plen = 0;
  if (is_signed) {
    if (neg) {
      prefix[plen++] = '-';
    } else if (sp->plus) {
      prefix[plen++] = '+';
    } else if (sp->space) {
      prefix[plen++] = ' ';
    }
  }
  if (base == 16 && (force_prefix || (sp->alt && n > 0 && !(n == 1 && buf[0] == '0')))) {
    prefix[plen++] = '0';
    prefix[plen++] = upper ? 'X' : 'x';
  }

  int zeros = sp->prec > n ? sp->prec - n : 0;
  int total = plen + zeros + n;
  int pad = sp->width > total ? sp->width - total : 0;
  if (sp->zero && !sp->left && sp->prec < 0) {
    zeros += pad;
    pad = 0;
  }

  if (!sp->left) out_repeat(o, ' ', pad);
  for (int i = 0; i < plen; i++) out_char(o, prefix[i]);
  out_repeat(o, '0', zeros);
  while (n > 0) out_char(o, buf[--n]);
  if (sp->left) out_repeat(o, ' ', pad);
}

enum fmt_len { LEN_DEFAULT, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_Z, LEN_J, LEN_T };

static int64_t fetch_signed(va_list* ap, enum fmt_len len) {
  switch (len) {
    case LEN_HH:
      return (signed char)va_arg(*ap, int);
    case LEN_H:
      return (short)va_arg(*ap, int);
    case LEN_L:
      return va_arg(*ap, long);
    case LEN_LL:
      return va_arg(*ap, long long);
    case LEN_Z:
    case LEN_T:
      return va_arg(*ap, ptrdiff_t);
    case LEN_J:
      return va_arg(*ap, intmax_t);
    default:
      return va_arg(*ap, int);
  }
}

static uint64_t fetch_unsigned(va_list* ap, enum fmt_len len) {
  switch (len) {
    case LEN_HH:
      return (unsigned char)va_arg(*ap, unsigned int);
    case LEN_H:
      return (unsigned short)va_arg(*ap, unsigned int);
    case LEN_L:
      return va_arg(*ap, unsigned long);
    case LEN_LL:
      return va_arg(*ap, unsigned long long);
    case LEN_Z:
      return va_arg(*ap, size_t);
    case LEN_T:
      return (uint64_t)va_arg(*ap, ptrdiff_t);
    case LEN_J:
      return va_arg(*ap, uintmax_t);
    default:
      return va_arg(*ap, unsigned int);
  }
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

int rt_vformat(rt_emit_fn emit, void* ctx, const char* fmt, va_list ap_in) {
  struct fmt_out o = {emit, ctx, 0};
  // va_list is an array type on x86_64: take a real copy so it can be passed by pointer.
  va_list ap;
  va_copy(ap, ap_in);

  for (const char* p = fmt; *p != '\0'; p++) {
    if (*p != '%') {
      out_char(&o, *p);
      continue;
    }
    const char* start = p++;
    struct fmt_spec sp = {false, false, false, false, false, -1, -1};

    for (;; p++) {
      if (*p == '-') {
        sp.left = true;
      } else if (*p == '0') {
        sp.zero = true;
      } else if (*p == '+') {
        sp.plus = true;
      } else if (*p == ' ') {
        sp.space = true;
      } else if (*p == '#') {
        sp.alt = true;
      } else {
        break;
      }
    }
    if (*p == '*') {
      sp.width = va_arg(ap, int);
      if (sp.width < 0) {
        sp.left = true;
        sp.width = -sp.width;
      }
      p++;
    } else {
      while (is_digit(*p)) {
        sp.width = (sp.width < 0 ? 0 : sp.width) * 10 + (*p - '0');
        p++;
      }
    }
    if (*p == '.') {
      p++;
      sp.prec = 0;
      if (*p == '*') {
        sp.prec = va_arg(ap, int);
        if (sp.prec < 0) sp.prec = -1;
        p++;
      } else {
        while (is_digit(*p)) {
          sp.prec = sp.prec * 10 + (*p - '0');
          p++;
        }
      }
    }

    enum fmt_len len = LEN_DEFAULT;
    if (*p == 'h') {
      len = LEN_H;
      if (*++p == 'h') {
        len = LEN_HH;
        p++;
      }
    } else if (*p == 'l') {
      len = LEN_L;
      if (*++p == 'l') {
        len = LEN_LL;
        p++;
      }
    } else if (*p == 'z') {
      len = LEN_Z;
      p++;
    } else if (*p == 'j') {
      len = LEN_J;
      p++;
    } else if (*p == 't') {
      len = LEN_T;
      p++;
    }

    switch (*p) {
      case 'd':
      case 'i': {
        int64_t v = fetch_signed(&ap, len);
        uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        out_num(&o, &sp, mag, v < 0, true, 10, false, false);
        break;
      }
      case 'u':
        out_num(&o, &sp, fetch_unsigned(&ap, len), false, false, 10, false, false);
        break;
      case 'x':
      case 'X':
        out_num(&o, &sp, fetch_unsigned(&ap, len), false, false, 16, *p == 'X', false);
        break;
      case 'p':
        out_num(&o, &sp, (uintptr_t)va_arg(ap, void*), false, false, 16, false, true);
        break;
      case 's':
        out_str(&o, &sp, va_arg(ap, const char*));
        break;
      case 'c': {
        char c[2] = {(char)va_arg(ap, int), '\0'};
        int pad = sp.width > 1 ? sp.width - 1 : 0;
        if (!sp.left) out_repeat(&o, ' ', pad);
        out_char(&o, c[0]);
        if (sp.left) out_repeat(&o, ' ', pad);
        break;
      }
      case '%':
        out_char(&o, '%');
        break;
      default:
        // Unknown conversion (or the string ended): print the directive verbatim.
        for (const char* q = start; q <= p && *q != '\0'; q++) out_char(&o, *q);
        if (*p == '\0') p--;  // let the loop see the terminator
        break;
    }
  }
  va_end(ap);
  return o.count;
}

// ---- rt_snprintf ----

struct buf_ctx {
  char* buf;
  size_t size;
  size_t pos;
};

static void buf_emit(char c, void* ctx) {
  struct buf_ctx* b = ctx;
  if (b->pos + 1 < b->size) b->buf[b->pos] = c;
  b->pos++;
}

int rt_vsnprintf(char* buf, size_t n, const char* fmt, va_list ap) {
  struct buf_ctx b = {buf, n, 0};
  int count = rt_vformat(buf_emit, &b, fmt, ap);
  if (n > 0) buf[b.pos < n ? b.pos : n - 1] = '\0';
  return count;
}

int rt_snprintf(char* buf, size_t n, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = rt_vsnprintf(buf, n, fmt, ap);
  va_end(ap);
  return r;
}

// ---- rt_printf (buffered per call, so each call reaches the console in one burst) ----

struct con_ctx {
  char buf[128];
  size_t pos;
};

static void con_emit(char c, void* ctx) {
  struct con_ctx* k = ctx;
  k->buf[k->pos++] = c;
  if (k->pos == sizeof(k->buf)) {
    rt_write(k->buf, k->pos);
    k->pos = 0;
  }
}

int rt_vprintf(const char* fmt, va_list ap) {
  struct con_ctx k;
  k.pos = 0;
  int count = rt_vformat(con_emit, &k, fmt, ap);
  if (k.pos > 0) rt_write(k.buf, k.pos);
  return count;
}

int rt_printf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = rt_vprintf(fmt, ap);
  va_end(ap);
  return r;
}
