// One layer's kernels for a row format (row_format.cuh), planned at create and run per forward in
// FlashInfer's manner: the constructor picks the decode kernel (the format's own, the tiled or the
// simple one) and the prefill kernel for the layer's shape; attend() only schedules the batch (how
// many splits of each context) and launches.  A plugin instantiates PagedKernels<Rows> in one of its
// .cu files, beside explicit instances of the launch functions (attention_launch.hpp).
#pragma once

#include <atb/abi.h>
#include <atb/plugin/cuda/attention_launch.hpp>
#include <atb/plugin/cuda/attention_params.hpp>
#include <atb/plugin/cuda/launch_schedule.hpp>
#include <atb/plugin/cuda/layer_kernels.hpp>
#include <atb/plugin/cuda/tile_pipeline.cuh>

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "dependent_launch.cuh"

namespace atb::plugin::cuda {

template <class Rows>
class PagedKernels final : public LayerKernels {
 public:
  // Plans the layer; `own` is the format's own decode kernel for it, if it has one.
  static Expected<std::unique_ptr<LayerKernels>> create(const AttentionParams& shape, const Codecs<Rows>& codecs,
                                                        std::vector<uint8_t> tables, OwnDecodeKernel<Rows> own = {}) {
    auto tiled = plan_tiled_attention<Rows>(shape, codecs.key, codecs.value);
    if (!tiled) return tiled.error();
    std::unique_ptr<PagedKernels> kernels(new PagedKernels(codecs, std::move(tables)));
    kernels->tiled_ = *tiled;
    kernels->prefill_ = plan_prefill_attention<Rows>(shape, codecs.key, codecs.value);
    // The own kernels copy 16-row tiles of a page in 16-byte pieces, as the tiled kernel does (which
    // may plan nothing where they serve: head size 256's tiles outgrow its stages).  A group larger
    // than a block's heads takes several blocks per KV head, which read its rows from L2 after the first.
    const bool tiles_fit = shape.v_region_offset % 16 == 0 && shape.block_size % kTileRows == 0;
    if (own.kernel != nullptr && tiles_fit) {
      auto resident = prepare_kernel(reinterpret_cast<const void*>(own.kernel), own.threads,
                                     std::max(kStageBudget + 8192, own.shared_bytes), own.shared_bytes);
      if (!resident) return resident.error();
      kernels->own_ = own;
      kernels->own_resident_ = *resident;
    }
    return std::unique_ptr<LayerKernels>(std::move(kernels));
  }

  Status write(const WriteParams& params, void* stream) const override {
    return Rows::write_rows(params, *codecs_, static_cast<cudaStream_t>(stream));
  }

  Status attend(const AttentionParams& params, void* stream) const override {
    if (params.num_tokens == 0) return Status::ok();
    const auto s = static_cast<cudaStream_t>(stream);
    // The planned kernels copy 16-byte pieces of pages: the host's pool must be aligned for them.
    const bool aligned = reinterpret_cast<uintptr_t>(params.pages) % 16 == 0 && params.page_stride % 16 == 0;
    const bool prefill = aligned && prefill_.heads_padded > 0 && params.num_tokens > params.num_seqs;
    AttentionParams p = params;
    p.decode_tokens_only = prefill ? 1 : 0;
    enum class Decode { own, tiled, simple };
    const Decode decode = !aligned                   ? Decode::simple
                          : own_.kernel != nullptr   ? Decode::own
                          : tiled_.kernel != nullptr ? Decode::tiled
                                                     : Decode::simple;
    int blocks, resident;
    if (decode == Decode::own) {
      blocks = blocks_per_split(p, own_.heads_per_block);
      resident = own_resident_;
    } else if (decode == Decode::tiled) {
      blocks = blocks_per_split(p, tiled_.heads_per_block);
      resident = tiled_.resident_blocks;
    } else {
      blocks = blocks_per_split(p, kSimpleHeadsPerBlock);
      resident = 4;
    }
    // Splits make whole waves of resident blocks where the batch alone does not, as far as the
    // workspace holds their states.
    const int slots = resident * multiprocessors();
    int splits = splits_filling_waves(blocks, slots, decode != Decode::simple);
    const uint64_t per_split =
        uint64_t(p.num_tokens) * uint64_t(p.num_query_heads) * uint64_t(p.head_size + 2) * sizeof(float);
    splits = int(std::min<uint64_t>(uint64_t(splits), p.workspace == nullptr ? 1 : p.workspace_bytes / per_split));
    splits = std::max(splits, 1);
    p.uneven_splits = double(blocks) * splits > 1.5 * slots ? 1 : 0;
    switch (decode) {
      case Decode::own:
        ATB_RETURN_IF_ERROR(launch_own(p, blocks, splits, s));
        break;
      case Decode::tiled:
        ATB_RETURN_IF_ERROR(launch_tiled_attention<Rows>(p, *codecs_, tiled_, splits, s));
        break;
      case Decode::simple:
        ATB_RETURN_IF_ERROR(launch_simple_attention<Rows>(p, *codecs_, splits, s));
        break;
    }
    if (splits > 1) ATB_RETURN_IF_ERROR(launch_merge_splits<Rows>(p, codecs_->value, splits, s));
    if (prefill) ATB_RETURN_IF_ERROR(launch_prefill_attention<Rows>(params, *codecs_, prefill_, s));
    return Status::ok();
  }

  const std::vector<uint8_t>& tables() const override { return tables_; }

 private:
  PagedKernels(const Codecs<Rows>& codecs, std::vector<uint8_t> tables)
      : codecs_(std::make_unique<Codecs<Rows>>(codecs)), tables_(std::move(tables)) {}

  // The format's own kernel; where the write kernel runs just before, it starts while that one
  // runs and waits for it where it must (AttentionParams::overlaps_write).
  Status launch_own(const AttentionParams& p, int blocks, int splits, cudaStream_t stream) const {
    const dim3 grid{unsigned(blocks), unsigned(splits)};
    if (p.overlaps_write)
      return launch_dependent(own_.kernel, grid, dim3(own_.threads), own_.shared_bytes, stream,
                              "tensor-core attention kernel", p, *codecs_, splits);
    const auto kernel = own_.kernel;
    kernel<<<grid, dim3(own_.threads), own_.shared_bytes, stream>>>(p, *codecs_, splits);
    return last_launch_status("tensor-core attention kernel");
  }

  std::unique_ptr<Codecs<Rows>> codecs_;  // kept off the stack of every call (a codec may hold KBs of tables)
  std::vector<uint8_t> tables_;
  TiledPlan<Rows> tiled_;
  PrefillPlan prefill_;
  OwnDecodeKernel<Rows> own_;
  int own_resident_ = 1;
};

}  // namespace atb::plugin::cuda
