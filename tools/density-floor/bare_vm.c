// The floor for tools/density's memory figure: the least a KVM VM can cost this kernel. It makes
// a VM with a 32 MiB memslot, the in-kernel irqchip (and the PIT with "pit"), and one vCPU that
// halts with interrupts enabled in real mode; prints "ready" and stays in KVM_RUN for ever.
//
//   gcc -O2 -static -o /tmp/bare_vm tools/density-floor/bare_vm.c
//   tools/density-floor/measure 300 /tmp/bare_vm
//
// measure puts N copies in a fresh memory cgroup and prints what each costs, kernel part too:
// the same count as tools/density's "fleet cgroup" column. Checks are left out on purpose (a
// failed ioctl shows as a VM that never says "ready").
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  size_t size = 32 << 20;
  unsigned char* mem =
      mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = size, .userspace_addr = (unsigned long)mem};
  ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region);
  ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000);
  ioctl(vm, KVM_CREATE_IRQCHIP, 0);
  if (argc > 1 && strcmp(argv[1], "pit") == 0) {
    struct kvm_pit_config pit = {0};
    ioctl(vm, KVM_CREATE_PIT2, &pit);
  }
  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run* run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  static const unsigned char code[] = {0xfb, 0xf4, 0xeb, 0xfd};  // sti; hlt; jmp back to hlt
  memcpy(mem + 0x1000, code, sizeof(code));
  struct kvm_sregs sregs;
  ioctl(vcpu, KVM_GET_SREGS, &sregs);
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  ioctl(vcpu, KVM_SET_SREGS, &sregs);
  struct kvm_regs regs = {.rip = 0x1000, .rflags = 2};
  ioctl(vcpu, KVM_SET_REGS, &regs);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) {
      perror("KVM_RUN");
      return 1;
    }
    if (run->exit_reason != KVM_EXIT_INTR) {
      fprintf(stderr, "exit reason %u\n", run->exit_reason);
      return 2;
    }
  }
}
