// Whether this CPU runs the plugins' AVX2 kernels: AVX2, FMA and F16C.  F16C is read from cpuid
// because clang's __builtin_cpu_supports does not know "f16c" (GCC's does).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace atb {

// Read once per process (per shared object): cpuid is a trap to the hypervisor in a virtual machine,
// microseconds each, and kernels are chosen per row in places.
inline bool cpu_has_avx2_fma_f16c() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool supported = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
    return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return supported;
#else
  return false;
#endif
}

}  // namespace atb
