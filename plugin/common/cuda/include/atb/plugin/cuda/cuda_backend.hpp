// A backend whose forward runs on a CUDA device: the page layout is the CPU backend's (pages are
// portable between devices), the plugin hands it the layer's kernels (planned at create), and
// forward only enqueues them on the host's stream.  Both plugins build theirs from this one class.
#pragma once

#include <atb/kit/plugin_definition.hpp>
#include <atb/plugin/cuda/layer_kernels.hpp>

#include <memory>

namespace atb::plugin::cuda {

class CudaBackend final : public kit::BackendImpl {
 public:
  // Uploads the kernels' tables to the layer's device.
  static Expected<std::unique_ptr<kit::BackendImpl>> create(const atb_layer_spec& spec, const CudaLayout& layout,
                                                            std::unique_ptr<LayerKernels> kernels);
  atb_kv_cache_spec cache_spec() const override { return layout_.cache; }
  Status forward(const kit::ForwardBatch& batch) override;

 private:
  atb_layer_spec spec_;
  CudaLayout layout_;
  CudaBackend(const atb_layer_spec& spec, const CudaLayout& layout, std::unique_ptr<LayerKernels> kernels,
              DeviceBytes tables);

  std::unique_ptr<LayerKernels> kernels_;
  DeviceBytes tables_;            // kernels_->tables() on the device
  AttentionParams attend_shape_;  // the layer's fields (layer_shape)
  WriteParams write_shape_;       // the layer's fields (layer_write_shape)
};

// The checks every CUDA layer needs before its kernels are planned: a device, a served head size.
Status check_cuda_layer(const atb_layer_spec& spec);

}  // namespace atb::plugin::cuda
