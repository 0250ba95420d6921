#include <atb/plugin/cuda/cuda_backend.hpp>

#include <string>
#include <utility>

namespace atb::plugin::cuda {

Expected<std::unique_ptr<kit::BackendImpl>> CudaBackend::create(const atb_layer_spec& spec, const CudaLayout& layout,
                                                                std::unique_ptr<LayerKernels> kernels) {
  auto tables = DeviceBytes::upload(spec.device_id, kernels->tables());
  if (!tables) return tables.error();
  return std::unique_ptr<kit::BackendImpl>(new CudaBackend(spec, layout, std::move(kernels), std::move(*tables)));
}

CudaBackend::CudaBackend(const atb_layer_spec& spec, const CudaLayout& layout, std::unique_ptr<LayerKernels> kernels,
                         DeviceBytes tables)
    : spec_(spec),
      layout_(layout),
      kernels_(std::move(kernels)),
      tables_(std::move(tables)),
      attend_shape_(layer_shape(spec, layout)),
      write_shape_(layer_write_shape(spec, layout)) {
  layout_.cache.workspace_bytes = attention_workspace_bytes(spec.num_query_heads, spec.head_size_v);
}

AttentionParams layer_shape(const atb_layer_spec& spec, const CudaLayout& layout) {
  AttentionParams shape;
  shape.io_dtype = spec.dtype;
  shape.num_query_heads = spec.num_query_heads;
  shape.num_kv_heads = spec.num_kv_heads;
  shape.first_global_kv_head = spec.first_global_kv_head;
  shape.head_size = spec.head_size_v;
  shape.block_size = spec.block_size;
  shape.sliding_window = spec.sliding_window;
  shape.soft_cap = spec.logits_soft_cap;
  shape.scale = spec.scale;
  shape.k_row_bytes = layout.cache.k_bytes_per_token_per_head;
  shape.v_row_bytes = layout.cache.v_bytes_per_token_per_head;
  shape.v_region_offset = layout.v_region_offset;
  return shape;
}

WriteParams layer_write_shape(const atb_layer_spec& spec, const CudaLayout& layout) {
  WriteParams shape;
  shape.num_kv_heads = spec.num_kv_heads;
  shape.first_global_kv_head = spec.first_global_kv_head;
  shape.head_size = spec.head_size_k;
  shape.block_size = spec.block_size;
  shape.k_row_bytes = layout.cache.k_bytes_per_token_per_head;
  shape.v_row_bytes = layout.cache.v_bytes_per_token_per_head;
  shape.v_region_offset = layout.v_region_offset;
  return shape;
}

Status CudaBackend::forward(const kit::ForwardBatch& batch) {
  const uint8_t* tables = tables_.data();
  if (spec_.kv_shared_with_layer < 0) {
    WriteParams write = write_shape_;
    write.key = batch.key.data;
    write.key_token_stride = batch.key.strides[0];
    write.key_head_stride = batch.key.strides[1];
    write.value = batch.value.data;
    write.value_token_stride = batch.value.strides[0];
    write.value_head_stride = batch.value.strides[1];
    write.dtype = batch.key.dtype;
    write.slot_mapping = batch.slot_mapping;
    write.pages = reinterpret_cast<uint8_t*>(batch.pages);
    write.page_stride = batch.page_stride_bytes;
    write.num_pages = batch.num_pages;
    write.num_tokens = batch.num_tokens;
    write.layer_tables = tables;
    ATB_RETURN_IF_ERROR(kernels_->write(write, batch.stream));
  }
  if (batch.write_kv_only) return Status::ok();
  AttentionParams p = attend_shape_;
  p.query = batch.query.data;
  p.query_token_stride = batch.query.strides[0];
  p.query_head_stride = batch.query.strides[1];
  p.output = batch.output.data;
  p.output_token_stride = batch.output.strides[0];
  p.output_head_stride = batch.output.strides[1];
  p.pages = reinterpret_cast<const uint8_t*>(batch.pages);
  p.page_stride = batch.page_stride_bytes;
  p.num_pages = batch.num_pages;
  p.query_start_loc = batch.query_start_loc;
  p.seq_lens = batch.seq_lens;
  p.block_tables = batch.block_tables;
  p.block_table_stride = batch.block_table_stride;
  p.num_seqs = batch.num_seqs;
  p.num_tokens = batch.num_tokens;
  p.workspace = batch.workspace;
  p.workspace_bytes = batch.workspace_bytes;
  p.layer_tables = tables;
  p.overlaps_write = spec_.kv_shared_with_layer < 0 && batch.num_tokens > 0 ? 1 : 0;  // the write kernel launched
  return kernels_->attend(p, batch.stream);
}

Status check_cuda_layer(const atb_layer_spec& spec) {
  if (!device_available())
    return Status::unsupported("layer_spec.device_type = 2 (CUDA): no CUDA device is usable on this machine");
  if (spec.head_size_k != spec.head_size_v || !head_size_supported(spec.head_size_k))
    return Status::unsupported("layer_spec.head_size_k = " + std::to_string(spec.head_size_k) +
                               ", head_size_v = " + std::to_string(spec.head_size_v) +
                               " on CUDA; allowed: equal, and 16, 32, 48, 64, 80, 96, 112, 128, 160, 192 or 256");
  return Status::ok();
}

}  // namespace atb::plugin::cuda
