// Device helpers shared by the CUDA kernels of the plugins.
#pragma once

#include <atb/abi.h>
#include <atb/plugin/cuda/attention_params.hpp>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace atb::plugin::cuda {

__device__ inline float to_float(float x) { return x; }
__device__ inline float to_float(__half x) { return __half2float(x); }
__device__ inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

// Element `index` of a tensor of `dtype` (f32, f16 or bf16), as f32.
__device__ inline float load_element(const void* base, int64_t index, int32_t dtype) {
  if (dtype == ATB_DTYPE_F32) return to_float(static_cast<const float*>(base)[index]);
  if (dtype == ATB_DTYPE_F16) return to_float(static_cast<const __half*>(base)[index]);
  return to_float(static_cast<const __nv_bfloat16*>(base)[index]);
}

__device__ inline void store_element(void* base, int64_t index, int32_t dtype, float value) {
  if (dtype == ATB_DTYPE_F32)
    static_cast<float*>(base)[index] = value;
  else if (dtype == ATB_DTYPE_F16)
    static_cast<__half*>(base)[index] = __float2half_rn(value);
  else
    static_cast<__nv_bfloat16*>(base)[index] = __float2bfloat16_rn(value);
}

// Programmatic dependent launch (Hopper): lets the kernel launched next on the stream with that
// attribute start while this one still runs (a no-op for any other launch).
__device__ inline void allow_dependent_launch() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

// Until the kernel before this one on the stream has completed and its writes are visible (at once
// where this kernel was not launched early by allow_dependent_launch).
__device__ inline void wait_for_previous_kernel() { asm volatile("griddepcontrol.wait;" ::: "memory"); }

// 2^x (0 for -inf), one MUFU instruction: relative error ~2^-22, far inside the bounds the tests
// state.
__device__ inline float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// An fp16 stored little-endian at any even or odd byte address.
__device__ inline float load_half_bytes(const uint8_t* at) {
  const unsigned short bits = static_cast<unsigned short>(at[0] | (at[1] << 8));
  return __half2float(__ushort_as_half(bits));
}

}  // namespace atb::plugin::cuda
