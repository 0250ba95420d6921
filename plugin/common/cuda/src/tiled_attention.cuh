// The fast attention kernel: each warp streams 16-row tiles of K and V codes of a page into shared
// memory with 16-byte asynchronous copies, several tiles deep, and decodes each row once in
// registers for every query head of its chunk of the GQA group.  Served where pages are 16-byte
// aligned, the page size is a multiple of 16 tokens and a tile fits the shared-memory budget;
// the simple kernel takes every other layer.
#pragma once

#include <atb/plugin/cuda/paged_attention_cuda.hpp>
#include <atb/status.hpp>

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "device_common.cuh"

namespace atb::plugin::cuda {

// A row format fixed at compile time: kind * 16 + code bits; kAnyForm reads the codec at run time.
constexpr int row_form(int kind, int bits) { return kind * 16 + bits; }
constexpr int kAnyForm = -1;

using TiledKernel = void (*)(const AttentionParams, const Codecs, int, uint32_t, int);

// The tensor-core kernel of a layer and the dynamic shared memory of its blocks; kernel nullptr
// where it has no instance for the layer's head size and K/V row layouts.  It serves groups of up
// to 8 query heads; its tile pipeline is fixed by the instance (the stage arguments are unused).
struct TensorCoreKernel {
  TiledKernel kernel = nullptr;
  size_t shared_bytes = 0;
};
TensorCoreKernel mma_attention_kernel_for(const AttentionParams& p, const RowCodec& key, const RowCodec& value);

struct TiledPlan {
  int stages = 0;                            // tiles in flight per warp; 0: the tiled kernel does not serve the layer
  int heads_per_block = 0;                   // G: query heads of one KV head served by one block
  uint32_t stage_bytes = 0;                  // one tile of K rows, then of V rows, then slack for the word loader
  size_t shared_bytes = 0;                   // dynamic shared memory of one block
  int fast_pair = -1;                        // the K/V format pair's own kernel (head size 128, 4 heads), or -1
  TiledKernel tensor_core_kernel = nullptr;  // takes the layer where set (heads_per_block 8)
};

TiledPlan plan_tiled_attention(const AttentionParams& p, const RowCodec& key, const RowCodec& value);

// Thread blocks per split of the launch that `plan` describes (tokens x KV heads x chunks).
int tiled_blocks_per_split(const AttentionParams& p, const TiledPlan& plan);

// Blocks of the tiled kernel one multiprocessor holds at once.
int tiled_resident_blocks(const AttentionParams& p, const TiledPlan& plan);

Status launch_tiled_attention(const AttentionParams& p, const Codecs& codecs, const TiledPlan& plan, int splits,
                              cudaStream_t stream);

}  // namespace atb::plugin::cuda
