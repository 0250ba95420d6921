// Paged attention on CUDA over rows described by a RowCodec: the dispatch between the tiled and
// the simple kernel, the simple kernel and the merge of split contexts.
//
// The simple kernel, for layers the tiled kernel (tiled_attention.cuh) does not serve: one thread
// block per (query token, KV head, chunk of up to 4 heads of its GQA group, context split).  Its 128 threads form 16
// teams of 8 lanes; a team takes one cached token at a time, each lane decoding head_size / 8 coordinates of the K row
// and of the V row once into registers for every query head of the chunk, with an online softmax per team.  Teams are
// merged in shared memory; split contexts write partial states to the workspace and a second kernel merges them.
// Queries are rotated (and outputs rotated back) in shared memory when the codec says rows are
// rotated.
#include <atb/abi.h>
#include <atb/plugin/cuda/paged_attention_cuda.hpp>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "attention_common.cuh"
#include "dependent_launch.cuh"
#include "prefill_attention.cuh"
#include "tiled_attention.cuh"

#include <algorithm>
#include <cmath>
#include <string>

namespace atb::plugin::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kLanes = 8;  // lanes per cached row
constexpr int kTeams = kThreads / kLanes;
constexpr int kHeadsPerBlock = 4;
constexpr int kMaxSplits = 32;     // see splits_filling_waves
constexpr int kMaxHeadSize = 256;  // the largest head_size_supported

// Code `index` of a row's codes packed LSB-first at `bits` bits (1..8): it spans at most two bytes.
__device__ inline unsigned code_at(const uint8_t* codes, int index, int bits) {
  const int bit = index * bits, byte = bit >> 3, shift = bit & 7;
  unsigned word = codes[byte];
  if (shift + bits > 8) word |= unsigned(codes[byte + 1]) << 8;
  return (word >> shift) & ((1u << bits) - 1u);
}

// Coordinates lane * C .. lane * C + C - 1 of a row, decoded exactly as the codec's decode does.
template <int C>
__device__ inline void decode_lane(const RowCodec& codec, const float* table, const uint8_t* row, int lane,
                                   float (&x)[C]) {
  const int first = lane * C;
  switch (codec.kind) {
    case kPlainF32:
#pragma unroll
      for (int i = 0; i < C; ++i) x[i] = reinterpret_cast<const float*>(row)[first + i];
      return;
    case kPlainF16:
#pragma unroll
      for (int i = 0; i < C; ++i) x[i] = __half2float(reinterpret_cast<const __half*>(row)[first + i]);
      return;
    case kPlainBf16:
#pragma unroll
      for (int i = 0; i < C; ++i) x[i] = __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(row)[first + i]);
      return;
    default:
      break;
  }
  const uint8_t* codes = row + codec.codes_offset;
  const uint8_t* scales = row + codec.scales_offset;
  const bool affine = codec.kind == kAffineUnsigned || codec.kind == kAffineSigned;
#pragma unroll
  for (int i = 0; i < C; ++i) {
    const int index = first + i, block = index / codec.block_size;
    const unsigned code = code_at(codes, index, codec.bits);
    if (affine) {
      const float scale = load_half_bytes(scales + 4 * block), zero = load_half_bytes(scales + 4 * block + 2);
      const float q = codec.kind == kAffineSigned ? float(static_cast<int8_t>(code)) : float(code);
      x[i] = zero + scale * q;
    } else {
      x[i] = load_half_bytes(scales + 2 * block) * table[code];
    }
  }
}

template <int D, int G>
__global__ void __launch_bounds__(kThreads)
    attention_kernel(const AttentionParams p, const __grid_constant__ Codecs codecs, int splits) {
  constexpr int C = D / kLanes;
  static_assert((D & (D - 1)) == 0 || G * D <= kPermutedPerThread * kThreads, "the rotation's permutation holds G x D");
  extern __shared__ float shared[];
  float* queries = shared;               // [G][D]
  float* key_table = queries + G * D;    // [256]
  float* value_table = key_table + 256;  // [256]
  float* states = value_table + 256;     // [kTeams][G][D + 2]
  const RowCodec& kc = codecs.key;
  const RowCodec& vc = codecs.value;
  const BlockWork w = block_work<G>(p);
  if (w.skip) return;  // the same for every thread of the block

  load_block_inputs<D, G>(p, codecs, w, queries, key_table, value_table);

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
      decode_lane<C>(kc, key_table, page_start + (int64_t(w.kv_head) * p.block_size + slot) * p.k_row_bytes, lane, x);
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
    decode_lane<C>(vc, value_table,
                   page_start + p.v_region_offset + (int64_t(w.kv_head) * p.block_size + slot) * p.v_row_bytes, lane,
                   v);
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
  finish_block<D, G, kTeams>(p, vc, w, splits, states, queries, poisoned);
}

// One block per (token, query head): the splits' states merged into the output.  The first warp
// finds the largest max and each split's weight exp(max - largest) once, into shared memory; every
// thread then sums its coordinates over the splits with independent loads (recomputing the weights
// per coordinate made the merge a chain of dependent loads).  Split states hold
// rotated values when V rows are rotated (linear: the merge commutes with the rotation), so their
// merged sum is rotated back here, once per query head rather than once per split.
__global__ void merge_kernel(const AttentionParams p, const __grid_constant__ RowCodec value, int splits) {
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
  if (value.rotated)
    rotate_by_block(merged, 1, D, rotation_of(p, value, head / (p.num_query_heads / p.num_kv_heads)), true);
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
template <int J>
__global__ void __launch_bounds__(32 * kMergeWarps)
    merge_kernel_by_warps(const AttentionParams p, const __grid_constant__ RowCodec value, int splits) {
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
  if (value.rotated)
    rotate_back_in_registers(merged, rotation_of(p, value, head / (p.num_query_heads / p.num_kv_heads)));
#pragma unroll
  for (int j = 0; j < J; ++j)
    store_element(p.output, token * p.output_token_stride + head * p.output_head_stride + lane + 32 * j, p.io_dtype,
                  poisoned ? NAN : merged[j]);
}

// The merge of `splits` states into the output, launched to start while the attention kernel runs.
Status launch_merge(const AttentionParams& p, const RowCodec& value, int splits, cudaStream_t stream) {
  const unsigned pairs = unsigned(p.num_tokens) * unsigned(p.num_query_heads);
  const dim3 by_warps((pairs + kMergeWarps - 1) / kMergeWarps), warps(32 * kMergeWarps);
  switch (p.head_size) {
    case 32:
      return launch_dependent(&merge_kernel_by_warps<1>, by_warps, warps, 0, stream, "merge kernel", p, value, splits);
    case 64:
      return launch_dependent(&merge_kernel_by_warps<2>, by_warps, warps, 0, stream, "merge kernel", p, value, splits);
    case 128:
      return launch_dependent(&merge_kernel_by_warps<4>, by_warps, warps, 0, stream, "merge kernel", p, value, splits);
    case 256:
      return launch_dependent(&merge_kernel_by_warps<8>, by_warps, warps, 0, stream, "merge kernel", p, value, splits);
    default:
      return launch_dependent(&merge_kernel, dim3(pairs), dim3(128), 0, stream, "merge kernel", p, value, splits);
  }
}

template <int D, int G>
size_t shared_bytes() {
  return sizeof(float) * (size_t(G) * D + 512 + size_t(kTeams) * G * (D + 2));
}

template <int D, int G>
Status launch(const AttentionParams& p, const Codecs& codecs, int splits, cudaStream_t stream) {
  const size_t bytes = shared_bytes<D, G>();
  static const cudaError_t raised =
      cudaFuncSetAttribute(attention_kernel<D, G>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  if (raised != cudaSuccess)
    return Status::internal(std::string("cudaFuncSetAttribute: ") + cudaGetErrorString(raised));
  const int group = p.num_query_heads / p.num_kv_heads;
  const int chunks = (group + G - 1) / G;
  const dim3 grid(unsigned(p.num_tokens) * unsigned(p.num_kv_heads) * unsigned(chunks), unsigned(splits));
  attention_kernel<D, G><<<grid, kThreads, bytes, stream>>>(p, codecs, splits);
  return last_launch_status("attention kernel");
}

// Head sizes the tiled kernels do not take run with kHeadsPerBlock heads a block whatever the group
// (fewer instantiations; a smaller group leaves heads of the block idle).
template <int D>
Status launch_for_group(const AttentionParams& p, const Codecs& codecs, int splits, cudaStream_t stream) {
  if constexpr (D == 64 || D == 128 || D == 256) {
    const int group = p.num_query_heads / p.num_kv_heads;
    if (group == 1) return launch<D, 1>(p, codecs, splits, stream);
    if (group == 2) return launch<D, 2>(p, codecs, splits, stream);
  }
  return launch<D, kHeadsPerBlock>(p, codecs, splits, stream);
}

// The simple kernel for a head size the build serves.
Status launch_simple(const AttentionParams& p, const Codecs& codecs, int splits, cudaStream_t stream) {
  switch (p.head_size) {
    case 16:
      return launch_for_group<16>(p, codecs, splits, stream);
    case 32:
      return launch_for_group<32>(p, codecs, splits, stream);
    case 48:
      return launch_for_group<48>(p, codecs, splits, stream);
    case 64:
      return launch_for_group<64>(p, codecs, splits, stream);
    case 80:
      return launch_for_group<80>(p, codecs, splits, stream);
    case 96:
      return launch_for_group<96>(p, codecs, splits, stream);
    case 112:
      return launch_for_group<112>(p, codecs, splits, stream);
    case 128:
      return launch_for_group<128>(p, codecs, splits, stream);
    case 160:
      return launch_for_group<160>(p, codecs, splits, stream);
    case 192:
      return launch_for_group<192>(p, codecs, splits, stream);
    case 256:
      return launch_for_group<256>(p, codecs, splits, stream);
    default:
      return Status::unsupported("CUDA attention: head_size = " + std::to_string(p.head_size) +
                                 "; allowed: 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 256");
  }
}

// Kernel parameters carrying host bytes to device memory.
struct ByteChunk {
  uint8_t bytes[3072];
};

__global__ void store_bytes_kernel(uint8_t* to, const __grid_constant__ ByteChunk chunk, int count) {
  for (int i = threadIdx.x; i < count; i += blockDim.x) to[i] = chunk.bytes[i];
}

int multiprocessors() {
  static const int count = [] {
    int device = 0, value = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return 1;
    if (cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) return 1;
    return std::max(value, 1);
  }();
  return count;
}

// Splits of the context for `blocks` blocks a split where `slots` blocks are resident at once.
// None where the blocks fill 85% of a wave (where the kernel gives splits uneven ranges,
// split_range: where they make 1.85 waves).  Otherwise the fewest that make about two waves (a
// block that finishes early is then replaced by one of the second wave: the older blocks on a
// multiprocessor are served first and finish first, and a single wave ends on its youngest) whose
// last wave is at least 85% full (a wave a third full costs as much as a full one), and at most
// kMaxSplits (each split costs a block's set-up and a state to merge).  The timings behind these
// thresholds are in tests/cuda/PERFORMANCE.md ("Figures moved out of the kernels").
int splits_filling_waves(int blocks, int slots, bool uneven_ranges) {
  blocks = std::max(blocks, 1);
  if (double(blocks) / slots >= (uneven_ranges ? 1.85 : 0.85)) return 1;
  for (int splits = 2; splits < kMaxSplits; ++splits) {
    const double waves = double(blocks) * splits / slots;
    if (waves >= 1.85 && waves / std::ceil(waves) >= 0.85) return splits;
  }
  return kMaxSplits;
}

}  // namespace

bool head_size_supported(int head_size) {
  switch (head_size) {
    case 16:
    case 32:
    case 48:
    case 64:
    case 80:
    case 96:
    case 112:
    case 128:
    case 160:
    case 192:
    case 256:
      return true;
    default:
      return false;
  }
}

Status launch_store_bytes(void* to, const uint8_t* bytes, size_t count, void* stream) {
  ByteChunk chunk;
  for (size_t done = 0; done < count; done += sizeof chunk.bytes) {
    const size_t here = std::min(count - done, sizeof chunk.bytes);
    std::copy(bytes + done, bytes + done + here, chunk.bytes);
    store_bytes_kernel<<<1, 256, 0, static_cast<cudaStream_t>(stream)>>>(static_cast<uint8_t*>(to) + done, chunk,
                                                                         int(here));
    ATB_RETURN_IF_ERROR(last_launch_status("store-bytes kernel"));
  }
  return Status::ok();
}

uint64_t attention_workspace_bytes(int num_query_heads, int head_size) {
  return uint64_t(kTokenSplitCapacity) * uint64_t(num_query_heads) * uint64_t(head_size + 2) * sizeof(float);
}

bool device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

Status last_launch_status(const char* what) {
  const cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess) return Status::ok();
  return Status::internal(std::string(what) + ": " + cudaGetErrorString(error));
}

Status launch_paged_attention(const AttentionParams& params, const RowCodec& key, const RowCodec& value, void* stream) {
  if (params.num_tokens == 0) return Status::ok();
  const Codecs codecs{key, value};
  const auto s = static_cast<cudaStream_t>(stream);
  const PrefillPlan prefill = plan_prefill_attention(params, key, value);
  AttentionParams p = params;
  p.decode_tokens_only = prefill.heads_padded > 0 ? 1 : 0;
  const TiledPlan plan = plan_tiled_attention(p, key, value);
  // Splits make whole waves of resident blocks where the batch alone does not, as far as the
  // workspace holds their states.
  int blocks, resident;
  if (plan.stages > 0) {
    blocks = tiled_blocks_per_split(p, plan);
    resident = tiled_resident_blocks(p, plan);
  } else {
    const int group = p.num_query_heads / p.num_kv_heads;
    blocks = p.num_tokens * p.num_kv_heads * ((group + kHeadsPerBlock - 1) / kHeadsPerBlock);
    resident = 4;
  }
  int splits = splits_filling_waves(blocks, resident * multiprocessors(), plan.stages > 0);
  const uint64_t per_split =
      uint64_t(p.num_tokens) * uint64_t(p.num_query_heads) * uint64_t(p.head_size + 2) * sizeof(float);
  splits = int(std::min<uint64_t>(uint64_t(splits), p.workspace == nullptr ? 1 : p.workspace_bytes / per_split));
  splits = std::max(splits, 1);
  p.uneven_splits = double(blocks) * splits > 1.5 * resident * multiprocessors() ? 1 : 0;
  if (plan.stages > 0) {
    ATB_RETURN_IF_ERROR(launch_tiled_attention(p, codecs, plan, splits, s));
  } else {
    ATB_RETURN_IF_ERROR(launch_simple(p, codecs, splits, s));
  }
  if (splits > 1) {
    ATB_RETURN_IF_ERROR(launch_merge(p, value, splits, s));
  }
  if (prefill.heads_padded > 0) ATB_RETURN_IF_ERROR(launch_prefill_attention(params, codecs, prefill, s));
  return Status::ok();
}

}  // namespace atb::plugin::cuda
