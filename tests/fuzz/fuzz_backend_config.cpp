// libFuzzer: create_backend of both plugins, through the SDK registry, with config bytes and layer
// specs drawn from the input.  Nothing may crash or touch memory it does not own (ASan + UBSan), a
// refusal must carry a message, and a backend that is created must report a usable KV-cache spec.
#include <atb/host/registry.hpp>
#include <atb/struct_io.hpp>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

const atb::host::Registry& registry() {
  static const atb::host::Registry scanned = atb::host::Registry::scan({ATB_FUZZ_PLUGIN_DIR}, false);
  return scanned;
}

template <class T, size_t N>
T pick(const std::array<T, N>& choices, uint8_t byte) {
  return choices[byte % N];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 6) return 0;
  const std::array<const char*, 2> backends = {"turboquant", "reference"};
  auto plugin = registry().select(pick(backends, data[0]));
  if (!plugin) std::abort();  // the build puts both plugins in ATB_FUZZ_PLUGIN_DIR

  atb_layer_spec spec = atb::make_versioned<atb_layer_spec>();
  spec.attention_kind = ATB_ATTENTION_STANDARD;
  spec.device_type = ATB_DEVICE_CPU;
  spec.num_kv_heads = pick(std::array{1, 2, 8, 0, -1}, data[1]);
  spec.num_query_heads = spec.num_kv_heads * pick(std::array{1, 4, 3, 0}, data[1] >> 3);
  spec.head_size_k = pick(std::array{128, 64, 96, 256, 8, 1000, 2048, 0}, data[2]);
  spec.head_size_v = (data[2] & 0x80) ? 64 : spec.head_size_k;
  spec.dtype = pick(std::array<int32_t, 4>{ATB_DTYPE_F32, ATB_DTYPE_F16, ATB_DTYPE_BF16, 77}, data[3]);
  spec.block_size = pick(std::array{16, 32, 1, 0, 4096}, data[3] >> 2);
  spec.num_layers = pick(std::array{4, 1, 0}, data[4]);
  spec.layer_index = pick(std::array{0, 1, 3, 7}, data[4] >> 2);
  spec.kv_shared_with_layer = pick(std::array{-1, -1, 0, 2}, data[4] >> 4);
  spec.sliding_window = pick(std::array{0, 0, 7, -3}, data[5]);
  spec.logits_soft_cap = pick(std::array{0.0f, 30.0f, -1.0f}, data[5] >> 2);
  spec.first_global_kv_head = pick(std::array{0, 0, 2, -1}, data[5] >> 4);

  const std::string config(reinterpret_cast<const char*>(data + 6), size - 6);
  auto backend = (*plugin)->create_backend(spec, config);
  if (!backend) {
    if (backend.error().message().empty()) std::abort();  // every refusal says why
    return 0;
  }
  auto cache = backend->kv_cache_spec();
  if (!cache || cache->page_bytes == 0 || cache->block_size != spec.block_size) std::abort();
  return 0;
}
