// A TurboQuant layer's kernels: the shared ones instantiated with TurboQuantRows (their instances
// are built in the *_instances.cu files beside this one), with the tensor-core decode kernel as
// the format's own where it has an instance for the layer.
#include <atb/plugin/cuda/paged_attention.cuh>

#include <utility>

#include "mma_attention.hpp"
#include "turboquant_kernels.hpp"
#include "turboquant_rows.cuh"

namespace atb::turboquant::cuda {

Expected<std::unique_ptr<plugin::cuda::LayerKernels>> make_turboquant_kernels(const atb_layer_spec& spec,
                                                                              const plugin::cuda::CudaLayout& layout,
                                                                              const RowFormat& key,
                                                                              const RowFormat& value,
                                                                              std::vector<uint8_t> tables) {
  const plugin::cuda::AttentionParams shape = plugin::cuda::layer_shape(spec, layout);
  return plugin::cuda::PagedKernels<TurboQuantRows>::create(shape, TurboQuantRows::Codecs{key.codec, value.codec},
                                                            std::move(tables),
                                                            mma_attention_kernel_for(shape, key, value));
}

}  // namespace atb::turboquant::cuda
