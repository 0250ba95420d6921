"""ctypes mirror of sdk/include/atb/abi.h (ABI 1.1): constants, structs and function types.

Every struct lists its fields in the header's order with the header's types, so ctypes lays it out as
the C compiler does; tests/test_abi_layout.py checks each offset and size against the compiled header.
"""

import ctypes
from ctypes import POINTER, c_char, c_char_p, c_float, c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p

ABI_VERSION_MAJOR = 1
ABI_VERSION_MINOR = 1
ENTRY_SYMBOL = "atb_get_api"
ERROR_MESSAGE_CAPACITY = 1024
MAX_DIMS = 4

# atb_status_code
OK = 0
ERR_INVALID_ARGUMENT = 1
ERR_UNSUPPORTED = 2
ERR_VERSION_MISMATCH = 3
ERR_OUT_OF_MEMORY = 4
ERR_INTERNAL = 5

# atb_dtype
DTYPE_F32 = 1
DTYPE_F16 = 2
DTYPE_BF16 = 3

# atb_device_type
DEVICE_CPU = 1
DEVICE_CUDA = 2

# atb_attention_kind
ATTENTION_STANDARD = 1
ATTENTION_MLA = 2
ATTENTION_LINEAR = 3

# atb_plugin_info.capability_flags
CAP_PAGED_KV_CACHE = 1 << 0
CAP_GQA = 1 << 1
CAP_CHUNKED_PREFILL = 1 << 2
CAP_MIXED_BATCH = 1 << 3
CAP_SLIDING_WINDOW = 1 << 4
CAP_LOGITS_SOFT_CAP = 1 << 5
CAP_KV_SHARING = 1 << 6
CAP_COMPRESSED_KV = 1 << 7
CAP_TENSOR_PARALLEL = 1 << 8

# atb_log_level
LOG_TRACE = 0
LOG_DEBUG = 1
LOG_INFO = 2
LOG_WARN = 3
LOG_ERROR = 4
LOG_OFF = 6

KV_CACHE_COMPRESSED = 1 << 0
FORWARD_WRITE_KV_ONLY = 1 << 0


def bit(enum_value):
    """ATB_BIT: the mask bit of an enum value (device_mask, dtype_mask)."""
    return 1 << enum_value


class _Versioned(ctypes.Structure):
    """A struct that starts with struct_size; its ABI size ends at its last field (ATB_STRUCT_SIZE)."""

    @classmethod
    def abi_size(cls):
        name, ctype = cls._fields_[-1][:2]
        return getattr(cls, name).offset + ctypes.sizeof(ctype)

    @classmethod
    def versioned(cls, **fields):
        """A zeroed struct with struct_size set, then the given fields.  sizeof equals the ABI size for
        every struct but atb_error, where the C++ host sends sizeof too."""
        value = cls()
        value.struct_size = ctypes.sizeof(cls)  # as the C++ host (make_versioned): sizeof
        for name, field_value in fields.items():
            setattr(value, name, field_value)
        return value


class Error(_Versioned):
    _fields_ = [("struct_size", c_size_t), ("status", c_int32), ("message", c_char * ERROR_MESSAGE_CAPACITY)]


class PluginInfo(_Versioned):
    _fields_ = [
        ("struct_size", c_size_t),
        ("backend_name", c_char_p),
        ("plugin_version", c_char_p),
        ("description", c_char_p),
        ("abi_major", c_uint32),
        ("abi_minor", c_uint32),
        ("device_mask", c_uint32),
        ("dtype_mask", c_uint32),
        ("capability_flags", c_uint32),
        ("num_head_sizes", c_uint32),
        ("head_sizes", POINTER(c_uint32)),
    ]


LogFn = ctypes.CFUNCTYPE(None, c_void_p, c_int32, c_char_p, c_char_p)


class HostServices(_Versioned):
    _fields_ = [
        ("struct_size", c_size_t),
        ("log", LogFn),
        ("log_user_data", c_void_p),
        ("log_level", c_int32),
        ("reserved0", c_int32),
    ]


class LayerSpec(_Versioned):
    _fields_ = [
        ("struct_size", c_size_t),
        ("attention_kind", c_int32),
        ("num_query_heads", c_int32),
        ("num_kv_heads", c_int32),
        ("head_size_k", c_int32),
        ("head_size_v", c_int32),
        ("dtype", c_int32),
        ("block_size", c_int32),
        ("sliding_window", c_int32),
        ("logits_soft_cap", c_float),
        ("scale", c_float),
        ("layer_index", c_int32),
        ("num_layers", c_int32),
        ("kv_shared_with_layer", c_int32),
        ("first_global_kv_head", c_int32),
        ("num_global_kv_heads", c_int32),
        ("device_type", c_int32),
        ("device_id", c_int32),
        ("reserved0", c_int32),
    ]


class KvCacheSpec(_Versioned):
    _fields_ = [
        ("struct_size", c_size_t),
        ("page_bytes", c_uint64),
        ("page_alignment", c_uint64),
        ("k_bytes_per_token_per_head", c_uint64),
        ("v_bytes_per_token_per_head", c_uint64),
        ("block_size", c_int32),
        ("writes_kv", c_int32),
        ("workspace_bytes", c_uint64),
        ("cache_flags", c_uint32),
        ("workspace_alignment", c_uint32),
    ]


class Tensor(_Versioned):
    _fields_ = [
        ("struct_size", c_size_t),
        ("data", c_void_p),
        ("dtype", c_int32),
        ("device_type", c_int32),
        ("device_id", c_int32),
        ("ndim", c_int32),
        ("shape", c_int64 * MAX_DIMS),
        ("strides", c_int64 * MAX_DIMS),
        ("stream", c_void_p),
    ]


class ForwardArgs(_Versioned):
    _fields_ = [
        ("struct_size", c_size_t),
        ("query", POINTER(Tensor)),
        ("key", POINTER(Tensor)),
        ("value", POINTER(Tensor)),
        ("output", POINTER(Tensor)),
        ("kv_pages", c_void_p),
        ("num_pages", c_int64),
        ("page_stride_bytes", c_uint64),
        ("num_tokens", c_int32),
        ("num_seqs", c_int32),
        ("slot_mapping", POINTER(c_int64)),
        ("query_start_loc", POINTER(c_int32)),
        ("seq_lens", POINTER(c_int32)),
        ("block_tables", POINTER(c_int32)),
        ("block_table_stride", c_int32),
        ("workspace", c_void_p),
        ("workspace_bytes", c_uint64),
        ("flags", c_uint32),
        ("reserved0", c_uint32),
    ]


class Backend(ctypes.Structure):
    """Opaque atb_backend."""


ErrorPtr = POINTER(Error)
GetPluginInfoFn = ctypes.CFUNCTYPE(c_int32, POINTER(PluginInfo), ErrorPtr)
SetHostServicesFn = ctypes.CFUNCTYPE(c_int32, POINTER(HostServices), ErrorPtr)
CreateBackendFn = ctypes.CFUNCTYPE(c_int32, POINTER(LayerSpec), c_char_p, POINTER(POINTER(Backend)), ErrorPtr)
GetKvCacheSpecFn = ctypes.CFUNCTYPE(c_int32, POINTER(Backend), POINTER(KvCacheSpec), ErrorPtr)
ForwardFn = ctypes.CFUNCTYPE(c_int32, POINTER(Backend), POINTER(ForwardArgs), ErrorPtr)
DestroyBackendFn = ctypes.CFUNCTYPE(c_int32, POINTER(Backend), ErrorPtr)
GetConfigSchemaFn = ctypes.CFUNCTYPE(c_int32, POINTER(c_char_p), ErrorPtr)


class Api(_Versioned):
    _fields_ = [
        ("struct_size", c_size_t),
        ("abi_major", c_uint32),
        ("abi_minor", c_uint32),
        ("get_plugin_info", GetPluginInfoFn),
        ("set_host_services", SetHostServicesFn),
        ("create_backend", CreateBackendFn),
        ("get_kv_cache_spec", GetKvCacheSpecFn),
        ("forward", ForwardFn),
        ("destroy_backend", DestroyBackendFn),
        ("get_config_schema", GetConfigSchemaFn),
    ]

    @classmethod
    def min_abi_size(cls):
        """ATB_API_MIN_STRUCT_SIZE: minor 0's table, which ends at destroy_backend."""
        return cls.destroy_backend.offset + ctypes.sizeof(DestroyBackendFn)


GetApiFn = ctypes.CFUNCTYPE(c_int32, c_uint32, c_uint32, POINTER(POINTER(Api)), ErrorPtr)

# Minimum sizes of the input structs (the fields before them have no default).
LAYER_SPEC_MIN_STRUCT_SIZE = LayerSpec.num_layers.offset + ctypes.sizeof(c_int32)
TENSOR_MIN_STRUCT_SIZE = Tensor.strides.offset + ctypes.sizeof(c_int64 * MAX_DIMS)
FORWARD_ARGS_MIN_STRUCT_SIZE = ForwardArgs.block_table_stride.offset + ctypes.sizeof(c_int32)
HOST_SERVICES_MIN_STRUCT_SIZE = ctypes.sizeof(c_size_t)

STRUCTS = {
    "atb_error": Error,
    "atb_plugin_info": PluginInfo,
    "atb_host_services": HostServices,
    "atb_layer_spec": LayerSpec,
    "atb_kv_cache_spec": KvCacheSpec,
    "atb_tensor": Tensor,
    "atb_forward_args": ForwardArgs,
    "atb_api": Api,
}
