// The tiled attention kernel's instances for TurboQuant rows.
#include <atb/plugin/cuda/tiled_attention.cuh>

#include "turboquant_rows.cuh"

namespace atb::plugin::cuda {
using turboquant::cuda::TurboQuantRows;
template Expected<TiledPlan<TurboQuantRows>> plan_tiled_attention<TurboQuantRows>(const AttentionParams&,
                                                                                  const TurboQuantRows::Codec&,
                                                                                  const TurboQuantRows::Codec&);
template Status launch_tiled_attention<TurboQuantRows>(const AttentionParams&, const Codecs<TurboQuantRows>&,
                                                       const TiledPlan<TurboQuantRows>&, int, cudaStream_t);
}  // namespace atb::plugin::cuda
