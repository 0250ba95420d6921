// A TurboQuant layer on a CUDA device: the CPU backend's page layout, the kernels of this folder.
#pragma once

#include <atb/abi.h>
#include <atb/kit/plugin_definition.hpp>
#include <atb/status.hpp>

#include <memory>

#include "turboquant_config.hpp"

namespace atb::turboquant::cuda {

Expected<std::unique_ptr<kit::BackendImpl>> make_cuda_backend(const atb_layer_spec& spec,
                                                              const TurboquantConfig& config);

}  // namespace atb::turboquant::cuda
