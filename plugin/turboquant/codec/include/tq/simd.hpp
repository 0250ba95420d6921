// Whether the codec's encoders use their AVX2 paths.  Each AVX2 path computes bit-identical results
// to its scalar reference (same operations in the same order), and the tests check that by running
// both; forcing the scalar path is for those tests and for machines without AVX2.
#pragma once

namespace tq {

// True when the CPU has AVX2, FMA and F16C and the scalar path is not forced.
bool simd_enabled();

// Forces the scalar reference paths while alive (process-wide; for tests).
class ScopedScalarCodec {
 public:
  ScopedScalarCodec();
  ~ScopedScalarCodec();
  ScopedScalarCodec(const ScopedScalarCodec&) = delete;
  ScopedScalarCodec& operator=(const ScopedScalarCodec&) = delete;
};

}  // namespace tq
