// The tensor-core decode kernel's instances at head size 64 (one file per size: they build in parallel).
#include "mma_attention_kernel.cuh"

namespace atb::turboquant::cuda {
template plugin::cuda::OwnDecodeKernel<TurboQuantRows> tensor_core_instance<64>(const tq::Format&, const tq::Format&,
                                                                                bool);
}  // namespace atb::turboquant::cuda
