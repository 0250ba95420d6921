// The tensor-core decode kernel of TurboQuant's quantized rows (mma_attention_kernel.cuh): the
// instance for a layer's format pair and head size, planned at create; none where it has no instance.
#pragma once

#include <atb/plugin/cuda/attention_launch.hpp>
#include <atb/plugin/cuda/attention_params.hpp>

#include <tq/format_table.hpp>

#include "row_codec.hpp"

namespace atb::turboquant::cuda {

struct TurboQuantRows;

// `shape`: the layer's fields of AttentionParams (plugin::cuda::layer_shape).
plugin::cuda::OwnDecodeKernel<TurboQuantRows> mma_attention_kernel_for(const plugin::cuda::AttentionParams& shape,
                                                                       const RowFormat& key, const RowFormat& value);

// The instances of one head size (64, 128 or 256), each built in its own mma_attention_d<D>.cu;
// `split`: f32 queries and outputs (operands split into fp16 high parts and remainders).
template <int D>
plugin::cuda::OwnDecodeKernel<TurboQuantRows> tensor_core_instance(const tq::Format& key, const tq::Format& value,
                                                                   bool split);

}  // namespace atb::turboquant::cuda
