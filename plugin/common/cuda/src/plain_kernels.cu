// The kernels of a layer with plain rows (the `reference` plugin on CUDA): the shared attention
// kernels instantiated with PlainRows, and the write of new rows (each element converted to the
// cache's type with round-to-nearest, as the CPU backend does).
#include <atb/plugin/cuda/device_common.cuh>
#include <atb/plugin/cuda/merge_splits.cuh>
#include <atb/plugin/cuda/paged_attention.cuh>
#include <atb/plugin/cuda/plain_decode_kernel.cuh>
#include <atb/plugin/cuda/plain_rows.cuh>
#include <atb/plugin/cuda/plain_rows.hpp>
#include <atb/plugin/cuda/prefill_attention.cuh>
#include <atb/plugin/cuda/simple_attention.cuh>
#include <atb/plugin/cuda/tiled_attention.cuh>

namespace atb::plugin::cuda {
namespace {

constexpr int kWriteThreads = 128;  // one block per row

__global__ void __launch_bounds__(kWriteThreads)
    write_plain_rows_kernel(const WriteParams p, const __grid_constant__ Codecs<PlainRows> codecs) {
  const int64_t row_id = blockIdx.x;
  const int which = int(row_id % 2), head = int((row_id / 2) % p.num_kv_heads);
  const int token = int(row_id / (2 * p.num_kv_heads));
  const int64_t slot = p.slot_mapping[token];
  if (slot < 0 || slot >= p.num_pages * p.block_size) return;  // padding, or outside the pool: nothing written
  const int32_t kind = which == 0 ? codecs.key.kind : codecs.value.kind;
  uint8_t* row = p.pages + (slot / p.block_size) * int64_t(p.page_stride) + (which == 0 ? 0 : p.v_region_offset) +
                 (int64_t(head) * p.block_size + slot % p.block_size) * (which == 0 ? p.k_row_bytes : p.v_row_bytes);
  const void* source = which == 0 ? p.key : p.value;
  const int64_t base = token * (which == 0 ? p.key_token_stride : p.value_token_stride) +
                       head * (which == 0 ? p.key_head_stride : p.value_head_stride);
  for (int i = threadIdx.x; i < p.head_size; i += blockDim.x) {
    const float x = load_element(source, base + i, p.dtype);
    if (kind == kPlainF32)
      reinterpret_cast<float*>(row)[i] = x;
    else if (kind == kPlainF16)
      reinterpret_cast<__half*>(row)[i] = __float2half_rn(x);
    else
      reinterpret_cast<__nv_bfloat16*>(row)[i] = __float2bfloat16_rn(x);
  }
}

}  // namespace

Status PlainRows::write_rows(const WriteParams& params, const Codecs<PlainRows>& codecs, cudaStream_t stream) {
  const int64_t rows = int64_t(params.num_tokens) * params.num_kv_heads * 2;
  if (rows == 0) return Status::ok();
  write_plain_rows_kernel<<<unsigned(rows), kWriteThreads, 0, stream>>>(params, codecs);
  return last_launch_status("write kernel");
}

Expected<std::unique_ptr<LayerKernels>> make_plain_kernels(const atb_layer_spec& spec, const CudaLayout& layout,
                                                           PlainCodec rows) {
  const AttentionParams shape = layer_shape(spec, layout);
  return PagedKernels<PlainRows>::create(shape, Codecs<PlainRows>{rows, rows}, {},
                                         plain_decode_kernel_for(shape, rows));
}

}  // namespace atb::plugin::cuda
