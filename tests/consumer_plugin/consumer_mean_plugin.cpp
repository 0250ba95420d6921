// `consumer_mean`: a deliberately tiny backend (f32 only) whose attention gives every visible key
// the same weight, so each output is the mean of the visible values.  It exists to show that the
// installed SDK is enough to build a plugin; its page holds V rows only (fewer bytes than the
// dtype: a compressed cache, of a kind).  It keeps the ABI's contract, but it is not attention:
// the conformance suite's semantic checks (scale, numbers) must fail on it.
#include <atb/kit/json_config.hpp>
#include <atb/kit/plugin_definition.hpp>

#include <algorithm>
#include <array>
#include <vector>
#include <cstring>

namespace {

class MeanBackend final : public atb::kit::BackendImpl {
 public:
  explicit MeanBackend(const atb_layer_spec& spec) : spec_(spec) {}

  atb_kv_cache_spec cache_spec() const override {
    atb_kv_cache_spec cache{};
    cache.k_bytes_per_token_per_head = 0;
    cache.v_bytes_per_token_per_head = uint64_t(spec_.head_size_v) * sizeof(float);
    cache.page_bytes = uint64_t(spec_.block_size) * spec_.num_kv_heads * cache.v_bytes_per_token_per_head;
    cache.page_alignment = 64;
    cache.block_size = spec_.block_size;
    cache.writes_kv = 1;
    return cache;
  }

  atb::Status forward(const atb::kit::ForwardBatch& batch) override {
    const int dv = spec_.head_size_v, bs = spec_.block_size, group = spec_.num_query_heads / spec_.num_kv_heads;
    auto row = [&](std::byte* page, int h, int slot) {
      return reinterpret_cast<float*>(page) + (size_t(h) * bs + slot) * dv;
    };
    for (int32_t t = 0; t < batch.num_tokens; ++t) {
      const int64_t slot = batch.slot_mapping[t];
      if (slot < 0) continue;
      for (int h = 0; h < spec_.num_kv_heads; ++h)
        std::memcpy(row(batch.page(slot / bs), h, int(slot % bs)), batch.value.row(t, h), size_t(dv) * sizeof(float));
    }
    if (batch.write_kv_only) return atb::Status::ok();
    for (int32_t s = 0; s < batch.num_seqs; ++s) {
      for (int32_t i = 0; i < batch.query_len(s); ++i) {
        const int32_t token = batch.query_start_loc[s] + i;
        const int64_t position = batch.seq_lens[s] - batch.query_len(s) + i;
        for (int h = 0; h < spec_.num_kv_heads; ++h) {
          std::vector<float> mean(size_t(dv), 0.0f);
          for (int64_t p = 0; p <= position; ++p) {
            const float* v = row(batch.page(batch.block_table(s)[p / bs]), h, int(p % bs));
            for (int d = 0; d < dv; ++d) mean[size_t(d)] += v[d] / float(position + 1);
          }
          for (int g = 0; g < group; ++g)
            std::memcpy(batch.output.row(token, h * group + g), mean.data(), size_t(dv) * sizeof(float));
        }
      }
    }
    return atb::Status::ok();
  }

 private:
  atb_layer_spec spec_;
};

constexpr std::array<uint32_t, 3> kHeadSizes = {16, 64, 128};

atb::Expected<std::unique_ptr<atb::kit::BackendImpl>> create(const atb_layer_spec& spec, const nlohmann::json& json) {
  atb::kit::ConfigReader reader(json);
  ATB_RETURN_IF_ERROR(reader.reject_unknown_keys());
  return std::unique_ptr<atb::kit::BackendImpl>(new MeanBackend(spec));
}

const atb::kit::PluginDefinition& definition() {
  static const atb::kit::PluginDefinition instance{"consumer_mean",
                                                   "0.0.1",
                                                   "uniform-weight attention, built out of tree from the installed SDK",
                                                   ATB_BIT(ATB_DEVICE_CPU),
                                                   ATB_BIT(ATB_DTYPE_F32),
                                                   ATB_CAP_PAGED_KV_CACHE | ATB_CAP_GQA | ATB_CAP_COMPRESSED_KV,
                                                   kHeadSizes,
                                                   &create,
                                                   &atb::kit::no_config_keys_schema};
  return instance;
}

}  // namespace

ATB_DEFINE_PLUGIN(definition)
