// The tensor-core decode kernel of TurboQuant's quantized rows (mma_attention_cuda.cu): the
// instance for a layer's format pair, planned at create; none where it has no instance.
#pragma once

#include <atb/plugin/cuda/attention_launch.hpp>
#include <atb/plugin/cuda/attention_params.hpp>

#include "row_codec.hpp"

namespace atb::turboquant::cuda {

struct TurboQuantRows;

// `shape`: the layer's fields of AttentionParams (plugin::cuda::layer_shape).
plugin::cuda::OwnDecodeKernel<TurboQuantRows> mma_attention_kernel_for(const plugin::cuda::AttentionParams& shape,
                                                                       const RowFormat& key, const RowFormat& value);

}  // namespace atb::turboquant::cuda
