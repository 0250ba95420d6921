// The tensor-core decode kernel of plain 16-bit rows (src/plain_decode_kernel.cu), planned at a
// layer's create as PlainRows' own decode kernel (PagedKernels).
#pragma once

#include <atb/plugin/cuda/attention_launch.hpp>
#include <atb/plugin/cuda/attention_params.hpp>
#include <atb/plugin/cuda/plain_rows.cuh>

namespace atb::plugin::cuda {

// The kernel for a layer of `shape` whose rows are `rows`: head size 64, 128 or 256, bf16 or f16 rows with
// queries and outputs of the same type; none (kernel nullptr) for any other layer.
OwnDecodeKernel<PlainRows> plain_decode_kernel_for(const AttentionParams& shape, const PlainCodec& rows);

}  // namespace atb::plugin::cuda
