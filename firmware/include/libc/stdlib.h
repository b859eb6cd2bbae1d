// The <stdlib.h> of the freestanding payload runtime: libfdt_env.h includes it, and the parts of
// libfdt the payloads link (fdt.o, fdt_ro.o) call nothing from it.
#ifndef EDGEVISOR_FW_LIBC_STDLIB_H
#define EDGEVISOR_FW_LIBC_STDLIB_H

#include <stddef.h>

#endif  // EDGEVISOR_FW_LIBC_STDLIB_H
