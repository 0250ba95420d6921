// The simple attention kernel's instances for TurboQuant rows.
#include <atb/plugin/cuda/simple_attention.cuh>

#include "turboquant_rows.cuh"

namespace atb::plugin::cuda {
using turboquant::cuda::TurboQuantRows;
// A block rotates its queries in shared memory, and a permutation's values are held in registers:
// the largest head size that is not a power of two (192) times the heads of a block must fit.
static_assert(kSimpleHeadsPerBlock * 192 <= turboquant::cuda::kPermutedPerThread * kSimpleThreads,
              "the rotation's permutation holds a block's queries");
template Status launch_simple_attention<TurboQuantRows>(const AttentionParams&, const Codecs<TurboQuantRows>&, int,
                                                        cudaStream_t);
}  // namespace atb::plugin::cuda
