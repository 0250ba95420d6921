// The tensor-core prefill kernel (prefill_attention_cuda.cu): sequences with more than
// kDecodeQueryTokens new tokens in the batch go through it; the decode kernels then skip them.
#pragma once

#include <atb/plugin/cuda/paged_attention_cuda.hpp>
#include <atb/status.hpp>

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "attention_common.cuh"

namespace atb::plugin::cuda {

struct PrefillPlan {
  int heads_padded = 0;      // the group size rounded up to 1, 2, 4 or 8; 0: the kernel does not serve the batch
  uint32_t stage_bytes = 0;  // one raw tile of K rows then V rows, plus slack
  size_t shared_bytes = 0;
};

PrefillPlan plan_prefill_attention(const AttentionParams& p, const RowCodec& key, const RowCodec& value);

Status launch_prefill_attention(const AttentionParams& p, const Codecs& codecs, const PrefillPlan& plan,
                                cudaStream_t stream);

}  // namespace atb::plugin::cuda
