// Writing new tokens' K and V rows into their page slots on CUDA, in one launch per layer: one warp
// per row rotates (when the codec is rotated), quantizes and packs it as the codec's scalar
// reference does: the per-value steps are tq's own host/device primitives (half rounding, affine
// fields and codes, nearest code, lane combination), and the parallel sums keep its order, so a
// GPU-written page matches a CPU-written one byte for byte.
#include <atb/abi.h>
#include <atb/plugin/cuda/attention_params.hpp>
#include <atb/plugin/cuda/device_common.cuh>
#include <atb/plugin/cuda/layer_kernels.hpp>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <tq/affine_fields.hpp>
#include <tq/half_rounding.hpp>
#include <tq/nearest_code.hpp>

#include "rotation.cuh"
#include "turboquant_rows.cuh"

namespace atb::turboquant::cuda {
namespace {

using plugin::cuda::allow_dependent_launch;
using plugin::cuda::load_element;
using plugin::cuda::WriteParams;

// A warp writes one row.  Eight warps a block, at most 64 registers a thread: the tensor-core
// attention kernel runs meanwhile (overlaps_write), and one write block then fits beside three of
// its blocks on a multiprocessor (their registers), so a batch's rows take half as many
// multiprocessors away from it as with four warps a block (measured at B = 8: within noise).
constexpr int kWarps = 8;
constexpr int kMinBlocks = 65536 / (kWarps * 32 * 64);
constexpr int kMaxHead = 256;

__device__ inline void store_half_bits(uint8_t* at, uint16_t bits) {
  at[0] = uint8_t(bits & 0xff);
  at[1] = uint8_t(bits >> 8);
}

// A team of `size` lanes of a warp (8 or 32) fitting one block of a codebook row; `mask` names them.
struct Team {
  int size, rank;  // rank: this lane's place in the team
  unsigned mask;
  int base;  // the team's first lane
};
__device__ inline Team team_of(int size) {
  const int lane = threadIdx.x % 32;
  const int base = lane / size * size;
  return {size, lane - base, size == 32 ? 0xffffffffu : (0xffu << base), base};
}

// The 8 lane sums of a[i] * b[i] (element i into team lane i % 8, fused multiply-add, in order)
// combined by tq::combine_lanes; every lane of the team gets the result.
__device__ float lane_ordered_dot(const Team& team, const float* a, const float* b, int count) {
  float sum = 0.0f;
  if (team.rank < 8)
    for (int i = team.rank; i < count; i += 8) sum = fmaf(a[i], b[i], sum);
  float lanes[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) lanes[k] = __shfl_sync(team.mask, sum, team.base + k);
  return tq::combine_lanes(lanes);
}

struct WarpScratch {
  float x[kMaxHead];
  float centroid[kMaxHead];
  uint8_t codes[kMaxHead];
  uint8_t trial[kMaxHead];
};

// tq::fit_scaled_codes over x[first .. first + count) by one team: codes into s.codes[first..],
// returns the fp16 scale bits.
__device__ uint16_t fit_scaled_codes(const Team& team, WarpScratch& s, int first, int count, const float* table,
                                     const float* boundaries, int boundary_count, int refinements) {
  const int lane = team.rank, lanes = team.size;
  const float* x = s.x + first;
  const float energy = lane_ordered_dot(team, x, x, count);
  const uint8_t zero_code = uint8_t(tq::nearest_code(boundaries, boundary_count, 0.0f));
  if (!(energy > 0)) {
    for (int i = lane; i < count; i += lanes) s.codes[first + i] = zero_code;
    __syncwarp(team.mask);
    return 0;
  }
  float best_error = energy, best_scale = 0.0f;
  float scale = __fsqrt_rn(__fdiv_rn(energy, float(count)));
  for (int round = 0; round <= refinements; ++round) {
    const float inverse = __fdiv_rn(1.0f, scale);
    for (int i = lane; i < count; i += lanes) {
      const int code = tq::nearest_code(boundaries, boundary_count, __fmul_rn(x[i], inverse));
      s.trial[first + i] = uint8_t(code);
      s.centroid[first + i] = table[code];
    }
    __syncwarp(team.mask);
    const float cross = lane_ordered_dot(team, x, s.centroid + first, count);
    const float self = lane_ordered_dot(team, s.centroid + first, s.centroid + first, count);
    if (!(self > 0) || !(cross > 0)) break;
    const float fitted = __fdiv_rn(cross, self);
    const float error = __fsub_rn(energy, __fmul_rn(cross, fitted));
    if (!(error < best_error)) break;
    best_error = error;
    best_scale = fitted;
    for (int i = lane; i < count; i += lanes) s.codes[first + i] = s.trial[first + i];
    __syncwarp(team.mask);
    scale = fitted;
  }
  if (best_scale == 0.0f) {
    for (int i = lane; i < count; i += lanes) s.codes[first + i] = zero_code;
    __syncwarp(team.mask);
  }
  return tq::f16_nearest_finite(best_scale);
}

// One block of up to 32 affine codes (`count`, fewer in a head size's last block): lane i
// quantizes coordinate first + i as tq's AffineBlockQuantizer does (tq/affine_fields.hpp).
__device__ void affine_block(WarpScratch& s, int first, int count, const RowCodec& codec, uint8_t* row) {
  const int lane = threadIdx.x % 32;
  const bool is_signed = codec.kind == kAffineSigned;
  const int top = tq::affine_top(codec.bits, is_signed);
  const float value = s.x[first + min(lane, count - 1)];  // lanes past the block repeat its last value
  float low = value, high = value;
  for (int offset = 16; offset > 0; offset /= 2) {
    low = fminf(low, __shfl_xor_sync(0xffffffffu, low, offset));
    high = fmaxf(high, __shfl_xor_sync(0xffffffffu, high, offset));
  }
  const tq::AffineFields fields = tq::affine_fields(low, high, top, is_signed);
  const float zero = tq::f16_bits_value(fields.zero_bits), inverse = tq::affine_inverse(fields);
  const float low_code = is_signed ? -float(top) : 0.0f;
  if (lane < count) s.codes[first + lane] = tq::affine_code(value, zero, inverse, low_code, float(top));
  if (lane == 0) {
    const int block = first / 32;
    store_half_bits(row + codec.scales_offset + 4 * block, fields.scale_bits);
    store_half_bits(row + codec.scales_offset + 4 * block + 2, fields.zero_bits);
  }
  __syncwarp();
}

__global__ void __launch_bounds__(kWarps * 32, kMinBlocks)
    write_kv_kernel(const WriteParams p, const __grid_constant__ TurboQuantRows::Codecs codecs) {
  allow_dependent_launch();  // the tensor-core attention kernel reads older rows meanwhile
  __shared__ WarpScratch scratch[kWarps];
  __shared__ float tables[2][256], bounds[2][255];
  const int key_entries = codebook_entries(codecs.key), value_entries = codebook_entries(codecs.value);
  for (int i = threadIdx.x; i < key_entries; i += blockDim.x) {
    tables[0][i] = codecs.key.table[i];
    if (i + 1 < key_entries) bounds[0][i] = codecs.key.boundaries[i];
  }
  for (int i = threadIdx.x; i < value_entries; i += blockDim.x) {
    tables[1][i] = codecs.value.table[i];
    if (i + 1 < value_entries) bounds[1][i] = codecs.value.boundaries[i];
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row_id = int64_t(blockIdx.x) * kWarps + warp;
  if (row_id >= int64_t(p.num_tokens) * p.num_kv_heads * 2) return;
  const int which = int(row_id % 2), head = int((row_id / 2) % p.num_kv_heads);
  const int token = int(row_id / (2 * p.num_kv_heads));
  const int64_t slot = p.slot_mapping[token];
  if (slot < 0 || slot >= p.num_pages * p.block_size) return;  // padding, or outside the pool: nothing written
  const RowCodec& codec = which == 0 ? codecs.key : codecs.value;
  const int d = p.head_size;
  uint8_t* row = p.pages + (slot / p.block_size) * int64_t(p.page_stride) + (which == 0 ? 0 : p.v_region_offset) +
                 (int64_t(head) * p.block_size + slot % p.block_size) * (which == 0 ? p.k_row_bytes : p.v_row_bytes);
  const void* source = which == 0 ? p.key : p.value;
  const int64_t base = token * (which == 0 ? p.key_token_stride : p.value_token_stride) +
                       head * (which == 0 ? p.key_head_stride : p.value_head_stride);
  WarpScratch& s = scratch[warp];
  for (int i = lane; i < d; i += 32) s.x[i] = load_element(source, base + i, p.dtype);
  __syncwarp();

  if (codec.kind == kPlainF32 || codec.kind == kPlainF16 || codec.kind == kPlainBf16) {
    for (int i = lane; i < d; i += 32) {
      if (codec.kind == kPlainF32)
        reinterpret_cast<float*>(row)[i] = s.x[i];
      else if (codec.kind == kPlainF16)
        reinterpret_cast<__half*>(row)[i] = __float2half_rn(s.x[i]);
      else
        reinterpret_cast<__nv_bfloat16*>(row)[i] = __float2bfloat16_rn(s.x[i]);
    }
    return;
  }
  if (const float* scales = smoothing_of(p.layer_tables, codec, head, d)) {
    // One rounding, as the CPU's fma(x, 1 / s, -mu) (s a power of two: 1 / s is exact).
    const float* means = centering_of(p.layer_tables, codec, head, d);
    for (int i = lane; i < d; i += 32) s.x[i] = fmaf(s.x[i], 1.0f / scales[i], means ? -means[i] : -0.0f);
    __syncwarp();
  }
  if (codec.rotated) {
    const RotationRef rotation{codec.rotation_seed, codec.layer_index, p.first_global_kv_head + head,
                               p.layer_tables == nullptr ? nullptr : p.layer_tables + int64_t(head) * 2 * d};
    rotate_by_warp(s.x, 1, d, rotation, false);
  }
  if (codec.kind == kCodebook) {
    // Blocks of at most 32 coordinates: four teams of 8 lanes fit four blocks at once (the fit is a
    // chain of dependent steps, too slow one block after another).
    const Team team = team_of(codec.block_size <= 32 ? 8 : 32);
    const int teams = 32 / team.size, team_index = team.base / team.size;
    for (int first = team_index * codec.block_size; first < d; first += teams * codec.block_size) {
      const uint16_t bits = fit_scaled_codes(team, s, first, min(codec.block_size, d - first), tables[which],
                                             bounds[which], codec.table_size - 1, codec.refinements);
      if (team.rank == 0) store_half_bits(row + codec.scales_offset + 2 * (first / codec.block_size), bits);
    }
    __syncwarp();
  } else {
    for (int first = 0; first < d; first += 32) affine_block(s, first, min(32, d - first), codec, row);
  }
  // Pack LSB first: byte k holds bits 8k .. 8k + 7 of the code stream.
  const int bits = codec.bits, code_bytes = d * bits / 8;
  for (int k = lane; k < code_bytes; k += 32) {
    unsigned byte = 0;
    for (int i = (8 * k) / bits; i <= (8 * k + 7) / bits && i < d; ++i) {
      const int shift = i * bits - 8 * k;
      const unsigned code = s.codes[i] & ((1u << bits) - 1u);
      byte |= shift >= 0 ? code << shift : code >> -shift;
    }
    row[codec.codes_offset + k] = uint8_t(byte & 0xffu);
  }
}

}  // namespace

Status TurboQuantRows::write_rows(const WriteParams& params, const Codecs& codecs, cudaStream_t stream) {
  const int64_t rows = int64_t(params.num_tokens) * params.num_kv_heads * 2;
  if (rows == 0) return Status::ok();
  if (params.head_size > kMaxHead) return Status::unsupported("CUDA write: head_size above 256");
  write_kv_kernel<<<unsigned((rows + kWarps - 1) / kWarps), kWarps * 32, 0, stream>>>(params, codecs);
  return plugin::cuda::last_launch_status("write kernel");
}

}  // namespace atb::turboquant::cuda
