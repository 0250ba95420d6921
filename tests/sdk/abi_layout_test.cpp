// The ABI's struct layouts, frozen: every field's offset and every struct's size as ABI 1.1 defines
// them on LP64 targets.  A change here is a change of the contract (a new major, or a field appended
// in a new minor with this table grown by it), never an accident of a refactor.
#include <gtest/gtest.h>

#include <atb/abi.h>

#include <cstddef>
#include <string>
#include <vector>

namespace atb {
namespace {

struct FieldAt {
  const char* field;
  size_t actual, frozen;
};

#define ATB_FIELD(type, field, frozen) \
  FieldAt { #type "." #field, offsetof(type, field), frozen }

void expect_frozen(const std::vector<FieldAt>& fields) {
  for (const FieldAt& f : fields) EXPECT_EQ(f.actual, f.frozen) << f.field << " moved";
}

static_assert(sizeof(void*) == 8 && sizeof(size_t) == 8, "the frozen offsets are those of LP64 targets");

TEST(AbiLayout, StatusIsAFixedWidthInteger) {
  EXPECT_EQ(sizeof(atb_status), 4u);
  EXPECT_TRUE((std::is_same_v<atb_status, int32_t>));
}

TEST(AbiLayout, ErrorIsFrozen) {
  expect_frozen(
      {ATB_FIELD(atb_error, struct_size, 0), ATB_FIELD(atb_error, status, 8), ATB_FIELD(atb_error, message, 12)});
  EXPECT_EQ(ATB_ERROR_STRUCT_SIZE, 12u + ATB_ERROR_MESSAGE_CAPACITY);
}

TEST(AbiLayout, PluginInfoIsFrozen) {
  expect_frozen({ATB_FIELD(atb_plugin_info, backend_name, 8), ATB_FIELD(atb_plugin_info, plugin_version, 16),
                 ATB_FIELD(atb_plugin_info, description, 24), ATB_FIELD(atb_plugin_info, abi_major, 32),
                 ATB_FIELD(atb_plugin_info, abi_minor, 36), ATB_FIELD(atb_plugin_info, device_mask, 40),
                 ATB_FIELD(atb_plugin_info, dtype_mask, 44), ATB_FIELD(atb_plugin_info, capability_flags, 48),
                 ATB_FIELD(atb_plugin_info, num_head_sizes, 52), ATB_FIELD(atb_plugin_info, head_sizes, 56)});
  EXPECT_EQ(ATB_PLUGIN_INFO_STRUCT_SIZE, 64u);
}

TEST(AbiLayout, HostServicesIsFrozen) {
  expect_frozen({ATB_FIELD(atb_host_services, log, 8), ATB_FIELD(atb_host_services, log_user_data, 16),
                 ATB_FIELD(atb_host_services, log_level, 24), ATB_FIELD(atb_host_services, reserved0, 28)});
  EXPECT_EQ(ATB_HOST_SERVICES_STRUCT_SIZE, 32u);
  EXPECT_EQ(ATB_HOST_SERVICES_MIN_STRUCT_SIZE, 8u);
}

TEST(AbiLayout, LayerSpecIsFrozen) {
  expect_frozen({ATB_FIELD(atb_layer_spec, attention_kind, 8), ATB_FIELD(atb_layer_spec, num_query_heads, 12),
                 ATB_FIELD(atb_layer_spec, num_kv_heads, 16), ATB_FIELD(atb_layer_spec, head_size_k, 20),
                 ATB_FIELD(atb_layer_spec, head_size_v, 24), ATB_FIELD(atb_layer_spec, dtype, 28),
                 ATB_FIELD(atb_layer_spec, block_size, 32), ATB_FIELD(atb_layer_spec, sliding_window, 36),
                 ATB_FIELD(atb_layer_spec, logits_soft_cap, 40), ATB_FIELD(atb_layer_spec, scale, 44),
                 ATB_FIELD(atb_layer_spec, layer_index, 48), ATB_FIELD(atb_layer_spec, num_layers, 52),
                 ATB_FIELD(atb_layer_spec, kv_shared_with_layer, 56),
                 ATB_FIELD(atb_layer_spec, first_global_kv_head, 60),
                 ATB_FIELD(atb_layer_spec, num_global_kv_heads, 64), ATB_FIELD(atb_layer_spec, device_type, 68),
                 ATB_FIELD(atb_layer_spec, device_id, 72), ATB_FIELD(atb_layer_spec, reserved0, 76)});
  EXPECT_EQ(ATB_LAYER_SPEC_STRUCT_SIZE, 80u);
  EXPECT_EQ(ATB_LAYER_SPEC_MIN_STRUCT_SIZE, 56u);
}

TEST(AbiLayout, KvCacheSpecIsFrozen) {
  expect_frozen({ATB_FIELD(atb_kv_cache_spec, page_bytes, 8), ATB_FIELD(atb_kv_cache_spec, page_alignment, 16),
                 ATB_FIELD(atb_kv_cache_spec, k_bytes_per_token_per_head, 24),
                 ATB_FIELD(atb_kv_cache_spec, v_bytes_per_token_per_head, 32),
                 ATB_FIELD(atb_kv_cache_spec, block_size, 40), ATB_FIELD(atb_kv_cache_spec, writes_kv, 44),
                 ATB_FIELD(atb_kv_cache_spec, workspace_bytes, 48), ATB_FIELD(atb_kv_cache_spec, cache_flags, 56),
                 ATB_FIELD(atb_kv_cache_spec, workspace_alignment, 60)});
  EXPECT_EQ(ATB_KV_CACHE_SPEC_STRUCT_SIZE, 64u);
}

TEST(AbiLayout, TensorIsFrozen) {
  expect_frozen({ATB_FIELD(atb_tensor, data, 8), ATB_FIELD(atb_tensor, dtype, 16),
                 ATB_FIELD(atb_tensor, device_type, 20), ATB_FIELD(atb_tensor, device_id, 24),
                 ATB_FIELD(atb_tensor, ndim, 28), ATB_FIELD(atb_tensor, shape, 32), ATB_FIELD(atb_tensor, strides, 64),
                 ATB_FIELD(atb_tensor, stream, 96)});
  EXPECT_EQ(ATB_TENSOR_STRUCT_SIZE, 104u);
  EXPECT_EQ(ATB_TENSOR_MIN_STRUCT_SIZE, 96u);
}

TEST(AbiLayout, ForwardArgsIsFrozen) {
  expect_frozen({ATB_FIELD(atb_forward_args, query, 8), ATB_FIELD(atb_forward_args, key, 16),
                 ATB_FIELD(atb_forward_args, value, 24), ATB_FIELD(atb_forward_args, output, 32),
                 ATB_FIELD(atb_forward_args, kv_pages, 40), ATB_FIELD(atb_forward_args, num_pages, 48),
                 ATB_FIELD(atb_forward_args, page_stride_bytes, 56), ATB_FIELD(atb_forward_args, num_tokens, 64),
                 ATB_FIELD(atb_forward_args, num_seqs, 68), ATB_FIELD(atb_forward_args, slot_mapping, 72),
                 ATB_FIELD(atb_forward_args, query_start_loc, 80), ATB_FIELD(atb_forward_args, seq_lens, 88),
                 ATB_FIELD(atb_forward_args, block_tables, 96), ATB_FIELD(atb_forward_args, block_table_stride, 104),
                 ATB_FIELD(atb_forward_args, workspace, 112), ATB_FIELD(atb_forward_args, workspace_bytes, 120),
                 ATB_FIELD(atb_forward_args, flags, 128), ATB_FIELD(atb_forward_args, reserved0, 132)});
  EXPECT_EQ(ATB_FORWARD_ARGS_STRUCT_SIZE, 136u);
  EXPECT_EQ(ATB_FORWARD_ARGS_MIN_STRUCT_SIZE, 108u);
}

TEST(AbiLayout, ApiIsFrozen) {
  expect_frozen({ATB_FIELD(atb_api, abi_major, 8), ATB_FIELD(atb_api, abi_minor, 12),
                 ATB_FIELD(atb_api, get_plugin_info, 16), ATB_FIELD(atb_api, set_host_services, 24),
                 ATB_FIELD(atb_api, create_backend, 32), ATB_FIELD(atb_api, get_kv_cache_spec, 40),
                 ATB_FIELD(atb_api, forward, 48), ATB_FIELD(atb_api, destroy_backend, 56),
                 ATB_FIELD(atb_api, get_config_schema, 64)});
  EXPECT_EQ(ATB_API_STRUCT_SIZE, 72u);
  EXPECT_EQ(ATB_API_MIN_STRUCT_SIZE, 64u);
}

// No struct but atb_error (nothing is appended after its message) has tail padding: sizeof is the
// end of its last field, so a field a later minor appends always grows struct_size.
TEST(AbiLayout, NoStructHasTailPadding) {
  EXPECT_EQ(sizeof(atb_plugin_info), size_t(ATB_PLUGIN_INFO_STRUCT_SIZE));
  EXPECT_EQ(sizeof(atb_host_services), size_t(ATB_HOST_SERVICES_STRUCT_SIZE));
  EXPECT_EQ(sizeof(atb_layer_spec), size_t(ATB_LAYER_SPEC_STRUCT_SIZE));
  EXPECT_EQ(sizeof(atb_kv_cache_spec), size_t(ATB_KV_CACHE_SPEC_STRUCT_SIZE));
  EXPECT_EQ(sizeof(atb_tensor), size_t(ATB_TENSOR_STRUCT_SIZE));
  EXPECT_EQ(sizeof(atb_forward_args), size_t(ATB_FORWARD_ARGS_STRUCT_SIZE));
  EXPECT_EQ(sizeof(atb_api), size_t(ATB_API_STRUCT_SIZE));
}

// Hosts built against ABI 1.0 sent sizeof() of its structs.  Those sizes are this minor's struct
// sizes (the reserved fields took the old tail padding), so what they sent is read as before and
// every field appended after 1.0 lies past it.
TEST(AbiLayout, Minor0SizeofsAreTheseStructSizes) {
  EXPECT_EQ(ATB_LAYER_SPEC_STRUCT_SIZE, 80u);                // 76 bytes of fields in 1.0, sizeof 80
  EXPECT_EQ(ATB_FORWARD_ARGS_STRUCT_SIZE, 136u);             // 132 in 1.0, sizeof 136
  EXPECT_EQ(ATB_HOST_SERVICES_STRUCT_SIZE, 32u);             // 28 in 1.0, sizeof 32
  EXPECT_EQ(offsetof(atb_kv_cache_spec, cache_flags), 56u);  // 1.0's sizeof: the appended fields follow it
  EXPECT_EQ(offsetof(atb_api, get_config_schema), 64u);      // 1.0's sizeof
}

}  // namespace
}  // namespace atb
