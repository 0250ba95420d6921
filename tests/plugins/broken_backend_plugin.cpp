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
//   9  peeks_ahead:       lets the next position's value into a token's output (causality)
//  10  head_shift:        gives query head h the output of head h + group (GQA mapping)
//  11  window_ignorer:    attends past the sliding window
//  12  cap_ignorer:       ignores the logits soft cap
//  13  scale_ignorer:     uses 1/sqrt(head_size) whatever scale the layer gives
//  14  contiguous_pages:  assumes a sequence's pages follow its first (reads the wrong pages)
//  15  sharing_drift:     a KV-sharing layer's outputs drift from its owner's
//  16  slightly_off:      outputs 0.1% off (numbers)
// Kinds 3, 5 and 8 break the ABI itself, which the kit never does: they wrap the kit's table.
#include <atb/half.hpp>
#include <atb/kit/json_config.hpp>
#include <atb/kit/plugin_definition.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>
#include <cstring>

#include "reference_backend.hpp"

namespace {

constexpr std::array<uint32_t, 1> kHeadSizes = {128};

// The layer spec the broken attention follows (kinds 11-13 drop what they ignore).
atb_layer_spec followed(atb_layer_spec spec) {
  if (BROKEN_KIND == 11) spec.sliding_window = 0;
  if (BROKEN_KIND == 12) spec.logits_soft_cap = 0.0f;
  if (BROKEN_KIND == 13) spec.scale = 1.0f / std::sqrt(float(spec.head_size_k));
  return spec;
}

class BrokenBackend final : public atb::kit::BackendImpl {
 public:
  explicit BrokenBackend(const atb_layer_spec& spec) : inner_(followed(spec), {spec.dtype, 1, "scalar"}), spec_(spec) {}

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
    if (BROKEN_KIND == 14) {  // every page after a sequence's first taken to follow it in the pool
      atb::kit::ForwardBatch assumed = batch;
      std::vector<int32_t> tables(batch.block_tables,
                                  batch.block_tables + int64_t(batch.num_seqs) * batch.block_table_stride);
      for (int32_t s = 0; s < batch.num_seqs; ++s)
        for (int32_t b = 1; b < batch.block_table_stride; ++b)
          tables[size_t(s) * batch.block_table_stride + b] =
              int32_t((tables[size_t(s) * batch.block_table_stride] + b) % batch.num_pages);
      assumed.block_tables = tables.data();
      return inner_.forward(assumed);
    }
    ATB_RETURN_IF_ERROR(inner_.forward(batch));
    if (batch.write_kv_only || batch.num_tokens == 0) return atb::Status::ok();
    if (BROKEN_KIND == 2) {
      const float one_past = 1.0f;  // the first element after the last output row
      std::memcpy(batch.output.row(batch.num_tokens, 0), &one_past, sizeof one_past);
    }
    if (BROKEN_KIND == 6) {
      const std::byte last = batch.page(batch.num_pages - 1)[inner_.cache_spec().page_bytes - 1];
      set_output(batch, 0, 0, 0, output(batch, 0, 0, 0) + float(std::to_integer<int>(last)));
    }
    if (BROKEN_KIND == 9 && batch.value.data != nullptr) peek_ahead(batch);
    if (BROKEN_KIND == 10) shift_heads(batch);
    if ((BROKEN_KIND == 15 && spec_.kv_shared_with_layer >= 0) || BROKEN_KIND == 16) scale_outputs(batch, 1.0f + 1e-3f);
    return atb::Status::ok();
  }

 private:
  float output(const atb::kit::ForwardBatch& batch, int t, int h, int c) const {
    return atb::load_as_f32(batch.output.row(t, h), batch.output.dtype, c);
  }
  void set_output(const atb::kit::ForwardBatch& batch, int t, int h, int c, float value) const {
    atb::store_from_f32(batch.output.row(t, h), batch.output.dtype, c, value);
  }

  // Token t's output takes in 1% of the next token's value (when that token is of its sequence).
  void peek_ahead(const atb::kit::ForwardBatch& batch) const {
    const int group = spec_.num_query_heads / spec_.num_kv_heads;
    for (int32_t s = 0; s < batch.num_seqs; ++s)
      for (int t = batch.query_start_loc[s]; t + 1 < batch.query_start_loc[s + 1]; ++t)
        for (int h = 0; h < spec_.num_query_heads; ++h)
          for (int c = 0; c < spec_.head_size_v; ++c)
            set_output(batch, t, h, c,
                       output(batch, t, h, c) +
                           0.01f * atb::load_as_f32(batch.value.row(t + 1, h / group), batch.value.dtype, c));
  }

  // Query head h gets head (h + group)'s output: the heads of the next KV head.
  void shift_heads(const atb::kit::ForwardBatch& batch) const {
    const int heads = spec_.num_query_heads, group = heads / spec_.num_kv_heads;
    std::vector<float> row(size_t(heads) * spec_.head_size_v);
    for (int t = 0; t < batch.num_tokens; ++t) {
      for (int h = 0; h < heads; ++h)
        for (int c = 0; c < spec_.head_size_v; ++c)
          row[size_t(h) * spec_.head_size_v + c] = output(batch, t, (h + group) % heads, c);
      for (int h = 0; h < heads; ++h)
        for (int c = 0; c < spec_.head_size_v; ++c) set_output(batch, t, h, c, row[size_t(h) * spec_.head_size_v + c]);
    }
  }

  void scale_outputs(const atb::kit::ForwardBatch& batch, float factor) const {
    for (int t = 0; t < batch.num_tokens; ++t)
      for (int h = 0; h < spec_.num_query_heads; ++h)
        for (int c = 0; c < spec_.head_size_v; ++c) set_output(batch, t, h, c, output(batch, t, h, c) * factor);
  }

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
                                  "cache_flag_liar",
                                  "peeks_ahead",
                                  "head_shift",
                                  "window_ignorer",
                                  "cap_ignorer",
                                  "scale_ignorer",
                                  "contiguous_pages",
                                  "sharing_drift",
                                  "slightly_off"};
static_assert(BROKEN_KIND >= 1 && BROKEN_KIND < int(std::size(kNames)), "BROKEN_KIND names a kind listed above");

const atb::kit::PluginDefinition& definition() {
  static const atb::kit::PluginDefinition instance{kNames[BROKEN_KIND],
                                                   "0.0.1",
                                                   "a deliberately broken backend (test only)",
                                                   ATB_BIT(ATB_DEVICE_CPU),
                                                   ATB_BIT(ATB_DTYPE_F32),
                                                   ATB_CAP_PAGED_KV_CACHE | ATB_CAP_GQA | ATB_CAP_CHUNKED_PREFILL |
                                                       ATB_CAP_MIXED_BATCH | ATB_CAP_SLIDING_WINDOW |
                                                       ATB_CAP_LOGITS_SOFT_CAP | ATB_CAP_KV_SHARING,
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
