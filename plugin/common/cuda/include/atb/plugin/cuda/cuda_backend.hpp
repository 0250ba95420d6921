// A backend whose forward runs on a CUDA device: the page layout is the CPU backend's (pages are
// portable between devices), rows are described by RowCodecs, and forward only enqueues the write
// and attention kernels on the host's stream.  Both plugins build theirs from this one class.
#pragma once

#include <atb/kit/plugin_definition.hpp>
#include <atb/plugin/cuda/paged_attention_cuda.hpp>

#include <memory>

namespace atb::plugin::cuda {

struct CudaLayout {
  atb_kv_cache_spec cache;  // of the CPU backend; workspace_bytes is added here
  uint64_t v_region_offset = 0;
};

class CudaBackend final : public kit::BackendImpl {
 public:
  CudaBackend(const atb_layer_spec& spec, const CudaLayout& layout, const RowCodec& key, const RowCodec& value,
              RotationTables rotation = {});
  atb_kv_cache_spec cache_spec() const override { return layout_.cache; }
  Status forward(const kit::ForwardBatch& batch) override;

 private:
  atb_layer_spec spec_;
  CudaLayout layout_;
  std::unique_ptr<RowCodec> key_, value_;  // 2 KB each: kept off the stack of every call
  RotationTables rotation_;
  uint64_t rotation_region_ = 0;  // workspace bytes in front of the attention's, holding rotation_
};

// The checks every CUDA layer needs before its codecs are built: a device, a served head size.
Status check_cuda_layer(const atb_layer_spec& spec);

}  // namespace atb::plugin::cuda
