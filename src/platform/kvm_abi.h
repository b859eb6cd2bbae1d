// KVM structures whose <linux/kvm.h> definitions are wrong in C++.
//
// The uapi headers declare flexible arrays with __DECLARE_FLEX_ARRAY, which in C++ adds an empty
// struct member: sizeof(kvm_cpuid2) becomes 12 instead of 8, the entries move, and the ioctl
// numbers (which encode the size) change, so KVM answers EINVAL. We define the header layouts
// ourselves and build the ioctl numbers from them.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace edgevisor::kvm_abi {

struct Cpuid2Header {  // struct kvm_cpuid2 without its entries
  uint32_t nent;
  uint32_t padding;
};
static_assert(sizeof(Cpuid2Header) == 8);

inline constexpr unsigned long kGetSupportedCpuid =  // NOLINT(runtime/int)
    _IOWR(KVMIO, 0x05, Cpuid2Header);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);  // NOLINT
static_assert(kGetSupportedCpuid == 0xc008ae05);
static_assert(kSetCpuid2 == 0x4008ae90);

}  // namespace edgevisor::kvm_abi
