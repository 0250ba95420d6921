"""atb: attention-backend plugins (sdk/include/atb/abi.h) from Python, through ctypes.

    import atb
    registry = atb.Registry.scan(["build/release/plugins"])
    plugin = registry.select("turboquant")
    backend = plugin.create_backend(atb.Layer(num_query_heads=8, num_kv_heads=2, head_size=128),
                                    {"k_quant": "q8_0", "v_quant": "q3_0"})
    pool = backend.allocate_pool(num_pages=64)
    batch = atb.PagedKvManager(block_size=16, num_pages=64).schedule([(0, 5)])
    backend.forward(q, k, v, out, pool=pool, batch=batch)
"""

from . import abi
from .backend import Backend, KvCacheSpec, Layer
from .errors import (AtbError, InternalError, InvalidArgumentError, OutOfMemoryError, UnsupportedError,
                     VersionMismatchError)
from .plugin import Plugin, PluginInfo
from .pool import PagedKvManager, PagePool, StepBatch
from .registry import PLUGIN_PATH_ENV, Diagnostic, Registry, split_path_list

__version__ = "0.1.0"
__all__ = ["abi", "AtbError", "Backend", "Diagnostic", "InternalError", "InvalidArgumentError", "KvCacheSpec",
           "Layer", "OutOfMemoryError", "PLUGIN_PATH_ENV", "PagePool", "PagedKvManager", "Plugin", "PluginInfo",
           "Registry", "StepBatch", "UnsupportedError", "VersionMismatchError", "split_path_list"]
