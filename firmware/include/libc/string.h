// The <string.h> of the freestanding payload runtime, for code written against libc (libfdt):
// only what lib/string.c implements.
#ifndef EDGEVISOR_FW_LIBC_STRING_H
#define EDGEVISOR_FW_LIBC_STRING_H

#include <stddef.h>

void* memset(void* dst, int c, size_t n);
void* memcpy(void* restrict dst, const void* restrict src, size_t n);
void* memmove(void* dst, const void* src, size_t n);
int memcmp(const void* a, const void* b, size_t n);
void* memchr(const void* s, int c, size_t n);
size_t strlen(const char* s);
size_t strnlen(const char* s, size_t max);
int strcmp(const char* a, const char* b);
int strncmp(const char* a, const char* b, size_t n);
char* strchr(const char* s, int c);
char* strrchr(const char* s, int c);

#endif  // EDGEVISOR_FW_LIBC_STRING_H
