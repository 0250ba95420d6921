// Validation of atb_forward_args into a ForwardBatch (kit-internal).
#pragma once

#include <atb/abi.h>
#include <atb/kit/forward_batch.hpp>
#include <atb/status.hpp>

namespace atb::kit {

// Every check the ABI promises, done before anything is written.  `spec` has defaults applied.
Expected<ForwardBatch> validate_forward(const atb_layer_spec& spec, const atb_kv_cache_spec& cache,
                                        const atb_forward_args* args);

}  // namespace atb::kit
