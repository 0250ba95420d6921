// Prints every ABI struct's size and field offsets as the compiler lays them out, as JSON, so that
// hosts in other languages (sdk/python's ctypes mirror) are checked against the header itself.
#include <atb/abi.h>

#include <cstddef>
#include <cstdio>

namespace {

bool first_struct = true;
bool first_field = true;

void open_struct(const char* name, size_t abi_size, size_t size_of) {
  std::printf("%s\n  \"%s\": {\"abi_size\": %zu, \"sizeof\": %zu, \"fields\": {", first_struct ? "{" : ",", name,
              abi_size, size_of);
  first_struct = false;
  first_field = true;
}

void field(const char* name, size_t offset, size_t size) {
  std::printf("%s\"%s\": [%zu, %zu]", first_field ? "" : ", ", name, offset, size);
  first_field = false;
}

void close_struct() { std::printf("}}"); }

}  // namespace

#define ATB_DUMP_FIELD(type, name) field(#name, offsetof(type, name), sizeof(((type*)nullptr)->name))

int main() {
  open_struct("atb_error", ATB_ERROR_STRUCT_SIZE, sizeof(atb_error));
  ATB_DUMP_FIELD(atb_error, struct_size);
  ATB_DUMP_FIELD(atb_error, status);
  ATB_DUMP_FIELD(atb_error, message);
  close_struct();

  open_struct("atb_plugin_info", ATB_PLUGIN_INFO_STRUCT_SIZE, sizeof(atb_plugin_info));
  ATB_DUMP_FIELD(atb_plugin_info, struct_size);
  ATB_DUMP_FIELD(atb_plugin_info, backend_name);
  ATB_DUMP_FIELD(atb_plugin_info, plugin_version);
  ATB_DUMP_FIELD(atb_plugin_info, description);
  ATB_DUMP_FIELD(atb_plugin_info, abi_major);
  ATB_DUMP_FIELD(atb_plugin_info, abi_minor);
  ATB_DUMP_FIELD(atb_plugin_info, device_mask);
  ATB_DUMP_FIELD(atb_plugin_info, dtype_mask);
  ATB_DUMP_FIELD(atb_plugin_info, capability_flags);
  ATB_DUMP_FIELD(atb_plugin_info, num_head_sizes);
  ATB_DUMP_FIELD(atb_plugin_info, head_sizes);
  close_struct();

  open_struct("atb_host_services", ATB_HOST_SERVICES_STRUCT_SIZE, sizeof(atb_host_services));
  ATB_DUMP_FIELD(atb_host_services, struct_size);
  ATB_DUMP_FIELD(atb_host_services, log);
  ATB_DUMP_FIELD(atb_host_services, log_user_data);
  ATB_DUMP_FIELD(atb_host_services, log_level);
  ATB_DUMP_FIELD(atb_host_services, reserved0);
  close_struct();

  open_struct("atb_layer_spec", ATB_LAYER_SPEC_STRUCT_SIZE, sizeof(atb_layer_spec));
  ATB_DUMP_FIELD(atb_layer_spec, struct_size);
  ATB_DUMP_FIELD(atb_layer_spec, attention_kind);
  ATB_DUMP_FIELD(atb_layer_spec, num_query_heads);
  ATB_DUMP_FIELD(atb_layer_spec, num_kv_heads);
  ATB_DUMP_FIELD(atb_layer_spec, head_size_k);
  ATB_DUMP_FIELD(atb_layer_spec, head_size_v);
  ATB_DUMP_FIELD(atb_layer_spec, dtype);
  ATB_DUMP_FIELD(atb_layer_spec, block_size);
  ATB_DUMP_FIELD(atb_layer_spec, sliding_window);
  ATB_DUMP_FIELD(atb_layer_spec, logits_soft_cap);
  ATB_DUMP_FIELD(atb_layer_spec, scale);
  ATB_DUMP_FIELD(atb_layer_spec, layer_index);
  ATB_DUMP_FIELD(atb_layer_spec, num_layers);
  ATB_DUMP_FIELD(atb_layer_spec, kv_shared_with_layer);
  ATB_DUMP_FIELD(atb_layer_spec, first_global_kv_head);
  ATB_DUMP_FIELD(atb_layer_spec, num_global_kv_heads);
  ATB_DUMP_FIELD(atb_layer_spec, device_type);
  ATB_DUMP_FIELD(atb_layer_spec, device_id);
  ATB_DUMP_FIELD(atb_layer_spec, reserved0);
  close_struct();

  open_struct("atb_kv_cache_spec", ATB_KV_CACHE_SPEC_STRUCT_SIZE, sizeof(atb_kv_cache_spec));
  ATB_DUMP_FIELD(atb_kv_cache_spec, struct_size);
  ATB_DUMP_FIELD(atb_kv_cache_spec, page_bytes);
  ATB_DUMP_FIELD(atb_kv_cache_spec, page_alignment);
  ATB_DUMP_FIELD(atb_kv_cache_spec, k_bytes_per_token_per_head);
  ATB_DUMP_FIELD(atb_kv_cache_spec, v_bytes_per_token_per_head);
  ATB_DUMP_FIELD(atb_kv_cache_spec, block_size);
  ATB_DUMP_FIELD(atb_kv_cache_spec, writes_kv);
  ATB_DUMP_FIELD(atb_kv_cache_spec, workspace_bytes);
  ATB_DUMP_FIELD(atb_kv_cache_spec, cache_flags);
  ATB_DUMP_FIELD(atb_kv_cache_spec, workspace_alignment);
  close_struct();

  open_struct("atb_tensor", ATB_TENSOR_STRUCT_SIZE, sizeof(atb_tensor));
  ATB_DUMP_FIELD(atb_tensor, struct_size);
  ATB_DUMP_FIELD(atb_tensor, data);
  ATB_DUMP_FIELD(atb_tensor, dtype);
  ATB_DUMP_FIELD(atb_tensor, device_type);
  ATB_DUMP_FIELD(atb_tensor, device_id);
  ATB_DUMP_FIELD(atb_tensor, ndim);
  ATB_DUMP_FIELD(atb_tensor, shape);
  ATB_DUMP_FIELD(atb_tensor, strides);
  ATB_DUMP_FIELD(atb_tensor, stream);
  close_struct();

  open_struct("atb_forward_args", ATB_FORWARD_ARGS_STRUCT_SIZE, sizeof(atb_forward_args));
  ATB_DUMP_FIELD(atb_forward_args, struct_size);
  ATB_DUMP_FIELD(atb_forward_args, query);
  ATB_DUMP_FIELD(atb_forward_args, key);
  ATB_DUMP_FIELD(atb_forward_args, value);
  ATB_DUMP_FIELD(atb_forward_args, output);
  ATB_DUMP_FIELD(atb_forward_args, kv_pages);
  ATB_DUMP_FIELD(atb_forward_args, num_pages);
  ATB_DUMP_FIELD(atb_forward_args, page_stride_bytes);
  ATB_DUMP_FIELD(atb_forward_args, num_tokens);
  ATB_DUMP_FIELD(atb_forward_args, num_seqs);
  ATB_DUMP_FIELD(atb_forward_args, slot_mapping);
  ATB_DUMP_FIELD(atb_forward_args, query_start_loc);
  ATB_DUMP_FIELD(atb_forward_args, seq_lens);
  ATB_DUMP_FIELD(atb_forward_args, block_tables);
  ATB_DUMP_FIELD(atb_forward_args, block_table_stride);
  ATB_DUMP_FIELD(atb_forward_args, workspace);
  ATB_DUMP_FIELD(atb_forward_args, workspace_bytes);
  ATB_DUMP_FIELD(atb_forward_args, flags);
  ATB_DUMP_FIELD(atb_forward_args, reserved0);
  close_struct();

  open_struct("atb_api", ATB_API_STRUCT_SIZE, sizeof(atb_api));
  ATB_DUMP_FIELD(atb_api, struct_size);
  ATB_DUMP_FIELD(atb_api, abi_major);
  ATB_DUMP_FIELD(atb_api, abi_minor);
  ATB_DUMP_FIELD(atb_api, get_plugin_info);
  ATB_DUMP_FIELD(atb_api, set_host_services);
  ATB_DUMP_FIELD(atb_api, create_backend);
  ATB_DUMP_FIELD(atb_api, get_kv_cache_spec);
  ATB_DUMP_FIELD(atb_api, forward);
  ATB_DUMP_FIELD(atb_api, destroy_backend);
  ATB_DUMP_FIELD(atb_api, get_config_schema);
  close_struct();
  std::printf("\n}\n");
  return 0;
}
