// The prefill attention kernel's instances for TurboQuant rows.
#include <atb/plugin/cuda/prefill_attention.cuh>

#include "turboquant_rows.cuh"

namespace atb::plugin::cuda {
using turboquant::cuda::TurboQuantRows;
template PrefillPlan plan_prefill_attention<TurboQuantRows>(const AttentionParams&, const TurboQuantRows::Codec&,
                                                            const TurboQuantRows::Codec&);
template Status launch_prefill_attention<TurboQuantRows>(const AttentionParams&, const Codecs<TurboQuantRows>&,
                                                         const PrefillPlan&, cudaStream_t);
}  // namespace atb::plugin::cuda
