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
 *     - struct_size is ATB_<STRUCT>_STRUCT_SIZE: the end of the struct's last field (PJRT's
 *       offsetof + sizeof rule), never a sizeof that tail padding could pad.  Every struct is laid
 *       out without tail padding (explicit `reserved` fields fill it), so sizeof equals the macro
 *       and a field appended in a later minor always grows it.  Hosts built against minor 0 that
 *       sent sizeof() keep working: their sizeof equals this minor's macro, the bytes they sent in
 *       the place of today's `reserved` fields are ignored, and fields appended later lie past it;
 *     - a reader never reads past the struct_size it was given, and uses the documented default for
 *       any field past that size (an older writer did not know the field).  Each input struct has a
 *       minimum, ATB_<STRUCT>_MIN_STRUCT_SIZE: the fields before it have no default, and a smaller
 *       struct_size is refused with ATB_ERR_INVALID_ARGUMENT;
 *     - a writer of an output struct (the host allocates it, the plugin fills it) writes only the
 *       fields that fit inside the struct_size the host set, so an older host's smaller struct is
 *       never overrun, and then sets struct_size to the bytes it filled: min(the host's size, its
 *       own).  A newer host reads the fields within that size and keeps its own defaults for the
 *       rest.  (Plugins of minor 0 left struct_size as the host set it and filled only minor-0
 *       fields: a host learns the plugin's minor from atb_api.abi_minor.)
 *   New fields are only ever appended, so an old host + new plugin and a new host + old plugin both
 *   work within one major.  `reserved` fields are written 0 and ignored by readers.
 *
 * Ownership
 *   The host owns every buffer: KV pages, inputs, outputs, workspace and error structs.  A plugin
 *   writes only inside the pages whose slots it was handed, the output tensor, the workspace and the
 *   output structs it was given, never elsewhere.  Strings a plugin returns in atb_plugin_info are
 *   static: valid until the library is unloaded.  Backend handles are owned by the host and released
 *   with destroy_backend.
 *
 * Errors
 *   Every entry point returns an atb_status (an int32_t at the boundary).  On failure, when the host
 *   passed a non-NULL atb_error, the plugin writes a NUL-terminated message naming the field, the
 *   offending value and what is allowed.  Plugins never abort, exit or throw across this boundary.
 *   A NULL where the ABI asks for a pointer is refused with ATB_ERR_INVALID_ARGUMENT, except where a
 *   field says NULL is allowed (config_json, set_host_services, destroy_backend, the error itself).
 *   A request that is well-formed but beyond this plugin or this machine (MLA, a head size, a CUDA
 *   layer without a usable GPU) is ATB_ERR_UNSUPPORTED.
 *
 * Memory the host need not prepare
 *   A new pool need not be zeroed: a plugin reads only the rows of positions < seq_len of the
 *   sequences it is handed, which the host has had written by earlier forwards (or this one), so
 *   outputs never depend on bytes it did not write.  The workspace's contents are undefined on entry
 *   to every forward (a host may lend it to others between calls).
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
#define ATB_ABI_VERSION_MINOR 1

/* The bytes of `type` up to the end of `field`: the struct_size of a struct whose last field is
 * `field`.  Hosts and plugins use the ATB_<STRUCT>_STRUCT_SIZE macros below, never sizeof. */
#define ATB_STRUCT_SIZE(type, field) (offsetof(type, field) + sizeof(((type*)0)->field))

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

/* Returned by every entry point: one of the atb_status_code values.  A fixed-width integer, because
 * the C standard leaves the size of an enum to the compiler. */
typedef int32_t atb_status;

enum atb_status_code {
  ATB_OK = 0,
  ATB_ERR_INVALID_ARGUMENT = 1, /* a field has a value outside what is allowed; message names it */
  ATB_ERR_UNSUPPORTED = 2,      /* valid request this plugin cannot serve (e.g. MLA, a head size) */
  ATB_ERR_VERSION_MISMATCH = 3, /* the host's ABI major differs from the plugin's */
  ATB_ERR_OUT_OF_MEMORY = 4,    /* the plugin could not allocate its own (small) state */
  ATB_ERR_INTERNAL = 5          /* a bug in the plugin; caught at the boundary, never thrown */
};

#define ATB_ERROR_MESSAGE_CAPACITY 1024

/* Error channel.  Owner: host.  Who writes: host sets struct_size; the plugin writes `status` and
 * `message` on failure (and leaves them untouched on success).  A host may pass a smaller struct:
 * `status` is written when struct_size reaches past it, and the message's capacity is then
 * min(struct_size - offsetof(atb_error, message), ATB_ERROR_MESSAGE_CAPACITY) bytes; the message is
 * always NUL-terminated within that capacity and truncated if longer.  Nothing past struct_size is
 * written.  struct_size is left as the host set it.  Nothing is appended after `message`. */
typedef struct atb_error {
  size_t struct_size;                       /* ATB_ERROR_STRUCT_SIZE, or smaller (see above) */
  int32_t status;                           /* an atb_status */
  char message[ATB_ERROR_MESSAGE_CAPACITY]; /* UTF-8, NUL-terminated */
} atb_error;

#define ATB_ERROR_STRUCT_SIZE ATB_STRUCT_SIZE(atb_error, message)

/* ------------------------------------------------------------------------------------------------
 * Enumerations
 * ---------------------------------------------------------------------------------------------- */

typedef enum atb_dtype {
  ATB_DTYPE_F32 = 1, /* IEEE binary32 */
  ATB_DTYPE_F16 = 2, /* IEEE binary16 */
  ATB_DTYPE_BF16 = 3 /* bfloat16: the upper 16 bits of a binary32 */
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
#define ATB_CAP_KV_SHARING (1u << 6) /* a layer may read an earlier layer's pages */
/* The plugin can store a cache in fewer bytes than the layer's dtype (for some config).  Whether
 * one backend does is its atb_kv_cache_spec.cache_flags & ATB_KV_CACHE_COMPRESSED. */
#define ATB_CAP_COMPRESSED_KV (1u << 7)
#define ATB_CAP_TENSOR_PARALLEL (1u << 8) /* honours first_global_kv_head for sharded heads */
/* Capabilities are what the plugin can do with some config; a backend's config may narrow them. */

/* Bits of atb_plugin_info.device_mask and dtype_mask: (1u << enum value). */
#define ATB_BIT(enum_value) (1u << (unsigned)(enum_value))

/* ------------------------------------------------------------------------------------------------
 * Plugin info
 * ---------------------------------------------------------------------------------------------- */

/* What a plugin is and can do.  Owner: host.  Who writes: host sets struct_size, the plugin fills
 * every field that fits and sets struct_size to the bytes it filled (see Versioning).  Pointers
 * point to static storage of the plugin (valid until unload). */
typedef struct atb_plugin_info {
  size_t struct_size;         /* ATB_PLUGIN_INFO_STRUCT_SIZE; any size >= sizeof(size_t) */
  const char* backend_name;   /* selection name, [a-z0-9_]+, e.g. "reference", "turboquant" */
  const char* plugin_version; /* semantic version of the plugin build, e.g. "0.1.0" */
  const char* description;    /* one line for humans */
  uint32_t abi_major;         /* ABI the plugin was built for */
  uint32_t abi_minor;
  /* ATB_BIT(atb_device_type) for each device this build can serve.  Static: whether a device is
   * present is known only at create_backend, which returns ATB_ERR_UNSUPPORTED when it is not. */
  uint32_t device_mask;
  uint32_t dtype_mask;       /* ATB_BIT(atb_dtype) for each dtype of query/key/value/output */
  uint32_t capability_flags; /* ATB_CAP_* */
  uint32_t num_head_sizes;   /* entries in head_sizes */
  /* Head sizes create_backend accepts, ascending; head_size_k and head_size_v are each taken from
   * this list.  A plugin may still refuse a pair of them (e.g. K 128 with V 64 on one device) with
   * ATB_ERR_UNSUPPORTED and a message naming both. */
  const uint32_t* head_sizes;
} atb_plugin_info;

#define ATB_PLUGIN_INFO_STRUCT_SIZE ATB_STRUCT_SIZE(atb_plugin_info, head_sizes)

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
typedef void (*atb_log_fn)(void* user_data, int32_t level, const char* logger_name, const char* message);

/* Services the host lends the plugin.  Owner: host.  Who writes: host.  The plugin copies the
 * struct; the function pointer and user_data must stay valid until the next set_host_services call
 * or until the library is unloaded.  set_host_services(NULL) restores the defaults. */
typedef struct atb_host_services {
  size_t struct_size;  /* ATB_HOST_SERVICES_STRUCT_SIZE; any size >= sizeof(size_t) */
  atb_log_fn log;      /* NULL (default): the plugin logs to stderr itself */
  void* log_user_data; /* passed back to `log` untouched */
  int32_t log_level;   /* an atb_log_level; records below it are dropped. Default ATB_LOG_WARN */
  int32_t reserved0;   /* minor 1: fills what was tail padding in minor 0 */
} atb_host_services;

#define ATB_HOST_SERVICES_STRUCT_SIZE ATB_STRUCT_SIZE(atb_host_services, reserved0)
#define ATB_HOST_SERVICES_MIN_STRUCT_SIZE sizeof(size_t)

/* ------------------------------------------------------------------------------------------------
 * Layer spec
 * ---------------------------------------------------------------------------------------------- */

/* One attention layer as the backend will serve it.  Owner: host.  Who writes: host.  The plugin
 * copies it at create_backend.  "Local" means on this shard under tensor parallelism.  Fields up to
 * num_layers have no default (ATB_LAYER_SPEC_MIN_STRUCT_SIZE); the rest default as stated.
 *
 * Query head h (local) is served by local KV head h / (num_query_heads / num_kv_heads): the query
 * heads of one KV head are consecutive (GQA; MQA when num_kv_heads is 1). */
typedef struct atb_layer_spec {
  size_t struct_size;           /* ATB_LAYER_SPEC_STRUCT_SIZE; >= ATB_LAYER_SPEC_MIN_STRUCT_SIZE */
  int32_t attention_kind;       /* an atb_attention_kind.                     Default STANDARD */
  int32_t num_query_heads;      /* local query heads, 1 .. 65536, a multiple of num_kv_heads */
  int32_t num_kv_heads;         /* local KV heads, 1 .. 4096 (1 = MQA) */
  int32_t head_size_k;          /* elements per query/key head: one of atb_plugin_info.head_sizes */
  int32_t head_size_v;          /* elements per value/output head: one of atb_plugin_info.head_sizes */
  int32_t dtype;                /* atb_dtype of query, key, value and output tensors */
  int32_t block_size;           /* tokens per KV page, 1 .. 4096 */
  int32_t sliding_window;       /* 0: none. W > 0: a query at position p sees keys p-W+1 .. p */
  float logits_soft_cap;        /* 0: none. c > 0 and finite: score s becomes c * tanh(s / c) */
  float scale;                  /* multiplies q.k, > 0 and finite; 0 means 1/sqrt(head_size_k) */
  int32_t layer_index;          /* 0-based index of this layer in the model, 0 .. num_layers-1 */
  int32_t num_layers;           /* layers in the model, >= 1 */
  int32_t kv_shared_with_layer; /* -1: own cache. L >= 0 (< layer_index): read layer L's pages,
                                   write nothing. Default -1 */
  int32_t first_global_kv_head; /* global index of local KV head 0 (tensor parallel), >= 0.
                                   Default 0 */
  /* KV heads of the whole model, >= first_global_kv_head + num_kv_heads; 0 means exactly that sum.
   * Under tensor parallelism a shard holds global KV heads first_global_kv_head ..
   * first_global_kv_head + num_kv_heads - 1 with their query heads, in the model's order; what a
   * plugin derives per head (e.g. a rotation) follows the global index.  Default 0 */
  int32_t num_global_kv_heads;
  int32_t device_type; /* atb_device_type the forward tensors live on. Default CPU */
  int32_t device_id;   /* CUDA ordinal, >= 0; 0 for CPU. Default 0 */
  int32_t reserved0;   /* minor 1: fills what was tail padding in minor 0 */
} atb_layer_spec;

#define ATB_LAYER_SPEC_STRUCT_SIZE ATB_STRUCT_SIZE(atb_layer_spec, reserved0)
#define ATB_LAYER_SPEC_MIN_STRUCT_SIZE ATB_STRUCT_SIZE(atb_layer_spec, num_layers)

/* ------------------------------------------------------------------------------------------------
 * KV-cache spec: how the host sizes and lays out its page pool
 * ---------------------------------------------------------------------------------------------- */

/* Owner: host.  Who writes: host sets struct_size, the plugin fills the rest and sets struct_size
 * to the bytes it filled (see Versioning).
 * The host allocates num_pages pages of page_bytes each, page i starting at
 * kv_pages + i * page_stride_bytes, where page_stride_bytes >= page_bytes and both kv_pages and the
 * stride are multiples of page_alignment.  A page holds block_size tokens of every local KV head of
 * this layer, K and V.  The layout inside a page is the plugin's.  The pool need not be zeroed.
 * Every value is fixed for the backend's lifetime: none depends on a batch. */
typedef struct atb_kv_cache_spec {
  size_t struct_size;                  /* ATB_KV_CACHE_SPEC_STRUCT_SIZE; any >= sizeof(size_t) */
  uint64_t page_bytes;                 /* bytes of one page; exactly what the plugin may touch */
  uint64_t page_alignment;             /* required alignment of pages and of the stride, bytes */
  uint64_t k_bytes_per_token_per_head; /* K storage of one token of one KV head, bytes */
  uint64_t v_bytes_per_token_per_head; /* V storage of one token of one KV head, bytes */
  int32_t block_size;                  /* tokens per page (echo of the layer spec) */
  int32_t writes_kv;                   /* 0 for a KV-sharing layer (reads another layer's pages) */
  uint64_t workspace_bytes;            /* scratch forward needs in atb_forward_args.workspace */
  /* Minor 1.  ATB_KV_CACHE_* bits.  A minor-0 plugin sends none (the host keeps its default 0). */
  uint32_t cache_flags;
  /* Minor 1.  Required alignment of atb_forward_args.workspace, bytes, a power of two.  0 from a
   * minor-0 plugin: align to 256 bytes. */
  uint32_t workspace_alignment;
} atb_kv_cache_spec;

#define ATB_KV_CACHE_SPEC_STRUCT_SIZE ATB_STRUCT_SIZE(atb_kv_cache_spec, workspace_alignment)

/* Bits of atb_kv_cache_spec.cache_flags. */
/* This backend stores K and V in fewer bytes than the layer's dtype would:
 * k_bytes_per_token_per_head + v_bytes_per_token_per_head < (head_size_k + head_size_v) x the
 * dtype's size.  Set exactly when that holds. */
#define ATB_KV_CACHE_COMPRESSED (1u << 0)

/* ------------------------------------------------------------------------------------------------
 * Tensors and forward
 * ---------------------------------------------------------------------------------------------- */

#define ATB_MAX_DIMS 4

/* A view of host memory.  Owner: host (memory and struct).  Who writes: host.  The plugin reads the
 * elements, except for the forward output, whose elements it writes.
 * The forward's tensors are 3-D ([tokens, heads, head size]; any other ndim is refused).  Strides
 * are honoured as given, in elements: the last must be 1 (a head's elements contiguous), the others
 * any value >= 0.  Zero strides are legal on inputs (broadcast); on the output a zero stride is
 * refused where its dimension has more than one element (two elements would be one). */
typedef struct atb_tensor {
  size_t struct_size;            /* ATB_TENSOR_STRUCT_SIZE; >= ATB_TENSOR_MIN_STRUCT_SIZE */
  void* data;                    /* first element; aligned to the element size */
  int32_t dtype;                 /* atb_dtype */
  int32_t device_type;           /* atb_device_type. Default CPU */
  int32_t device_id;             /* CUDA ordinal. Default 0 */
  int32_t ndim;                  /* 1 .. ATB_MAX_DIMS (3 for forward) */
  int64_t shape[ATB_MAX_DIMS];   /* elements per dimension, >= 0 */
  int64_t strides[ATB_MAX_DIMS]; /* in elements (not bytes), >= 0 */
  void* stream;                  /* cudaStream_t for CUDA tensors; NULL: the default stream / CPU.
                                    Default NULL */
} atb_tensor;

#define ATB_TENSOR_STRUCT_SIZE ATB_STRUCT_SIZE(atb_tensor, stream)
#define ATB_TENSOR_MIN_STRUCT_SIZE ATB_STRUCT_SIZE(atb_tensor, strides)

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
 * Block tables: only the entries a sequence uses, ceil(seq_len / block_size) of its row, must be
 * page ids in [0, num_pages); the rest of the row is never read (it may hold -1 or anything).
 *
 * Slot mapping and block tables must agree (a host obligation).  On the CPU the plugin checks it and
 * refuses a mismatch with ATB_ERR_INVALID_ARGUMENT; on a device it cannot read the arrays and
 * writes the slot it is given.
 *
 * Padding tokens: slot_mapping[t] == -1 skips token t's K/V write.  Its query is still answered like
 * any token of its sequence, over its sequence's rows as they stand in the pool (its own row keeps
 * what it held): the output row is written, its value unspecified; hosts set it aside.
 *
 * Owner: host.  Who writes: host; the plugin writes output elements and the pages of written slots.
 * Integer arrays live on the same device as the tensors.  Fields up to block_table_stride have no
 * default (ATB_FORWARD_ARGS_MIN_STRUCT_SIZE); workspace, workspace_bytes and flags default to
 * NULL, 0 and 0.
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
  size_t struct_size;             /* ATB_FORWARD_ARGS_STRUCT_SIZE; >= ATB_FORWARD_ARGS_MIN_STRUCT_SIZE */
  const atb_tensor* query;        /* [num_tokens, num_query_heads, head_size_k] */
  const atb_tensor* key;          /* [num_tokens, num_kv_heads, head_size_k]; NULL when writes_kv is 0 */
  const atb_tensor* value;        /* [num_tokens, num_kv_heads, head_size_v]; NULL when writes_kv is 0 */
  const atb_tensor* output;       /* [num_tokens, num_query_heads, head_size_v]; written by the plugin */
  void* kv_pages;                 /* page 0 of this layer's pool (or the shared layer's pool) */
  int64_t num_pages;              /* pages in the pool, >= 1 */
  uint64_t page_stride_bytes;     /* distance between page starts, >= page_bytes */
  int32_t num_tokens;             /* new tokens in the batch, >= 0 */
  int32_t num_seqs;               /* sequences in the batch, >= 0 (0 allowed with WRITE_KV_ONLY) */
  const int64_t* slot_mapping;    /* [num_tokens]; -1 skips the write (padding token) */
  const int32_t* query_start_loc; /* [num_seqs + 1]; 0 first, num_tokens last, non-decreasing */
  const int32_t* seq_lens;        /* [num_seqs]; >= the sequence's q_len */
  const int32_t* block_tables;    /* [num_seqs, block_table_stride]; page ids in [0, num_pages) */
  int32_t block_table_stride;     /* entries per row, >= ceil(seq_len / block_size) */
  /* Scratch of >= the spec's workspace_bytes, aligned to its workspace_alignment; may be NULL when
   * that is 0.  Contents undefined on entry; the plugin uses it only during the call. */
  void* workspace;
  uint64_t workspace_bytes; /* size of `workspace` */
  uint32_t flags;           /* ATB_FORWARD_* bits; any other bit is refused. Default 0 */
  uint32_t reserved0;       /* minor 1: fills what was tail padding in minor 0 */
} atb_forward_args;

#define ATB_FORWARD_ARGS_STRUCT_SIZE ATB_STRUCT_SIZE(atb_forward_args, reserved0)
#define ATB_FORWARD_ARGS_MIN_STRUCT_SIZE ATB_STRUCT_SIZE(atb_forward_args, block_table_stride)

/* Bits of atb_forward_args.flags. */
/* Write the new tokens' K/V and compute nothing else: query and output may be NULL and are not
 * touched (importing a prefix, warming a cache, or a host that computes attention elsewhere).
 * num_seqs may then be 0, with query_start_loc, seq_lens and block_tables NULL: only the slots are
 * checked (against the pool). */
#define ATB_FORWARD_WRITE_KV_ONLY (1u << 0)

/* ------------------------------------------------------------------------------------------------
 * The function table
 * ---------------------------------------------------------------------------------------------- */

typedef struct atb_backend atb_backend; /* opaque, owned by the host once created */

/* Owner: plugin (static storage, valid until unload).  Who writes: plugin.  Hosts read only the
 * entries within struct_size; a NULL entry means "not provided" (none of minor 0's is NULL). */
typedef struct atb_api {
  size_t struct_size; /* ATB_API_STRUCT_SIZE of the plugin's minor */
  uint32_t abi_major; /* ABI the plugin implements */
  uint32_t abi_minor;

  /* Fills `info`. */
  atb_status (*get_plugin_info)(atb_plugin_info* info, atb_error* error);

  /* Sets the plugin-wide logger and level (shared by all backends of this library). */
  atb_status (*set_host_services)(const atb_host_services* services, atb_error* error);

  /* Creates a backend for one layer.  config_json: a NUL-terminated JSON object (NULL or "" means
   * "{}"), validated here: unknown keys, duplicate keys, wrong types and bad values are errors
   * (ATB_ERR_INVALID_ARGUMENT; get_config_schema lists what is allowed).  On success *out_backend is
   * a new handle; on failure it is set to NULL. */
  atb_status (*create_backend)(const atb_layer_spec* spec, const char* config_json, atb_backend** out_backend,
                               atb_error* error);

  /* Fills the KV-cache spec of a backend. */
  atb_status (*get_kv_cache_spec)(const atb_backend* backend, atb_kv_cache_spec* spec, atb_error* error);

  /* Writes the new tokens' K/V into their slots and computes attention (see atb_forward_args).
   * On any validation failure nothing has been written: not the pages, not the output. */
  atb_status (*forward)(atb_backend* backend, const atb_forward_args* args, atb_error* error);

  /* Releases a backend.  NULL is accepted and does nothing. */
  atb_status (*destroy_backend)(atb_backend* backend, atb_error* error);

  /* Minor 1.  Sets *out_schema to the JSON Schema of the config object create_backend accepts: an
   * object with "type": "object", "additionalProperties": false and a "properties" entry per key
   * giving its "type" ("boolean", "integer" or "string"), "default", and "minimum"/"maximum" or
   * "enum" (or, for free text such as a file path, "maxLength").  NUL-terminated UTF-8 in static
   * storage of the plugin (valid until unload). */
  atb_status (*get_config_schema)(const char** out_schema, atb_error* error);
} atb_api;

#define ATB_API_STRUCT_SIZE ATB_STRUCT_SIZE(atb_api, get_config_schema)
#define ATB_API_MIN_STRUCT_SIZE ATB_STRUCT_SIZE(atb_api, destroy_backend)

/* The entry symbol.  The host states the ABI version it was built for.  Returns ATB_OK and sets
 * *out_api to the plugin's table when host_abi_major equals the plugin's major (any minor);
 * otherwise returns ATB_ERR_VERSION_MISMATCH with a message naming both versions and sets *out_api
 * to NULL. */
typedef atb_status (*atb_get_api_fn)(uint32_t host_abi_major, uint32_t host_abi_minor, const atb_api** out_api,
                                     atb_error* error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ATB_ABI_H */
