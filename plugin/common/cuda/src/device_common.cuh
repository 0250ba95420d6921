// Device helpers shared by the CUDA kernels of the plugins.
#pragma once

#include <atb/abi.h>
#include <atb/plugin/cuda/paged_attention_cuda.hpp>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace atb::plugin::cuda {

// The K and V codecs of a layer, passed to a kernel by value.
struct Codecs {
  RowCodec key, value;
};

// Element `index` of a tensor of `dtype` (f32, f16 or bf16), as f32.
__device__ inline float load_element(const void* base, int64_t index, int32_t dtype) {
  if (dtype == ATB_DTYPE_F32) return static_cast<const float*>(base)[index];
  if (dtype == ATB_DTYPE_F16) return __half2float(static_cast<const __half*>(base)[index]);
  return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[index]);
}

}  // namespace atb::plugin::cuda
