// The simple attention kernel, for layers the tiled kernels do not serve: one thread block per
// (query token, KV head, chunk of up to 4 heads of its GQA group, context split).  Its 128 threads
// form 16 teams of 8 lanes; a team takes one cached token at a time, each lane decoding head_size / 8
// coordinates of the K row and of the V row once into registers for every query head of the chunk,
// with an online softmax per team.  Teams are merged in shared memory; split contexts write partial
// states to the workspace and merge_splits.cuh merges them.
#pragma once

#include <atb/abi.h>
#include <atb/plugin/cuda/attention_params.hpp>
#include <atb/status.hpp>

#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "attention_common.cuh"
#include "attention_launch.hpp"
#include "layer_kernels.hpp"
#include "row_format.cuh"

namespace atb::plugin::cuda {

namespace simple {

constexpr int kThreads = kSimpleThreads;
constexpr int kLanes = 8;  // lanes per cached row
constexpr int kTeams = kThreads / kLanes;
constexpr int kHeadsPerBlock = kSimpleHeadsPerBlock;

template <class Rows, int D, int G>
__global__ void __launch_bounds__(kThreads)
    attention_kernel(const AttentionParams p, const __grid_constant__ Codecs<Rows> codecs, int splits) {
  constexpr int C = D / kLanes;
  extern __shared__ float shared[];
  float* queries = shared;               // [G][D]
  float* key_table = queries + G * D;    // [256]
  float* value_table = key_table + 256;  // [256]
  float* states = value_table + 256;     // [kTeams][G][D + 2]
  const typename Rows::Codec& kc = codecs.key;
  const typename Rows::Codec& vc = codecs.value;
  const BlockWork w = block_work<G>(p);
  if (w.skip) return;  // the same for every thread of the block

  load_block_inputs<Rows, D, G>(p, codecs, w, queries, key_table, value_table);

  bool poisoned = w.poisoned;
  const SplitRange range =
      split_range(w.high - w.low, splits_used(w, splits), splits, w.split, false);  // even: see uneven_splits
  const int begin = w.low + range.begin, end = w.low + range.end;

  const int team = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  float q[G][C];
#pragma unroll
  for (int g = 0; g < G; ++g)
#pragma unroll
    for (int i = 0; i < C; ++i) q[g][i] = queries[g * D + lane * C + i];
  float m[G], l[G], acc[G][C];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < C; ++i) acc[g][i] = 0.0f;
  }
  const int32_t* table = p.block_tables + int64_t(w.seq) * p.block_table_stride;
  for (int base = begin; base < end; base += kTeams) {  // the same trip count for every team
    const int key = base + team;
    bool valid = key < end;
    int64_t page = 0;
    if (valid) {
      page = table[key / p.block_size];
      if (page < 0 || page >= p.num_pages) valid = false, poisoned = true;
    }
    const int slot = key % p.block_size;
    const uint8_t* page_start = p.pages + page * int64_t(p.page_stride);
    float x[C];
    if (valid)
      Rows::template decode_at<C>(kc, key_table,
                                  page_start + (int64_t(w.kv_head) * p.block_size + slot) * p.k_row_bytes, lane * C, x);
    float s[G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float partial = 0.0f;
#pragma unroll
      for (int i = 0; i < C; ++i) partial = fmaf(q[g][i], valid ? x[i] : 0.0f, partial);
#pragma unroll
      for (int offset = 1; offset < kLanes; offset *= 2) partial += __shfl_xor_sync(0xffffffffu, partial, offset);
      s[g] = p.soft_cap > 0 ? p.soft_cap * tanhf(partial / p.soft_cap) : partial;
    }
    if (!valid) continue;
    float v[C];
    Rows::template decode_at<C>(
        vc, value_table, page_start + p.v_region_offset + (int64_t(w.kv_head) * p.block_size + slot) * p.v_row_bytes,
        lane * C, v);
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float new_max = fmaxf(m[g], s[g]);
      const float correction = expf(m[g] - new_max);  // 0 on the first key
      const float weight = expf(s[g] - new_max);
      l[g] = l[g] * correction + weight;
#pragma unroll
      for (int i = 0; i < C; ++i) acc[g][i] = fmaf(weight, v[i], acc[g][i] * correction);
      m[g] = new_max;
    }
  }
  poisoned = __syncthreads_or(poisoned);

#pragma unroll
  for (int g = 0; g < G; ++g) {
    float* state = states + (team * G + g) * (D + 2);
    if (lane == 0) state[0] = m[g], state[1] = l[g];
#pragma unroll
    for (int i = 0; i < C; ++i) state[2 + lane * C + i] = acc[g][i];
  }
  __syncthreads();
  finish_block<Rows, D, G, kTeams>(p, vc, w, splits, states, queries, poisoned);
}

template <int D, int G>
size_t shared_bytes() {
  return sizeof(float) * (size_t(G) * D + 512 + size_t(kTeams) * G * (D + 2));
}

template <class Rows, int D, int G>
Status launch(const AttentionParams& p, const Codecs<Rows>& codecs, int splits, cudaStream_t stream) {
  const size_t bytes = shared_bytes<D, G>();
  static const cudaError_t raised =
      cudaFuncSetAttribute(attention_kernel<Rows, D, G>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  if (raised != cudaSuccess)
    return Status::internal(std::string("cudaFuncSetAttribute: ") + cudaGetErrorString(raised));
  const int group = p.num_query_heads / p.num_kv_heads;
  const int chunks = (group + G - 1) / G;
  const dim3 grid(unsigned(p.num_tokens) * unsigned(p.num_kv_heads) * unsigned(chunks), unsigned(splits));
  attention_kernel<Rows, D, G><<<grid, kThreads, bytes, stream>>>(p, codecs, splits);
  return last_launch_status("attention kernel");
}

// Head sizes the tiled kernels do not take run with kHeadsPerBlock heads a block whatever the group
// (fewer instantiations; a smaller group leaves heads of the block idle).
template <class Rows, int D>
Status launch_for_group(const AttentionParams& p, const Codecs<Rows>& codecs, int splits, cudaStream_t stream) {
  if constexpr (D == 64 || D == 128 || D == 256) {
    const int group = p.num_query_heads / p.num_kv_heads;
    if (group == 1) return launch<Rows, D, 1>(p, codecs, splits, stream);
    if (group == 2) return launch<Rows, D, 2>(p, codecs, splits, stream);
  }
  return launch<Rows, D, kHeadsPerBlock>(p, codecs, splits, stream);
}

}  // namespace simple

// The simple kernel for a head size the build serves.
template <class Rows>
Status launch_simple_attention(const AttentionParams& p, const Codecs<Rows>& codecs, int splits, cudaStream_t stream) {
  using namespace simple;
  switch (p.head_size) {
    case 16:
      return launch_for_group<Rows, 16>(p, codecs, splits, stream);
    case 32:
      return launch_for_group<Rows, 32>(p, codecs, splits, stream);
    case 48:
      return launch_for_group<Rows, 48>(p, codecs, splits, stream);
    case 64:
      return launch_for_group<Rows, 64>(p, codecs, splits, stream);
    case 80:
      return launch_for_group<Rows, 80>(p, codecs, splits, stream);
    case 96:
      return launch_for_group<Rows, 96>(p, codecs, splits, stream);
    case 112:
      return launch_for_group<Rows, 112>(p, codecs, splits, stream);
    case 128:
      return launch_for_group<Rows, 128>(p, codecs, splits, stream);
    case 160:
      return launch_for_group<Rows, 160>(p, codecs, splits, stream);
    case 192:
      return launch_for_group<Rows, 192>(p, codecs, splits, stream);
    case 256:
      return launch_for_group<Rows, 256>(p, codecs, splits, stream);
    default:
      return Status::unsupported("CUDA attention: head_size = " + std::to_string(p.head_size) +
                                 "; allowed: 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 256");
  }
}

}  // namespace atb::plugin::cuda
