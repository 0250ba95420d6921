// The split merge's instances for TurboQuant rows (it rotates merged outputs back).
#include <atb/plugin/cuda/merge_splits.cuh>

#include "turboquant_rows.cuh"

namespace atb::plugin::cuda {
using turboquant::cuda::TurboQuantRows;
template Status launch_merge_splits<TurboQuantRows>(const AttentionParams&, const TurboQuantRows::Codec&, int,
                                                    cudaStream_t);
}  // namespace atb::plugin::cuda
