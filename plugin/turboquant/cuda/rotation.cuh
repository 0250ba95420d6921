// TurboQuant's rotation on the device, exactly as tq::Rotation computes it (same operations in the
// same order), by a whole block or by one warp, in place on vectors in shared memory.
//   power-of-two d:  x <- H S x / sqrt(d)
//   other d:         two rounds of  "signs, permutation, block-diagonal normalised Hadamard"
//                    over d's power-of-two blocks, largest first (80 = 64 + 16).
// Signs come from the seeded stream here; the seeded permutations are made on the host (a
// Fisher-Yates shuffle is sequential) and read from the layer's workspace.
#pragma once

#include <tq/rotation_seed.hpp>

#include <cstdint>

namespace atb::turboquant::cuda {

// The rotation of one KV head of one layer.
struct RotationRef {
  uint64_t seed = 0;
  int layer_index = 0;
  int global_kv_head = 0;
  const uint8_t* permutations = nullptr;  // [2][d] for a d that is not a power of two; else unused
};

// Values a thread holds while vectors are permuted: count * d <= kPermutedPerThread * threads.
constexpr int kPermutedPerThread = 8;

// Who works on the vectors: `thread` of `threads`, synchronising with `sync()` (__syncthreads for a
// block, __syncwarp for a warp).
template <class Sync>
struct Workers {
  int thread, threads;
  Sync sync;
};

// x *= signs of round `round` (a sign flip is exact).
template <class Sync>
__device__ inline void apply_signs(float* x, int count, int d, const RotationRef& r, int round,
                                   const Workers<Sync>& w) {
  const uint64_t stream = tq::rotation_stream_seed(r.seed, r.layer_index, r.global_kv_head, round);
  const bool power_of_two = (d & (d - 1)) == 0;
  for (int i = w.thread; i < count * d; i += w.threads)
    if (tq::rotation_sign_bit(stream, power_of_two ? i & (d - 1) : i % d)) x[i] = -x[i];
  w.sync();
}

// Normalised Hadamard on each power-of-two block of d (largest first), of every vector.  Block and
// half sizes are powers of two: indices split with shifts and masks, not divisions.
template <class Sync>
__device__ inline void apply_blocks(float* x, int count, int d, const Workers<Sync>& w) {
  int offset = 0;
  while (offset < d) {
    const int log_block = 31 - __clz(d - offset), block = 1 << log_block;  // the largest that fits
    const int log_pairs = log_block - 1;                                   // block / 2 pairs a vector
    for (int log_half = 0; log_half < log_block; ++log_half) {
      const int half = 1 << log_half;
      for (int pair = w.thread; pair < count << log_pairs; pair += w.threads) {
        const int vector = pair >> log_pairs, within = pair & ((1 << log_pairs) - 1);
        const int i = vector * d + offset + ((within >> log_half) << (log_half + 1)) + (within & (half - 1));
        const float a = x[i], b = x[i + half];
        x[i] = __fadd_rn(a, b);
        x[i + half] = __fsub_rn(a, b);
      }
      w.sync();
    }
    const float norm = __fdiv_rn(1.0f, __fsqrt_rn(float(block)));
    for (int i = w.thread; i < count << log_block; i += w.threads) {
      const int at = (i >> log_block) * d + offset + (i & (block - 1));
      x[at] = __fmul_rn(x[at], norm);
    }
    w.sync();
    offset += block;
  }
}

// new[i] = old[perm[i]] (gather), or its inverse new[perm[i]] = old[i] (scatter), per vector.
template <class Sync>
__device__ inline void apply_permutation(float* x, int count, int d, const uint8_t* perm, bool scatter,
                                         const Workers<Sync>& w) {
  float held[kPermutedPerThread];
#pragma unroll
  for (int k = 0; k < kPermutedPerThread; ++k) {
    const int i = w.thread + k * w.threads;
    if (i < count * d) held[k] = scatter ? x[i] : x[(i / d) * d + perm[i % d]];
  }
  w.sync();
#pragma unroll
  for (int k = 0; k < kPermutedPerThread; ++k) {
    const int i = w.thread + k * w.threads;
    if (i < count * d) x[scatter ? (i / d) * d + perm[i % d] : i] = held[k];
  }
  w.sync();
}

// x <- R x (forward) or x <- R^T x (inverse) for `count` vectors of d floats at x[v * d].
template <class Sync>
__device__ inline void rotate_vectors(float* x, int count, int d, const RotationRef& r, bool inverse,
                                      const Workers<Sync>& w) {
  if ((d & (d - 1)) == 0) {  // a power of two: one round, no permutation
    if (!inverse) apply_signs(x, count, d, r, 0, w);
    apply_blocks(x, count, d, w);
    if (inverse) apply_signs(x, count, d, r, 0, w);
    return;
  }
  for (int step = 0; step < 2; ++step) {
    const int round = inverse ? 1 - step : step;
    const uint8_t* perm = r.permutations + round * d;
    if (inverse) {
      apply_blocks(x, count, d, w);  // each normalised block Hadamard is its own inverse
      apply_permutation(x, count, d, perm, true, w);
      apply_signs(x, count, d, r, round, w);
    } else {
      apply_signs(x, count, d, r, round, w);
      apply_permutation(x, count, d, perm, false, w);
      apply_blocks(x, count, d, w);
    }
  }
}

struct BlockSync {
  __device__ void operator()() const { __syncthreads(); }
};
struct WarpSync {
  __device__ void operator()() const { __syncwarp(); }
};

// The whole thread block rotates.
__device__ inline void rotate_by_block(float* x, int count, int d, const RotationRef& r, bool inverse) {
  rotate_vectors(x, count, d, r, inverse, Workers<BlockSync>{int(threadIdx.x), int(blockDim.x), {}});
}

// The normalised Hadamard transform of one vector of d = 32 J (a power of two from 32 to 256) held by
// a warp in registers, lane l holding v[j] = x[l + 32j]: butterflies across lanes by shuffles, across
// a lane's values in place (the same additions and subtractions as apply_blocks, without a
// synchronisation per stage).  A one-token write is a chain of such steps.
template <int J>
__device__ inline void hadamard_in_registers(float (&v)[J]) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int half = 1; half < 32; half *= 2) {
    const bool upper = (lane & half) != 0;
#pragma unroll
    for (int j = 0; j < J; ++j) {
      const float other = __shfl_xor_sync(0xffffffffu, v[j], half);
      v[j] = upper ? __fsub_rn(other, v[j]) : __fadd_rn(v[j], other);
    }
  }
#pragma unroll
  for (int step = 1; step < J; step *= 2)
#pragma unroll
    for (int j = 0; j < J; ++j)
      if ((j & step) == 0) {
        const float a = v[j], b = v[j + step];
        v[j] = __fadd_rn(a, b);
        v[j + step] = __fsub_rn(a, b);
      }
  const float norm = __fdiv_rn(1.0f, __fsqrt_rn(float(32 * J)));
#pragma unroll
  for (int j = 0; j < J; ++j) v[j] = __fmul_rn(v[j], norm);
}

// x <- R x for one vector of d = 32 J (a power of two) in memory, by the warp in registers.
template <int J>
__device__ inline void rotate_one_in_registers(float* x, const RotationRef& r) {
  const int lane = threadIdx.x % 32;
  const uint64_t stream = tq::rotation_stream_seed(r.seed, r.layer_index, r.global_kv_head, 0);
  float v[J];
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int i = lane + 32 * j;
    v[j] = tq::rotation_sign_bit(stream, i) ? -x[i] : x[i];
  }
  hadamard_in_registers(v);
#pragma unroll
  for (int j = 0; j < J; ++j) x[lane + 32 * j] = v[j];
  __syncwarp();
}

// v <- R^T v for one vector of d = 32 J (a power of two) held by a warp as v[j] = x[lane + 32 j]:
// the normalised Hadamard transform (its own inverse), then the signs.
template <int J>
__device__ inline void rotate_back_in_registers(float (&v)[J], const RotationRef& r) {
  const int lane = threadIdx.x % 32;
  const uint64_t stream = tq::rotation_stream_seed(r.seed, r.layer_index, r.global_kv_head, 0);
  hadamard_in_registers(v);
#pragma unroll
  for (int j = 0; j < J; ++j)
    if (tq::rotation_sign_bit(stream, lane + 32 * j)) v[j] = -v[j];
}

// The calling warp rotates.
__device__ inline void rotate_by_warp(float* x, int count, int d, const RotationRef& r, bool inverse) {
  if (count == 1 && !inverse) {
    switch (d) {
      case 32:
        return rotate_one_in_registers<1>(x, r);
      case 64:
        return rotate_one_in_registers<2>(x, r);
      case 128:
        return rotate_one_in_registers<4>(x, r);
      case 256:
        return rotate_one_in_registers<8>(x, r);
      default:
        break;
    }
  }
  rotate_vectors(x, count, d, r, inverse, Workers<WarpSync>{int(threadIdx.x % 32), 32, {}});
}

// The whole thread block: x <- R x for `count` vectors, each by one warp in registers where d allows
// (no block-wide synchronisation per butterfly stage), else by the block in shared memory.
__device__ inline void rotate_forward(float* x, int count, int d, const RotationRef& r) {
  if ((d & (d - 1)) == 0 && d >= 32 && d <= 256) {
    for (int v = int(threadIdx.x / 32); v < count; v += int(blockDim.x / 32)) rotate_by_warp(x + v * d, 1, d, r, false);
    __syncthreads();
  } else {
    rotate_by_block(x, count, d, r, false);
  }
}

}  // namespace atb::turboquant::cuda
