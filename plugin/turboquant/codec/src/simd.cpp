#include <tq/simd.hpp>

#include <atb/cpu_features.hpp>

#include <atomic>

namespace tq {
namespace {

std::atomic<int> g_forced_scalar{0};

}  // namespace

bool simd_enabled() { return g_forced_scalar.load(std::memory_order_relaxed) == 0 && atb::cpu_has_avx2_fma_f16c(); }

ScopedScalarCodec::ScopedScalarCodec() { g_forced_scalar.fetch_add(1); }
ScopedScalarCodec::~ScopedScalarCodec() { g_forced_scalar.fetch_sub(1); }

}  // namespace tq
