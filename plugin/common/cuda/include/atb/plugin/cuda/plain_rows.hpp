// Uncompressed rows on CUDA, host side: their kinds and the kernels of a layer that stores them.
#pragma once

#include <atb/abi.h>
#include <atb/plugin/cuda/layer_kernels.hpp>

#include <cstdint>
#include <memory>

namespace atb::plugin::cuda {

// Element types of plain rows; formats with other kinds number them from kPlainKinds on.
enum PlainKind : int32_t {
  kPlainF32 = 0,
  kPlainF16 = 1,
  kPlainBf16 = 2,
  kPlainKinds = 3,
};

// The plain row kind storing `dtype` (an atb_dtype: f32, f16 or bf16).
constexpr int32_t plain_row_kind(int32_t dtype) {
  return dtype == ATB_DTYPE_F32 ? kPlainF32 : dtype == ATB_DTYPE_F16 ? kPlainF16 : kPlainBf16;
}

struct PlainCodec {
  int32_t kind = kPlainF32;  // PlainKind
};

// The kernels of a layer whose K and V rows are plain rows of `kind`.
Expected<std::unique_ptr<LayerKernels>> make_plain_kernels(const atb_layer_spec& spec, const CudaLayout& layout,
                                                           PlainCodec rows);

}  // namespace atb::plugin::cuda
