// Minimal payload: proves the boot path, console, command line and exit code.
#include "rt.h"

int payload_main(const char* cmdline) {
  rt_print("edgevisor hello payload\n");
  rt_printf("cmdline: %s\n", cmdline);
  rt_print("hello: done\n");
  return 0;
}
