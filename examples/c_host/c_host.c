/* A host in plain C99: loads a plugin by directory and backend name through the C ABI alone (dlopen,
 * the entry symbol, the function table), sizes a page pool from the spec, and runs one prefill and
 * one decode step.  Proof that the ABI serves C engines; no C++ is involved on this side.
 *
 *   c_host PLUGIN_DIR BACKEND_NAME [CONFIG_JSON]
 */
#define _POSIX_C_SOURCE 200809L
#include <atb/abi.h>

#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kQueryHeads = 4, kKvHeads = 2, kHeadSize = 128, kBlock = 16, kPrompt = 40, kPages = 8 };

static const atb_api* find_backend(const char* dir, const char* name, void** library) {
  DIR* listing = opendir(dir);
  struct dirent* entry;
  if (!listing) {
    fprintf(stderr, "c_host: cannot open plugin directory %s\n", dir);
    return NULL;
  }
  while ((entry = readdir(listing)) != NULL) {
    const size_t length = strlen(entry->d_name);
    char path[4096];
    void* handle;
    atb_get_api_fn get_api;
    const atb_api* api = NULL;
    atb_error error;
    atb_plugin_info info;
    if (length < 4 || strcmp(entry->d_name + length - 3, ".so") != 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) continue;
    *(void**)(&get_api) = dlsym(handle, ATB_ENTRY_SYMBOL);
    memset(&error, 0, sizeof error);
    error.struct_size = ATB_ERROR_STRUCT_SIZE;
    memset(&info, 0, sizeof info);
    info.struct_size = ATB_PLUGIN_INFO_STRUCT_SIZE;
    if (get_api && get_api(ATB_ABI_VERSION_MAJOR, ATB_ABI_VERSION_MINOR, &api, &error) == ATB_OK &&
        api->get_plugin_info(&info, &error) == ATB_OK && strcmp(info.backend_name, name) == 0) {
      closedir(listing);
      *library = handle;
      return api;
    }
    dlclose(handle);
  }
  closedir(listing);
  fprintf(stderr, "c_host: no plugin in %s serves backend '%s'\n", dir, name);
  return NULL;
}

static atb_tensor tensor(float* data, int tokens, int heads) {
  atb_tensor t;
  memset(&t, 0, sizeof t);
  t.struct_size = ATB_TENSOR_STRUCT_SIZE;
  t.data = data;
  t.dtype = ATB_DTYPE_F32;
  t.device_type = ATB_DEVICE_CPU;
  t.ndim = 3;
  t.shape[0] = tokens;
  t.shape[1] = heads;
  t.shape[2] = kHeadSize;
  t.strides[0] = (int64_t)heads * kHeadSize;
  t.strides[1] = kHeadSize;
  t.strides[2] = 1;
  return t;
}

static float* random_floats(size_t count, unsigned* state) {
  float* values = malloc(count * sizeof *values);
  size_t i;
  for (i = 0; values && i < count; ++i) {
    *state = *state * 1664525u + 1013904223u;
    values[i] = (float)(*state >> 8) / 16777216.0f * 2.0f - 1.0f;
  }
  return values;
}

/* One forward of `tokens` new tokens of sequence 0 whose length becomes `length`. */
static int step(const atb_api* api, atb_backend* backend, void* pages, uint64_t stride, int tokens, int length,
                unsigned* state, float* first_output) {
  float* q = random_floats((size_t)tokens * kQueryHeads * kHeadSize, state);
  float* k = random_floats((size_t)tokens * kKvHeads * kHeadSize, state);
  float* v = random_floats((size_t)tokens * kKvHeads * kHeadSize, state);
  float* out = calloc((size_t)tokens * kQueryHeads * kHeadSize, sizeof *out);
  int64_t slots[kPrompt];
  int32_t query_start[2], seq_len[1], table[kPages];
  atb_tensor tq = tensor(q, tokens, kQueryHeads), tk = tensor(k, tokens, kKvHeads), tv = tensor(v, tokens, kKvHeads),
             to = tensor(out, tokens, kQueryHeads);
  atb_forward_args args;
  atb_error error;
  int i, ok;
  for (i = 0; i < kPages; ++i) table[i] = i;
  for (i = 0; i < tokens; ++i) slots[i] = length - tokens + i;
  query_start[0] = 0;
  query_start[1] = tokens;
  seq_len[0] = length;
  memset(&args, 0, sizeof args);
  args.struct_size = ATB_FORWARD_ARGS_STRUCT_SIZE;
  args.query = &tq;
  args.key = &tk;
  args.value = &tv;
  args.output = &to;
  args.kv_pages = pages;
  args.num_pages = kPages;
  args.page_stride_bytes = stride;
  args.num_tokens = tokens;
  args.num_seqs = 1;
  args.slot_mapping = slots;
  args.query_start_loc = query_start;
  args.seq_lens = seq_len;
  args.block_tables = table;
  args.block_table_stride = kPages;
  memset(&error, 0, sizeof error);
  error.struct_size = ATB_ERROR_STRUCT_SIZE;
  ok = q && k && v && out && api->forward(backend, &args, &error) == ATB_OK;
  if (!ok) fprintf(stderr, "c_host: forward failed: %s\n", error.message);
  if (ok) *first_output = out[(size_t)(tokens - 1) * kQueryHeads * kHeadSize];
  free(q);
  free(k);
  free(v);
  free(out);
  return ok;
}

int main(int argc, char** argv) {
  void* library = NULL;
  const atb_api* api;
  atb_layer_spec spec;
  atb_kv_cache_spec cache;
  atb_backend* backend = NULL;
  atb_error error;
  void* pages = NULL;
  uint64_t stride;
  unsigned state = 12345u;
  float prefill_out = 0, decode_out = 0;
  int ok;
  if (argc < 3) {
    fprintf(stderr, "usage: c_host PLUGIN_DIR BACKEND_NAME [CONFIG_JSON]\n");
    return 2;
  }
  api = find_backend(argv[1], argv[2], &library);
  if (!api) return 1;
  memset(&spec, 0, sizeof spec);
  spec.struct_size = ATB_LAYER_SPEC_STRUCT_SIZE;
  spec.attention_kind = ATB_ATTENTION_STANDARD;
  spec.num_query_heads = kQueryHeads;
  spec.num_kv_heads = kKvHeads;
  spec.head_size_k = spec.head_size_v = kHeadSize;
  spec.dtype = ATB_DTYPE_F32;
  spec.device_type = ATB_DEVICE_CPU;
  spec.block_size = kBlock;
  spec.num_layers = 1;
  spec.kv_shared_with_layer = -1;
  memset(&error, 0, sizeof error);
  error.struct_size = ATB_ERROR_STRUCT_SIZE;
  if (api->create_backend(&spec, argc > 3 ? argv[3] : "{}", &backend, &error) != ATB_OK) {
    fprintf(stderr, "c_host: create_backend: %s\n", error.message);
    return 1;
  }
  memset(&cache, 0, sizeof cache);
  cache.struct_size = ATB_KV_CACHE_SPEC_STRUCT_SIZE;
  if (api->get_kv_cache_spec(backend, &cache, &error) != ATB_OK) {
    fprintf(stderr, "c_host: get_kv_cache_spec: %s\n", error.message);
    return 1;
  }
  stride = (cache.page_bytes + cache.page_alignment - 1) / cache.page_alignment * cache.page_alignment;
  if (posix_memalign(&pages, (size_t)cache.page_alignment, (size_t)(stride * kPages)) != 0) return 1;
  ok = step(api, backend, pages, stride, kPrompt, kPrompt, &state, &prefill_out) &&
       step(api, backend, pages, stride, 1, kPrompt + 1, &state, &decode_out);
  if (ok)
    printf(
        "c_host: backend '%s': page %llu bytes (K %llu + V %llu bytes per token per head); prefill of %d tokens "
        "and one decode step done; output[0] %.5f, %.5f\n",
        argv[2], (unsigned long long)cache.page_bytes, (unsigned long long)cache.k_bytes_per_token_per_head,
        (unsigned long long)cache.v_bytes_per_token_per_head, kPrompt, prefill_out, decode_out);
  api->destroy_backend(backend, &error);
  free(pages);
  dlclose(library);
  return ok && isfinite(decode_out) ? 0 : 1;
}
