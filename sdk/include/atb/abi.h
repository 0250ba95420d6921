/*
 * atb/abi.h — the attention-backend plugin ABI (plain C99).
 *
 * This header is the whole contract between a host (an inference engine) and an attention-backend
 * plugin (a shared library).  Nothing else crosses the boundary: no C++ type, no exception, no
 * allocator.  A plugin exports exactly one symbol, ATB_ENTRY_SYMBOL ("atb_get_api"), which hands the
 * host a table of function pointers (atb_api) for the host's ABI version, or refuses it.
 *
 * Versioning
 *   ATB_ABI_VERSION_MAJOR changes on a breaking change; hosts and plugins of different majors refuse
 *   each other.  ATB_ABI_VERSION_MINOR grows when fields or entry points are appended.  Within one
 *   major, every struct that crosses the boundary begins with `struct_size`, written by whoever
 *   fills the struct (see "who writes" on each struct):
 *     - a reader never reads past the struct_size it was given, and uses the documented default for
 *       any field past that size (an older writer did not know the field);
 *     - a writer of an output struct (the host allocates it, the plugin fills it) writes only the
 *       fields that fit inside the struct_size the host set, so an older host's smaller struct is
 *       never overrun.
 *   New fields are only ever appended, so an old host + new plugin and a new host + old plugin both
 *   work within one major.
 *
 * Ownership
 *   The host owns every buffer: KV pages, inputs, outputs, workspace and error structs.  A plugin
 *   writes only inside the pages whose slots it was handed, the output tensor, the workspace and the
 *   output structs it was given, never elsewhere.  Strings a plugin returns in atb_plugin_info are
 *   static: valid until the library is unloaded.  Backend handles are owned by the host and released
 *   with destroy_backend.
 *
 * Errors
 *   Every entry point returns an atb_status.  On failure, when the host passed a non-NULL atb_error,
 *   the plugin writes a NUL-terminated message naming the field, the offending value and what is
 *   allowed.  Plugins never abort, exit or throw across this boundary.
 *
 * Threads
 *   Entry points may be called concurrently on different backends.  Calls on one backend handle must
 *   be serialised by the host (forward on layer 3 and forward on layer 4 may run at once; two forward
 *   calls on layer 3 may not).
 */
#ifndef ATB_ABI_H
#define ATB_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATB_ABI_VERSION_MAJOR 1
#define ATB_ABI_VERSION_MINOR 0

/* The one exported symbol; hosts resolve it with dlsym(handle, ATB_ENTRY_SYMBOL). */
#define ATB_ENTRY_SYMBOL "atb_get_api"

#if defined(_WIN32)
#define ATB_EXPORT __declspec(dllexport)
#else
#define ATB_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------------------------------
 * Status and errors
 * ---------------------------------------------------------------------------------------------- */

typedef enum atb_status {
  ATB_OK = 0,
  ATB_ERR_INVALID_ARGUMENT = 1, /* a field has a value outside what is allowed; message names it */
  ATB_ERR_UNSUPPORTED = 2,      /* valid request this plugin cannot serve (e.g. MLA, a head size) */
  ATB_ERR_VERSION_MISMATCH = 3, /* the host's ABI major differs from the plugin's */
  ATB_ERR_OUT_OF_MEMORY = 4,    /* the plugin could not allocate its own (small) state */
  ATB_ERR_INTERNAL = 5          /* a bug in the plugin; caught at the boundary, never thrown */
} atb_status;

#define ATB_ERROR_MESSAGE_CAPACITY 1024

/* Error channel.  Owner: host.  Who writes: host sets struct_size; the plugin writes `status` and
 * `message` on failure (and leaves them untouched on success).  The message is always
 * NUL-terminated within ATB_ERROR_MESSAGE_CAPACITY bytes and truncated if longer. */
typedef struct atb_error {
  size_t struct_size;                       /* = sizeof(atb_error) as the host knows it */
  int32_t status;                           /* an atb_status */
  char message[ATB_ERROR_MESSAGE_CAPACITY]; /* UTF-8, NUL-terminated */
} atb_error;

/* ------------------------------------------------------------------------------------------------
 * Enumerations
 * ---------------------------------------------------------------------------------------------- */

typedef enum atb_dtype {
  ATB_DTYPE_F32 = 1,  /* IEEE binary32 */
  ATB_DTYPE_F16 = 2,  /* IEEE binary16 */
  ATB_DTYPE_BF16 = 3  /* bfloat16: the upper 16 bits of a binary32 */
} atb_dtype;

typedef enum atb_device_type {
  ATB_DEVICE_CPU = 1,
  ATB_DEVICE_CUDA = 2 /* pointers are CUDA device pointers; work is enqueued on `stream` */
} atb_device_type;

typedef enum atb_attention_kind {
  ATB_ATTENTION_STANDARD = 1, /* softmax attention with separate K/V heads: MHA, GQA and MQA */
  ATB_ATTENTION_MLA = 2,      /* multi-head latent attention (compressed latent KV) */
  ATB_ATTENTION_LINEAR = 3    /* linear attention / state-space layers: no KV cache */
} atb_attention_kind;

/* Bits of atb_plugin_info.capability_flags. */
#define ATB_CAP_PAGED_KV_CACHE (1u << 0)  /* always set: the paged cache of this ABI */
#define ATB_CAP_GQA (1u << 1)             /* num_query_heads may be a multiple of num_kv_heads */
#define ATB_CAP_CHUNKED_PREFILL (1u << 2) /* a chunk attends to a cached prefix and to itself */
#define ATB_CAP_MIXED_BATCH (1u << 3)     /* prefill and decode sequences in one forward */
#define ATB_CAP_SLIDING_WINDOW (1u << 4)
#define ATB_CAP_LOGITS_SOFT_CAP (1u << 5)
#define ATB_CAP_KV_SHARING (1u << 6)      /* a layer may read an earlier layer's pages */
#define ATB_CAP_COMPRESSED_KV (1u << 7)   /* the cache is stored in fewer bytes than the dtype */
#define ATB_CAP_TENSOR_PARALLEL (1u << 8) /* honours first_global_kv_head for sharded heads */

/* Bits of atb_plugin_info.device_mask and dtype_mask: (1u << enum value). */
#define ATB_BIT(enum_value) (1u << (unsigned)(enum_value))

/* ------------------------------------------------------------------------------------------------
 * Plugin info
 * ---------------------------------------------------------------------------------------------- */

/* What a plugin is and can do.  Owner: host.  Who writes: host sets struct_size, the plugin fills
 * every field that fits.  Pointers point to static storage of the plugin (valid until unload). */
typedef struct atb_plugin_info {
  size_t struct_size;
  const char* backend_name;   /* selection name, [a-z0-9_]+, e.g. "reference", "turboquant" */
  const char* plugin_version; /* semantic version of the plugin build, e.g. "0.1.0" */
  const char* description;    /* one line for humans */
  uint32_t abi_major;         /* ABI the plugin was built for */
  uint32_t abi_minor;
  uint32_t device_mask;       /* ATB_BIT(atb_device_type) for each device forward accepts */
  uint32_t dtype_mask;        /* ATB_BIT(atb_dtype) for each dtype of query/key/value/output */
  uint32_t capability_flags;  /* ATB_CAP_* */
  uint32_t num_head_sizes;    /* entries in head_sizes */
  const uint32_t* head_sizes; /* head sizes create_backend accepts, ascending */
} atb_plugin_info;

/* ------------------------------------------------------------------------------------------------
 * Host services
 * ---------------------------------------------------------------------------------------------- */

typedef enum atb_log_level {
  ATB_LOG_TRACE = 0,
  ATB_LOG_DEBUG = 1,
  ATB_LOG_INFO = 2,
  ATB_LOG_WARN = 3,
  ATB_LOG_ERROR = 4,
  ATB_LOG_OFF = 6
} atb_log_level;

/* Called by the plugin for every log record at or above the level.  `message` is valid only during
 * the call.  May be called from any thread the plugin runs on; the host makes it thread-safe. */
typedef void (*atb_log_fn)(void* user_data, int32_t level, const char* logger_name,
                           const char* message);

/* Services the host lends the plugin.  Owner: host.  Who writes: host.  The plugin copies the
 * struct; the function pointer and user_data must stay valid until the next set_host_services call
 * or until the library is unloaded. */
typedef struct atb_host_services {
  size_t struct_size;
  atb_log_fn log;      /* NULL (default): the plugin logs to stderr itself */
  void* log_user_data; /* passed back to `log` untouched */
  int32_t log_level;   /* an atb_log_level; records below it are dropped. Default ATB_LOG_WARN */
} atb_host_services;

/* ------------------------------------------------------------------------------------------------
 * Layer spec
 * ---------------------------------------------------------------------------------------------- */

/* One attention layer as the backend will serve it.  Owner: host.  Who writes: host.  The plugin
 * copies it at create_backend.  "Local" means on this shard under tensor parallelism. */
typedef struct atb_layer_spec {
  size_t struct_size;
  int32_t attention_kind;    /* an atb_attention_kind.                     Default STANDARD */
  int32_t num_query_heads;   /* local query heads, >= 1, a multiple of num_kv_heads */
  int32_t num_kv_heads;      /* local KV heads, >= 1 (1 = MQA) */
  int32_t head_size_k;       /* elements per query/key head, >= 1 */
  int32_t head_size_v;       /* elements per value/output head, >= 1 */
  int32_t dtype;             /* atb_dtype of query, key, value and output tensors */
  int32_t block_size;        /* tokens per KV page, >= 1 */
  int32_t sliding_window;    /* 0: none. W > 0: a query at position p sees keys p-W+1 .. p */
  float logits_soft_cap;     /* 0: none. c > 0: score s becomes c * tanh(s / c) before softmax */
  float scale;               /* multiplies q.k; 0 means 1/sqrt(head_size_k) */
  int32_t layer_index;       /* 0-based index of this layer in the model */
  int32_t num_layers;        /* layers in the model, > layer_index */
  int32_t kv_shared_with_layer; /* -1: own cache. L >= 0 (< layer_index): read layer L's pages,
                                   write nothing. Default -1 */
  int32_t first_global_kv_head; /* global index of local KV head 0 (tensor parallel). Default 0 */
  int32_t num_global_kv_heads;  /* KV heads of the whole model; 0 means num_kv_heads. Default 0 */
  int32_t device_type;       /* atb_device_type the forward tensors live on. Default CPU */
  int32_t device_id;         /* CUDA ordinal; 0 for CPU. Default 0 */
} atb_layer_spec;

/* ------------------------------------------------------------------------------------------------
 * KV-cache spec: how the host sizes and lays out its page pool
 * ---------------------------------------------------------------------------------------------- */

/* Owner: host.  Who writes: host sets struct_size, the plugin fills the rest.
 * The host allocates num_pages pages of page_bytes each, page i starting at
 * kv_pages + i * page_stride_bytes, where page_stride_bytes >= page_bytes and both kv_pages and the
 * stride are multiples of page_alignment.  A page holds block_size tokens of every local KV head of
 * this layer, K and V.  The layout inside a page is the plugin's. */
typedef struct atb_kv_cache_spec {
  size_t struct_size;
  uint64_t page_bytes;                 /* bytes of one page; exactly what the plugin may touch */
  uint64_t page_alignment;             /* required alignment of pages and of the stride, bytes */
  uint64_t k_bytes_per_token_per_head; /* K storage of one token of one KV head, bytes */
  uint64_t v_bytes_per_token_per_head; /* V storage of one token of one KV head, bytes */
  int32_t block_size;                  /* tokens per page (echo of the layer spec) */
  int32_t writes_kv;                   /* 0 for a KV-sharing layer (reads another layer's pages) */
  uint64_t workspace_bytes;            /* scratch forward needs in atb_forward_args.workspace */
} atb_kv_cache_spec;

/* ------------------------------------------------------------------------------------------------
 * Tensors and forward
 * ---------------------------------------------------------------------------------------------- */

#define ATB_MAX_DIMS 4

/* A view of host memory.  Owner: host (memory and struct).  Who writes: host.  The plugin reads the
 * elements, except for the forward output, whose elements it writes. */
typedef struct atb_tensor {
  size_t struct_size;
  void* data;                     /* first element; aligned to the element size */
  int32_t dtype;                  /* atb_dtype */
  int32_t device_type;            /* atb_device_type. Default CPU */
  int32_t device_id;              /* CUDA ordinal. Default 0 */
  int32_t ndim;                   /* 1 .. ATB_MAX_DIMS */
  int64_t shape[ATB_MAX_DIMS];    /* elements per dimension, >= 0 */
  int64_t strides[ATB_MAX_DIMS];  /* in elements (not bytes), >= 0 */
  void* stream;                   /* cudaStream_t for CUDA tensors; NULL for CPU */
} atb_tensor;

/* One forward step of one layer, in the paged form vLLM uses: the batch is a flat list of
 * num_tokens new tokens, grouped by sequence through query_start_loc.  Sequence s owns new tokens
 * query_start_loc[s] .. query_start_loc[s+1]-1; its total length after this step is seq_lens[s], so
 * its new tokens sit at positions seq_lens[s] - q_len .. seq_lens[s] - 1 (q_len = its token count).
 * A prefill has q_len == seq_len, a decode q_len == 1, a chunked prefill anything between; all mix
 * freely in one call.  Attention is causal: new token at position p sees positions <= p.
 *
 * The plugin first writes every new token's K and V (unless the layer shares another's cache) into
 * slot slot_mapping[t] = block_id * block_size + offset_in_block, then computes attention for every
 * query token over the cached keys of its sequence, found through block_tables.  slot_mapping[t] is
 * the slot that its sequence's block_tables row gives for token t's position (as in vLLM), and no
 * sequence reads a page row that another sequence's new token is written to in the same call: the
 * CUDA path reads the older positions while the new rows are still being written.
 *
 * Owner: host.  Who writes: host; the plugin writes output elements and the pages of written slots.
 * Integer arrays live on the same device as the tensors.
 *
 * CUDA (device_type 2): forward only enqueues work on the tensors' stream (never synchronises,
 * allocates nothing, so it can be captured in a CUDA graph).  The integer arrays are then on the
 * device and forward cannot read them: their contents are checked by the kernels, which never
 * touch memory outside the pool, the tensors or the workspace; a token whose slot is outside the
 * pool is not written, and a sequence whose block table names a page outside the pool, or whose
 * length exceeds what its block-table row holds, gets NaN outputs (loud, never silently plausible).
 * Query offsets outside [0, num_tokens] or decreasing never make a kernel read or write rows outside
 * the tensors (the outputs of the tokens concerned are then unspecified). */
typedef struct atb_forward_args {
  size_t struct_size;
  const atb_tensor* query;  /* [num_tokens, num_query_heads, head_size_k] */
  const atb_tensor* key;    /* [num_tokens, num_kv_heads, head_size_k]; NULL when writes_kv is 0 */
  const atb_tensor* value;  /* [num_tokens, num_kv_heads, head_size_v]; NULL when writes_kv is 0 */
  const atb_tensor* output; /* [num_tokens, num_query_heads, head_size_v]; written by the plugin */
  void* kv_pages;             /* page 0 of this layer's pool (or the shared layer's pool) */
  int64_t num_pages;          /* pages in the pool, >= 1 */
  uint64_t page_stride_bytes; /* distance between page starts, >= page_bytes */
  int32_t num_tokens;         /* new tokens in the batch, >= 0 */
  int32_t num_seqs;           /* sequences in the batch, >= 0 */
  const int64_t* slot_mapping;    /* [num_tokens]; -1 skips the write (padding token) */
  const int32_t* query_start_loc; /* [num_seqs + 1]; 0 first, num_tokens last, non-decreasing */
  const int32_t* seq_lens;        /* [num_seqs]; >= the sequence's q_len */
  const int32_t* block_tables;    /* [num_seqs, block_table_stride]; page ids in [0, num_pages) */
  int32_t block_table_stride;     /* entries per row, >= ceil(seq_len / block_size) */
  void* workspace;                /* scratch of >= workspace_bytes (spec); may be NULL if 0 */
  uint64_t workspace_bytes;       /* size of `workspace` */
  uint32_t flags;                 /* ATB_FORWARD_* bits. Default 0 */
} atb_forward_args;

/* Bits of atb_forward_args.flags. */
/* Write the new tokens' K/V and compute nothing else: query and output may be NULL and are not
 * touched (importing a prefix, warming a cache, or a host that computes attention elsewhere). */
#define ATB_FORWARD_WRITE_KV_ONLY (1u << 0)

/* ------------------------------------------------------------------------------------------------
 * The function table
 * ---------------------------------------------------------------------------------------------- */

typedef struct atb_backend atb_backend; /* opaque, owned by the host once created */

/* Owner: plugin (static storage, valid until unload).  Who writes: plugin.  Hosts read only the
 * entries within struct_size; a NULL entry means "not provided" (none is NULL at minor 0). */
typedef struct atb_api {
  size_t struct_size;
  uint32_t abi_major; /* ABI the plugin implements */
  uint32_t abi_minor;

  /* Fills `info`. */
  atb_status (*get_plugin_info)(atb_plugin_info* info, atb_error* error);

  /* Sets the plugin-wide logger and level (shared by all backends of this library). */
  atb_status (*set_host_services)(const atb_host_services* services, atb_error* error);

  /* Creates a backend for one layer.  config_json: a NUL-terminated JSON object (NULL or "" means
   * "{}"), validated here: unknown keys, wrong types and bad values are errors.  On success
   * *out_backend is a new handle; on failure it is set to NULL. */
  atb_status (*create_backend)(const atb_layer_spec* spec, const char* config_json,
                               atb_backend** out_backend, atb_error* error);

  /* Fills the KV-cache spec of a backend. */
  atb_status (*get_kv_cache_spec)(const atb_backend* backend, atb_kv_cache_spec* spec,
                                  atb_error* error);

  /* Writes the new tokens' K/V into their slots and computes attention (see atb_forward_args).
   * On any validation failure nothing has been written: not the pages, not the output. */
  atb_status (*forward)(atb_backend* backend, const atb_forward_args* args, atb_error* error);

  /* Releases a backend.  NULL is accepted and does nothing. */
  atb_status (*destroy_backend)(atb_backend* backend, atb_error* error);
} atb_api;

/* The entry symbol.  The host states the ABI version it was built for.  Returns ATB_OK and sets
 * *out_api to the plugin's table when host_abi_major equals the plugin's major (any minor);
 * otherwise returns ATB_ERR_VERSION_MISMATCH with a message naming both versions and sets *out_api
 * to NULL. */
typedef atb_status (*atb_get_api_fn)(uint32_t host_abi_major, uint32_t host_abi_minor,
                                     const atb_api** out_api, atb_error* error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ATB_ABI_H */
