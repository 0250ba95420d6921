// The merge of split contexts: each (query token, query head) has `splits` partial softmax states
// (max, sum, weighted values) in the workspace, written by a decode kernel; they are combined into
// the output, and rotated back there when the format's V rows are rotated.
#pragma once

#include <atb/plugin/cuda/attention_params.hpp>
#include <atb/status.hpp>

#include <cuda_runtime.h>

#include <cmath>

#include "attention_common.cuh"
#include "attention_launch.hpp"
#include "dependent_launch.cuh"
#include "launch_schedule.hpp"

namespace atb::plugin::cuda {
namespace merge {

constexpr int kMaxHeadSize = 256;  // the largest head_size_supported

// One block per (token, query head): the splits' states merged into the output.  The first warp
// finds the largest max and each split's weight exp(max - largest) once, into shared memory; every
// thread then sums its coordinates over the splits with independent loads (recomputing the weights
// per coordinate made the merge a chain of dependent loads).  Split states hold
// rotated values when V rows are rotated (linear: the merge commutes with the rotation), so their
// merged sum is rotated back here, once per query head rather than once per split.
template <class Rows>
__global__ void merge_kernel(const AttentionParams p, const __grid_constant__ typename Rows::Codec value, int splits) {
  __shared__ float weights[kMaxSplits];
  __shared__ float merged[kMaxHeadSize];
  __shared__ float total_weight;
  __shared__ bool any_poisoned;
  const int token = blockIdx.x / p.num_query_heads, head = blockIdx.x % p.num_query_heads;
  const bool skip = prefill_kernel_serves(p, sequence_of(p, token));  // inputs only: read before the wait
  // Launched early (launch_dependent): the states are the attention kernel's.  Every block waits, so
  // that this grid never completes before that one (work after it on the stream relies on that).
  wait_for_previous_kernel();
  if (skip) return;
  const int D = p.head_size;
  const float* states =
      static_cast<const float*>(p.workspace) + (int64_t(token) * p.num_query_heads + head) * splits * (D + 2);
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    float top = -INFINITY;
    bool poisoned = false;
    for (int s = lane; s < splits; s += 32) {
      poisoned |= isnan(states[s * (D + 2)]);
      top = fmaxf(top, states[s * (D + 2)]);
    }
    for (int offset = 16; offset > 0; offset /= 2) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, offset));
    float sum = 0.0f;
    for (int s = lane; s < splits; s += 32) {
      const float max = states[s * (D + 2)];
      const float weight = max > -INFINITY ? expf(max - top) : 0.0f;
      weights[s] = weight;
      sum += states[s * (D + 2) + 1] * weight;
    }
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    poisoned = __any_sync(0xffffffffu, poisoned);
    if (lane == 0) total_weight = sum, any_poisoned = poisoned;
  }
  __syncthreads();
  for (int c = threadIdx.x; c < D; c += blockDim.x) {
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) sum += states[s * (D + 2) + 2 + c] * weights[s];
    merged[c] = sum / total_weight;
  }
  __syncthreads();
  Rows::rotate_outputs(p, value, head / (p.num_query_heads / p.num_kv_heads), merged, 1, D);
  for (int c = threadIdx.x; c < D; c += blockDim.x)
    store_element(p.output, token * p.output_token_stride + head * p.output_head_stride + c, p.io_dtype,
                  any_poisoned ? NAN : merged[c]);
}

// The same merge for a power-of-two head size 32 J, one (token, query head) per warp and
// kMergeWarps a block: lane s reads split s's max and sum (kMaxSplits <= 32), the weighted sum is
// built in registers (lane l: coordinates l + 32 j) and rotated back there, with no block-wide
// synchronisation, and each split's values never wait for the previous split's (the states come
// from L2: a round trip per batch of splits, not per split).
constexpr int kMergeWarps = 4;
constexpr int kMergeBatch = 16;  // splits whose values a lane loads at once
template <class Rows, int J>
__global__ void __launch_bounds__(32 * kMergeWarps)
    merge_kernel_by_warps(const AttentionParams p, const __grid_constant__ typename Rows::Codec value, int splits) {
  static_assert(kMaxSplits <= 32, "a lane per split");
  constexpr int D = 32 * J;
  const int pair = int(blockIdx.x) * kMergeWarps + int(threadIdx.x / 32), lane = int(threadIdx.x % 32);
  const int token = pair / p.num_query_heads, head = pair % p.num_query_heads;
  // Inputs only: read before the wait (every thread waits, so that this grid never completes
  // before the attention kernel's).
  const bool skip = token >= p.num_tokens || prefill_kernel_serves(p, sequence_of(p, token));
  wait_for_previous_kernel();
  if (skip) return;
  const float* states =
      static_cast<const float*>(p.workspace) + (int64_t(token) * p.num_query_heads + head) * splits * (D + 2);
  // Every load of a batch of splits is issued before the first is used, and the first batch's before
  // the weights are computed: one L2 round trip per batch, not per split.
  float split_max = -INFINITY, split_sum = 0.0f;  // lane s: split s's
  if (lane < splits) split_max = __ldcg(states + lane * (D + 2)), split_sum = __ldcg(states + lane * (D + 2) + 1);
  float weight = 0.0f, total = 0.0f, merged[J] = {};
  bool poisoned = false;
  for (int first = 0; first < splits; first += kMergeBatch) {
    float values[kMergeBatch][J];
#pragma unroll
    for (int b = 0; b < kMergeBatch; ++b)
#pragma unroll
      for (int j = 0; j < J; ++j)
        values[b][j] = first + b < splits ? __ldcg(states + (first + b) * (D + 2) + 2 + lane + 32 * j) : 0.0f;
    if (first == 0) {
      poisoned = __any_sync(0xffffffffu, isnan(split_max));
      float top = split_max;
      for (int offset = 16; offset > 0; offset /= 2) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, offset));
      weight = split_max > -INFINITY ? expf(split_max - top) : 0.0f;
      total = split_sum * weight;
      for (int offset = 16; offset > 0; offset /= 2) total += __shfl_xor_sync(0xffffffffu, total, offset);
    }
#pragma unroll
    for (int b = 0; b < kMergeBatch; ++b) {
      const float split_weight = __shfl_sync(0xffffffffu, weight, (first + b) % 32);  // 0 past the splits
#pragma unroll
      for (int j = 0; j < J; ++j) merged[j] += values[b][j] * split_weight;
    }
  }
#pragma unroll
  for (int j = 0; j < J; ++j) merged[j] /= total;
  Rows::rotate_output_lanes(p, value, head / (p.num_query_heads / p.num_kv_heads), merged);
#pragma unroll
  for (int j = 0; j < J; ++j)
    store_element(p.output, token * p.output_token_stride + head * p.output_head_stride + lane + 32 * j, p.io_dtype,
                  poisoned ? NAN : merged[j]);
}

}  // namespace merge

// The merge of `splits` states into the output, launched to start while the attention kernel runs.
template <class Rows>
Status launch_merge_splits(const AttentionParams& p, const typename Rows::Codec& value, int splits,
                           cudaStream_t stream) {
  using namespace merge;
  const unsigned pairs = unsigned(p.num_tokens) * unsigned(p.num_query_heads);
  const dim3 by_warps((pairs + kMergeWarps - 1) / kMergeWarps), warps(32 * kMergeWarps);
  switch (p.head_size) {
    case 32:
      return launch_dependent(&merge_kernel_by_warps<Rows, 1>, by_warps, warps, 0, stream, "merge kernel", p, value,
                              splits);
    case 64:
      return launch_dependent(&merge_kernel_by_warps<Rows, 2>, by_warps, warps, 0, stream, "merge kernel", p, value,
                              splits);
    case 128:
      return launch_dependent(&merge_kernel_by_warps<Rows, 4>, by_warps, warps, 0, stream, "merge kernel", p, value,
                              splits);
    case 256:
      return launch_dependent(&merge_kernel_by_warps<Rows, 8>, by_warps, warps, 0, stream, "merge kernel", p, value,
                              splits);
    default:
      return launch_dependent(&merge_kernel<Rows>, dim3(pairs), dim3(128), 0, stream, "merge kernel", p, value, splits);
  }
}

}  // namespace atb::plugin::cuda
