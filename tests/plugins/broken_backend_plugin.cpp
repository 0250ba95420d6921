// Test-only broken plugins around the reference backend, each breaking one promise the conformance
// suite checks (BROKEN_KIND selects which):
//   1  lying_page_size:   reports a page 64 bytes smaller than it writes (and V rows to match)
//   2  output_overrun:    writes one element past the end of the output tensor
//   3  error_overrun:     fills the whole message capacity whatever the host's atb_error size
//   4  schema_liar:       publishes a config key that create_backend refuses
//   5  flag_ignorer:      accepts unknown forward flag bits (drops them)
//   6  pool_reader:       lets a byte the host never had written (the pool's last) reach an output
//   7  row_checker:       refuses block-table entries a sequence does not use
//   8  cache_flag_liar:   says its uncompressed cache is compressed
// Kinds 3, 5 and 8 break the ABI itself, which the kit never does: they wrap the kit's table.
#include <atb/kit/json_config.hpp>
#include <atb/kit/plugin_definition.hpp>

#include <algorithm>
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
    if (BROKEN_KIND == 7) {
      for (int32_t s = 0; s < batch.num_seqs; ++s)
        for (int32_t b = 0; b < batch.block_table_stride; ++b)
          if (batch.block_table(s)[b] < 0 || batch.block_table(s)[b] >= batch.num_pages)
            return atb::Status::invalid("block_tables[" + std::to_string(s) + "][" + std::to_string(b) +
                                        "] is outside the pool");
    }
    ATB_RETURN_IF_ERROR(inner_.forward(batch));
    if (BROKEN_KIND == 2 && !batch.write_kv_only && batch.num_tokens > 0) {
      const float one_past = 1.0f;  // the first element after the last output row
      std::memcpy(batch.output.row(batch.num_tokens, 0), &one_past, sizeof one_past);
    }
    if (BROKEN_KIND == 6 && !batch.write_kv_only && batch.num_tokens > 0) {
      const std::byte last = batch.page(batch.num_pages - 1)[inner_.cache_spec().page_bytes - 1];
      float first;
      std::memcpy(&first, batch.output.row(0, 0), sizeof first);
      first += float(std::to_integer<int>(last));
      std::memcpy(batch.output.row(0, 0), &first, sizeof first);
    }
    return atb::Status::ok();
  }

 private:
  atb::reference::ReferenceBackend inner_;
  atb_layer_spec spec_;
};

atb::Expected<std::unique_ptr<atb::kit::BackendImpl>> create(const atb_layer_spec& spec, const nlohmann::json& json) {
  ATB_RETURN_IF_ERROR(atb::kit::ConfigReader(json).reject_unknown_keys());
  return std::unique_ptr<atb::kit::BackendImpl>(new BrokenBackend(spec));
}

nlohmann::json config_schema() {
  nlohmann::json schema = atb::kit::no_config_keys_schema();
  if (BROKEN_KIND == 4)
    schema["properties"]["tile_rows"] = {{"type", "integer"}, {"default", 16}, {"minimum", 1}, {"maximum", 64}};
  return schema;
}

constexpr const char* kNames[] = {"",
                                  "lying_page_size",
                                  "output_overrun",
                                  "error_overrun",
                                  "schema_liar",
                                  "flag_ignorer",
                                  "pool_reader",
                                  "row_checker",
                                  "cache_flag_liar"};

const atb::kit::PluginDefinition& definition() {
  static const atb::kit::PluginDefinition instance{kNames[BROKEN_KIND],
                                                   "0.0.1",
                                                   "a deliberately broken backend (test only)",
                                                   ATB_BIT(ATB_DEVICE_CPU),
                                                   ATB_BIT(ATB_DTYPE_F32),
                                                   ATB_CAP_PAGED_KV_CACHE | ATB_CAP_GQA,
                                                   kHeadSizes,
                                                   &create,
                                                   &config_schema};
  return instance;
}

// The kit's table, for the kinds that wrap it.
const atb_api* g_kit = nullptr;

void overrun_message(atb_status status, atb_error* error) {
  if (status == ATB_OK || error == nullptr) return;
  std::memset(error->message, 'x', ATB_ERROR_MESSAGE_CAPACITY - 1);
  error->message[ATB_ERROR_MESSAGE_CAPACITY - 1] = '\0';
}

atb_status create_overrunning(const atb_layer_spec* spec, const char* config, atb_backend** out, atb_error* error) {
  const atb_status status = g_kit->create_backend(spec, config, out, error);
  overrun_message(status, error);
  return status;
}

atb_status forward_overrunning(atb_backend* backend, const atb_forward_args* args, atb_error* error) {
  const atb_status status = g_kit->forward(backend, args, error);
  overrun_message(status, error);
  return status;
}

atb_status forward_dropping_flags(atb_backend* backend, const atb_forward_args* args, atb_error* error) {
  if (args == nullptr) return g_kit->forward(backend, args, error);
  atb_forward_args copy{};
  std::memcpy(&copy, args, std::min<size_t>(args->struct_size, sizeof copy));
  copy.struct_size = std::min<size_t>(args->struct_size, sizeof copy);
  copy.flags &= ATB_FORWARD_WRITE_KV_ONLY;
  return g_kit->forward(backend, &copy, error);
}

atb_status spec_claiming_compression(const atb_backend* backend, atb_kv_cache_spec* spec, atb_error* error) {
  const atb_status status = g_kit->get_kv_cache_spec(backend, spec, error);
  if (status == ATB_OK && spec->struct_size >= ATB_KV_CACHE_SPEC_STRUCT_SIZE)
    spec->cache_flags |= ATB_KV_CACHE_COMPRESSED;
  return status;
}

}  // namespace

extern "C" ATB_EXPORT atb_status atb_get_api(uint32_t host_abi_major, uint32_t host_abi_minor, const atb_api** out_api,
                                             atb_error* error) {
  const atb_status status = atb::kit::get_api(definition(), host_abi_major, host_abi_minor, out_api, error);
  if (status != ATB_OK || (BROKEN_KIND != 3 && BROKEN_KIND != 5 && BROKEN_KIND != 8)) return status;
  static atb_api wrapped = **out_api;
  g_kit = *out_api;
  if (BROKEN_KIND == 3) {
    wrapped.create_backend = &create_overrunning;
    wrapped.forward = &forward_overrunning;
  }
  if (BROKEN_KIND == 5) wrapped.forward = &forward_dropping_flags;
  if (BROKEN_KIND == 8) wrapped.get_kv_cache_spec = &spec_claiming_compression;
  *out_api = &wrapped;
  return status;
}
