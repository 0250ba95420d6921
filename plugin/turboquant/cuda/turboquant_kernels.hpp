// The CUDA kernels of a TurboQuant layer (turboquant_kernels.cu), host side.
#pragma once

#include <atb/abi.h>
#include <atb/plugin/cuda/layer_kernels.hpp>
#include <atb/status.hpp>

#include <cstdint>
#include <memory>
#include <vector>

#include "row_codec.hpp"

namespace atb::turboquant::cuda {

// Plans the layer's kernels for its K and V formats; `tables` are the bytes the kernels read from the
// layer's own device memory (layer_tables: rotation permutations, smoothing scales; often empty).
Expected<std::unique_ptr<plugin::cuda::LayerKernels>> make_turboquant_kernels(const atb_layer_spec& spec,
                                                                              const plugin::cuda::CudaLayout& layout,
                                                                              const RowFormat& key,
                                                                              const RowFormat& value,
                                                                              std::vector<uint8_t> tables);

}  // namespace atb::turboquant::cuda
