// What the tensor-core kernels share: the m16n8k16 MMAs (fp16 or bf16 operands), 8x8 matrices
// of 16-bit elements loaded from shared memory, and fp32 values split into an fp16 high part and an
// fp16 remainder, whose products high*high + low*high + high*low keep fp32-level accuracy.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace atb::plugin::cuda {

// d += a * b for one m16n8k16 fp16 MMA with fp32 accumulators.
__device__ inline void mma(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                           uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ inline void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  mma(d, a[0], a[1], a[2], a[3], b0, b1);
}

// The same with bf16 operands.
__device__ inline void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8x8 matrices of 16-bit elements from shared memory; lane l names row l % 8 of matrix l / 8
// (16 contiguous bytes).  Lane (g, t) = (l / 4, l % 4) receives elements 2t, 2t + 1 of row g of
// each matrix, or with `transposed` those of column g in rows 2t, 2t + 1.
__device__ inline void load_matrices(const void* row, uint32_t (&r)[4]) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ inline void load_matrices_transposed(const void* row, uint32_t (&r)[4]) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// fp16 high part in the low 16 bits, fp16 remainder in the high 16 bits.
__device__ inline uint32_t split_half(float x) {
  const __half high = __float2half_rn(x);
  const __half low = __float2half_rn(x - __half2float(high));
  return uint32_t(__half_as_ushort(high)) | (uint32_t(__half_as_ushort(low)) << 16);
}

// The high parts of two split values as a half2 (first in the low half), and their remainders.
__device__ inline uint32_t highs(uint32_t first, uint32_t second) { return __byte_perm(first, second, 0x5410); }
__device__ inline uint32_t lows(uint32_t first, uint32_t second) { return __byte_perm(first, second, 0x7632); }

// Two floats rounded to fp16 as one half2 register (first in the low half).
__device__ inline uint32_t half_pair(float first, float second) {
  const __half2 pair = __floats2half2_rn(first, second);
  return *reinterpret_cast<const uint32_t*>(&pair);
}

// Both halves of `pair` times half `which` (0: low, 1: high) of `word` (one HMUL2 with a swizzled
// operand; a byte permutation to broadcast the half first costs an instruction more).
__device__ inline uint32_t half_pair_times_half(uint32_t pair, uint32_t word, int which) {
  const __half2 both = *reinterpret_cast<const __half2*>(&word);
  const __half2 factor = which == 1 ? __high2half2(both) : __low2half2(both);
  const __half2 product = __hmul2(*reinterpret_cast<const __half2*>(&pair), factor);
  return *reinterpret_cast<const uint32_t*>(&product);
}

// Two floats as (high, high) and (low, low) half2 registers.
__device__ inline void split_pair(float first, float second, uint32_t& high, uint32_t& low) {
  const uint32_t a = split_half(first), b = split_half(second);
  high = highs(a, b);
  low = lows(a, b);
}

}  // namespace atb::plugin::cuda
