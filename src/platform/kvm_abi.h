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

#if defined(__x86_64__)
struct MsrsHeader {  // struct kvm_msrs without its entries
  uint32_t nmsrs;
  uint32_t pad;
};
struct MsrListHeader {  // struct kvm_msr_list without its indices
  uint32_t nmsrs;
};
struct XsaveRegion {  // struct kvm_xsave without `extra` (KVM_GET_XSAVE2 may write past it)
  uint32_t region[1024];
};
inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);  // NOLINT
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);             // NOLINT
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);              // NOLINT
inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, XsaveRegion);            // NOLINT
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, XsaveRegion);            // NOLINT
inline constexpr unsigned long kGetXsave2 = _IOR(KVMIO, 0xcf, XsaveRegion);           // NOLINT
static_assert(kGetMsrIndexList == 0xc004ae02);
static_assert(kGetMsrs == 0xc008ae88);
static_assert(kSetMsrs == 0x4008ae89);
static_assert(kGetXsave == 0x9000aea4);
static_assert(kSetXsave == 0x5000aea5);
static_assert(kGetXsave2 == 0x9000aecf);
#endif

}  // namespace edgevisor::kvm_abi
