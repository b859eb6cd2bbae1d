// mem*/str* for the freestanding runtime. gcc may emit calls to memset/memcpy/memmove/memcmp on
// its own, so these must exist with the standard names. The build passes
// -fno-tree-loop-distribute-patterns so the loops below are not turned back into calls to
// themselves.
#include "rt.h"

void* memset(void* dst, int c, size_t n) {
  unsigned char* d = dst;
  const unsigned char b = (unsigned char)c;
  while (n > 0 && ((uintptr_t)d & 7) != 0) {
    *d++ = b;
    n--;
  }
  const uint64_t w = b * 0x0101010101010101ull;
  for (; n >= 8; n -= 8, d += 8) *(uint64_t*)(void*)d = w;
  while (n-- > 0) *d++ = b;
  return dst;
}

void* memcpy(void* restrict dst, const void* restrict src, size_t n) {
  unsigned char* d = dst;
  const unsigned char* s = src;
  if ((((uintptr_t)d ^ (uintptr_t)s) & 7) == 0) {
    while (n > 0 && ((uintptr_t)d & 7) != 0) {
      *d++ = *s++;
      n--;
    }
    for (; n >= 8; n -= 8, d += 8, s += 8) {
      *(uint64_t*)(void*)d = *(const uint64_t*)(const void*)s;
    }
  }
  while (n-- > 0) *d++ = *s++;
  return dst;
}

void* memmove(void* dst, const void* src, size_t n) {
  unsigned char* d = dst;
  const unsigned char* s = src;
  if (d == s || n == 0) return dst;
  if (d < s || d >= s + n) {
    while (n-- > 0) *d++ = *s++;
  } else {
    d += n;
    s += n;
    while (n-- > 0) *--d = *--s;
  }
  return dst;
}

int memcmp(const void* a, const void* b, size_t n) {
  const unsigned char* x = a;
  const unsigned char* y = b;
  for (size_t i = 0; i < n; i++) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

size_t strlen(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') n++;
  return n;
}

size_t strnlen(const char* s, size_t max) {
  size_t n = 0;
  while (n < max && s[n] != '\0') n++;
  return n;
}

int strcmp(const char* a, const char* b) {
  const unsigned char* x = (const unsigned char*)a;
  const unsigned char* y = (const unsigned char*)b;
  while (*x != '\0' && *x == *y) {
    x++;
    y++;
  }
  return (*x > *y) - (*x < *y);
}

int strncmp(const char* a, const char* b, size_t n) {
  const unsigned char* x = (const unsigned char*)a;
  const unsigned char* y = (const unsigned char*)b;
  for (; n > 0; n--, x++, y++) {
    if (*x != *y) return *x < *y ? -1 : 1;
    if (*x == '\0') return 0;
  }
  return 0;
}

char* strchr(const char* s, int c) {
  for (;; s++) {
    if (*s == (char)c) return (char*)s;
    if (*s == '\0') return NULL;
  }
}

char* strrchr(const char* s, int c) {
  const char* last = NULL;
  for (;; s++) {
    if (*s == (char)c) last = s;
    if (*s == '\0') return (char*)last;
  }
}

void* memchr(const void* s, int c, size_t n) {
  const unsigned char* p = s;
  for (; n > 0; n--, p++) {
    if (*p == (unsigned char)c) return (void*)p;
  }
  return NULL;
}
