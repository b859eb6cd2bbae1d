// The <limits.h> of the freestanding payload runtime. gcc's own limits.h would look for the C
// library's with #include_next; these come from the compiler's predefined macros instead.
#ifndef EDGEVISOR_FW_LIBC_LIMITS_H
#define EDGEVISOR_FW_LIBC_LIMITS_H

#define CHAR_BIT __CHAR_BIT__
#define SCHAR_MAX __SCHAR_MAX__
#define SHRT_MAX __SHRT_MAX__
#define INT_MAX __INT_MAX__
#define INT_MIN (-INT_MAX - 1)
#define UINT_MAX (INT_MAX * 2U + 1U)
#define LONG_MAX __LONG_MAX__
#define LONG_MIN (-LONG_MAX - 1L)
#define ULONG_MAX (LONG_MAX * 2UL + 1UL)

#endif  // EDGEVISOR_FW_LIBC_LIMITS_H
