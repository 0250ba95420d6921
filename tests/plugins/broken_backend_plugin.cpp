// Test-only broken plugins around the reference backend, each breaking one promise the conformance
// suite checks (BROKEN_KIND selects which):
//   1  lying_page_size:  reports a page 64 bytes smaller than it writes (and V rows to match)
//   2  output_overrun:   writes one element past the end of the output tensor
#include <atb/kit/plugin_definition.hpp>

#include <array>
#include <cstring>

#include "reference_backend.hpp"

namespace {

constexpr std::array<uint32_t, 1> kHeadSizes = {128};

class BrokenBackend final : public atb::kit::BackendImpl {
 public:
  explicit BrokenBackend(const atb_layer_spec& spec) : inner_(spec, {spec.dtype, 1, "scalar"}), spec_(spec) {}

  atb_kv_cache_spec cache_spec() const override {
    atb_kv_cache_spec spec = inner_.cache_spec();
    if (BROKEN_KIND == 1) {  // a consistent lie: 64 bytes less per page, spread over its V rows
      spec.page_bytes -= 64;
      spec.v_bytes_per_token_per_head -= 64 / (uint64_t(spec_.block_size) * uint64_t(spec_.num_kv_heads));
    }
    return spec;
  }

  atb::Status forward(const atb::kit::ForwardBatch& batch) override {
    ATB_RETURN_IF_ERROR(inner_.forward(batch));
    if (BROKEN_KIND == 2 && !batch.write_kv_only && batch.num_tokens > 0) {
      const float one_past = 1.0f;  // the first element after the last output row
      std::memcpy(batch.output.row(batch.num_tokens, 0), &one_past, sizeof one_past);
    }
    return atb::Status::ok();
  }

 private:
  atb::reference::ReferenceBackend inner_;
  atb_layer_spec spec_;
};

atb::Expected<std::unique_ptr<atb::kit::BackendImpl>> create(const atb_layer_spec& spec, const nlohmann::json&) {
  return std::unique_ptr<atb::kit::BackendImpl>(new BrokenBackend(spec));
}

const atb::kit::PluginDefinition& definition() {
  static const atb::kit::PluginDefinition instance{
      BROKEN_KIND == 1 ? "lying_page_size" : "output_overrun", "0.0.1", "a deliberately broken backend (test only)",
      ATB_BIT(ATB_DEVICE_CPU), ATB_BIT(ATB_DTYPE_F32), ATB_CAP_PAGED_KV_CACHE | ATB_CAP_GQA, kHeadSizes, &create};
  return instance;
}

}  // namespace

ATB_DEFINE_PLUGIN(definition)
