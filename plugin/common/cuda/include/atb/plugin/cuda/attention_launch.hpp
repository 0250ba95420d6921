// The launch functions of the shared attention kernels, one per kernel file, each a template over
// the row format (row_format.cuh).  A plugin instantiates the ones it uses for its Rows, each in a
// .cu file of its own (the definitions: simple_attention.cuh, tiled_attention.cuh,
// prefill_attention.cuh, merge_splits.cuh); PagedKernels (paged_attention.cuh) calls them.
#pragma once

#include <atb/plugin/cuda/attention_params.hpp>
#include <atb/plugin/cuda/layer_kernels.hpp>
#include <atb/plugin/cuda/row_format.cuh>
#include <atb/status.hpp>

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace atb::plugin::cuda {

// The simple kernel: every head size, group and page layout.
template <class Rows>
Status launch_simple_attention(const AttentionParams& p, const Codecs<Rows>& codecs, int splits, cudaStream_t stream);

// Query heads of one KV head a block of the simple kernel serves where the group is larger, and
// its threads.
constexpr int kSimpleHeadsPerBlock = 4;
constexpr int kSimpleThreads = 128;

template <class Rows>
using TiledKernel = void (*)(const AttentionParams, const Codecs<Rows>, int stages, uint32_t stage_bytes, int splits);

// The tiled kernel of a layer, planned at create.
template <class Rows>
struct TiledPlan {
  TiledKernel<Rows> kernel = nullptr;  // nullptr: the tiled kernel does not serve the layer
  int stages = 0;                      // tiles in flight per warp
  int heads_per_block = 0;             // G: query heads of one KV head served by one block
  uint32_t stage_bytes = 0;            // one tile of K rows, then of V rows, then slack for the word loader
  size_t shared_bytes = 0;             // dynamic shared memory of one block
  int resident_blocks = 1;             // blocks one multiprocessor holds at once
};

// `shape` holds the layer's fields of AttentionParams (heads, head size, block size, row bytes,
// V region offset, io dtype); the pages' own alignment is checked per forward (pages_aligned).
template <class Rows>
Expected<TiledPlan<Rows>> plan_tiled_attention(const AttentionParams& shape, const typename Rows::Codec& key,
                                               const typename Rows::Codec& value);

template <class Rows>
Status launch_tiled_attention(const AttentionParams& p, const Codecs<Rows>& codecs, const TiledPlan<Rows>& plan,
                              int splits, cudaStream_t stream);

// The tensor-core prefill kernel of a layer, planned at create: sequences with more than
// kDecodeQueryTokens new tokens in a batch go through it; the decode kernels then skip them.
struct PrefillPlan {
  int heads_padded = 0;     // the group size rounded up to 1, 2, 4 or 8; 0: the kernel does not serve the layer
  uint32_t tile_bytes = 0;  // one raw 16-row tile of K rows then V rows, plus slack; a step holds four
  int fast_pair = -1;       // index into Rows::kPrefillPairs of the layer's (K, V) forms; -1: none
  size_t shared_bytes = 0;
};

template <class Rows>
PrefillPlan plan_prefill_attention(const AttentionParams& shape, const typename Rows::Codec& key,
                                   const typename Rows::Codec& value);

template <class Rows>
Status launch_prefill_attention(const AttentionParams& p, const Codecs<Rows>& codecs, const PrefillPlan& plan,
                                cudaStream_t stream);

// The merge of `splits` partial states per (token, query head) into the output, launched to start
// while the attention kernel before it runs.
template <class Rows>
Status launch_merge_splits(const AttentionParams& p, const typename Rows::Codec& value, int splits,
                           cudaStream_t stream);

// A format's own decode kernel (a tensor-core kernel whose row layout is fixed at compile time),
// planned at create by the plugin; it takes the place of the tiled kernel.
template <class Rows>
struct OwnDecodeKernel {
  void (*kernel)(const AttentionParams, const Codecs<Rows>, int splits) = nullptr;
  size_t shared_bytes = 0;
  int heads_per_block = 0;  // query heads of one KV head a block serves (the group may be smaller)
  int threads = 0;
};

}  // namespace atb::plugin::cuda
