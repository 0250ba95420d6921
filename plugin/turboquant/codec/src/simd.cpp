#include <tq/simd.hpp>

#include <atomic>

namespace tq {
namespace {

std::atomic<int> g_forced_scalar{0};

bool cpu_has_avx2_fma_f16c() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool supported =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return supported;
#else
  return false;
#endif
}

}  // namespace

bool simd_enabled() { return g_forced_scalar.load(std::memory_order_relaxed) == 0 && cpu_has_avx2_fma_f16c(); }

ScopedScalarCodec::ScopedScalarCodec() { g_forced_scalar.fetch_add(1); }
ScopedScalarCodec::~ScopedScalarCodec() { g_forced_scalar.fetch_sub(1); }

}  // namespace tq
