// The tensor-core decode kernel's instance for a layer: by head size (mma_attention_d*.cu), where
// the K codebook is one the kernel reads.
#include "mma_attention.hpp"

namespace atb::turboquant::cuda {
namespace {

// Whether a 16-entry codebook holds entry 15 - e = -entry e exactly (KeyPlanes keeps entries 0-7;
// other tables take the CUDA-core kernel).
bool antisymmetric(const RowCodec& codec) {
  if (codec.table_size != 16) return false;
  for (int e = 0; e < 8; ++e)
    if (codec.table[15 - e] != -codec.table[e]) return false;
  return true;
}

}  // namespace

plugin::cuda::OwnDecodeKernel<TurboQuantRows> mma_attention_kernel_for(const plugin::cuda::AttentionParams& shape,
                                                                       const RowFormat& key, const RowFormat& value) {
  // KeyPlanes reads 4-bit codebooks as antisymmetric (the sphere's are; checked, not assumed).
  if (key.codec.kind == kCodebook && key.codec.bits == 4 && !antisymmetric(key.codec)) return {};
  const bool split = shape.io_dtype == ATB_DTYPE_F32;  // 16-bit queries and outputs: single fp16 operands
  switch (shape.head_size) {
    case 64:
      return tensor_core_instance<64>(key.format, value.format, split);
    case 128:
      return tensor_core_instance<128>(key.format, value.format, split);
    case 256:
      return tensor_core_instance<256>(key.format, value.format, split);
    default:
      return {};
  }
}

}  // namespace atb::turboquant::cuda
