"""One loaded plugin library: its function table, its info, its config schema, and backend creation."""

import ctypes
import json
import os
from dataclasses import dataclass

from . import abi
from .errors import AtbError, InternalError, InvalidArgumentError, VersionMismatchError, check
from .log_bridge import host_services

HOST_ABI = f"{abi.ABI_VERSION_MAJOR}.{abi.ABI_VERSION_MINOR}"

_CAPABILITY_NAMES = [
    (abi.CAP_PAGED_KV_CACHE, "paged_kv_cache"), (abi.CAP_GQA, "gqa"), (abi.CAP_CHUNKED_PREFILL, "chunked_prefill"),
    (abi.CAP_MIXED_BATCH, "mixed_batch"), (abi.CAP_SLIDING_WINDOW, "sliding_window"),
    (abi.CAP_LOGITS_SOFT_CAP, "logits_soft_cap"), (abi.CAP_KV_SHARING, "kv_sharing"),
    (abi.CAP_COMPRESSED_KV, "compressed_kv"), (abi.CAP_TENSOR_PARALLEL, "tensor_parallel")]
_DTYPE_NAMES = [(abi.DTYPE_F32, "f32"), (abi.DTYPE_F16, "f16"), (abi.DTYPE_BF16, "bf16")]
_DEVICE_NAMES = [(abi.DEVICE_CPU, "cpu"), (abi.DEVICE_CUDA, "cuda")]


def _valid_backend_name(name):
    return bool(name) and all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in name)


@dataclass(frozen=True)
class PluginInfo:
    backend_name: str
    plugin_version: str
    description: str
    abi_major: int
    abi_minor: int
    device_mask: int
    dtype_mask: int
    capability_flags: int
    head_sizes: tuple

    @property
    def capabilities(self):
        return [name for flag, name in _CAPABILITY_NAMES if self.capability_flags & flag]

    @property
    def dtypes(self):
        return [name for value, name in _DTYPE_NAMES if self.dtype_mask & abi.bit(value)]

    @property
    def devices(self):
        return [name for value, name in _DEVICE_NAMES if self.device_mask & abi.bit(value)]


def call(context, function, *args):
    """Calls an entry point with a fresh atb_error; a refusal raises the exception of its status."""
    error = abi.Error.versioned()
    status = function(*args, ctypes.byref(error))
    check(status, error, context)


def _text(raw):
    return raw.decode("utf-8", "replace") if raw else ""


class Plugin:
    """A plugin library loaded and negotiated at this host's ABI; raises AtbError when it is not one."""

    def __init__(self, path, library, api, info):
        self.path = path
        self.info = info
        self._library = library  # ctypes never unloads it: the function table stays valid
        self._api = api

    @classmethod
    def load(cls, path):
        path = os.fspath(path)
        try:
            library = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
        except OSError as failure:
            raise InvalidArgumentError(f'dlopen("{path}") failed: {failure}') from None
        try:
            entry = abi.GetApiFn((abi.ENTRY_SYMBOL, library))
        except AttributeError:
            raise InvalidArgumentError(
                f"{path}: not an attention-backend plugin: it has no '{abi.ENTRY_SYMBOL}' symbol") from None
        table = ctypes.POINTER(abi.Api)()
        call(f"{path}: {abi.ENTRY_SYMBOL}(host ABI {HOST_ABI})", entry, abi.ABI_VERSION_MAJOR,
             abi.ABI_VERSION_MINOR, ctypes.byref(table))
        minimum = abi.Api.min_abi_size()
        if not table:
            raise InvalidArgumentError(f"{path}: the plugin returned no function table")
        size = table.contents.struct_size
        if size < minimum:
            raise InvalidArgumentError(f"{path}: the plugin returned a function table of {size} bytes; ABI "
                                       f"{HOST_ABI} needs at least {minimum}")
        if table.contents.abi_major != abi.ABI_VERSION_MAJOR:
            raise VersionMismatchError(
                f"{path}: the plugin implements ABI {table.contents.abi_major}.{table.contents.abi_minor} but this "
                f"host speaks {HOST_ABI}; majors must match")
        api = cls._read_table(table, size)
        if not all(getattr(api, name) for name in ("get_plugin_info", "set_host_services", "create_backend",
                                                   "get_kv_cache_spec", "forward", "destroy_backend")):
            raise InvalidArgumentError(f"{path}: the plugin's function table has a NULL entry point")
        info = cls._read_info(path, api)
        plugin = cls(path, library, api, info)
        plugin.set_host_services(host_services())
        return plugin

    @staticmethod
    def _read_table(table, size):
        """A copy of the table's entries within its struct_size; later entries stay NULL."""
        api = abi.Api()
        ctypes.memmove(ctypes.byref(api), table, min(size, ctypes.sizeof(abi.Api)))
        api.struct_size = min(size, abi.Api.abi_size())
        return api

    @staticmethod
    def _read_info(path, api):
        raw = abi.PluginInfo.versioned()
        call(f"{path}: get_plugin_info", api.get_plugin_info, ctypes.byref(raw))
        head_sizes = tuple(raw.head_sizes[i] for i in range(raw.num_head_sizes)) if raw.head_sizes else ()
        info = PluginInfo(_text(raw.backend_name), _text(raw.plugin_version), _text(raw.description), raw.abi_major,
                          raw.abi_minor, raw.device_mask, raw.dtype_mask, raw.capability_flags, head_sizes)
        if not _valid_backend_name(info.backend_name):
            raise InvalidArgumentError(f"{path}: plugin info backend_name '{info.backend_name}' is not a name; "
                                       "allowed: one or more of [a-z0-9_]")
        return info

    @property
    def name(self):
        return self.info.backend_name

    def set_host_services(self, services):
        call(f"{self.path}: set_host_services", self._api.set_host_services, ctypes.byref(services))

    def config_schema(self):
        """The JSON Schema (a dict) of the config create_backend accepts; None from a plugin of ABI minor 0."""
        if self._api.struct_size <= abi.Api.get_config_schema.offset or not self._api.get_config_schema:
            return None
        schema = ctypes.c_char_p()
        call(f"backend '{self.name}': get_config_schema", self._api.get_config_schema, ctypes.byref(schema))
        if not schema.value:
            raise InternalError(f"backend '{self.name}': get_config_schema returned OK but no schema")
        return json.loads(schema.value.decode("utf-8"))

    def create_backend(self, layer, config=None):
        """A backend for one layer.  `layer`: an atb.Layer; `config`: a dict, a JSON string or None."""
        from .backend import Backend  # backend.py imports this module
        return Backend.create(self, layer, config)

    def describe(self):
        """What `tq list --json` prints for this plugin."""
        info = self.info
        return {"name": info.backend_name, "version": info.plugin_version,
                "abi": f"{info.abi_major}.{info.abi_minor}", "description": info.description,
                "devices": ",".join(info.devices), "dtypes": ",".join(info.dtypes),
                "head_sizes": list(info.head_sizes), "capabilities": info.capabilities,
                "config_schema": self.config_schema(), "path": self.path}

    def __repr__(self):
        return f"Plugin({self.name!r} {self.info.plugin_version} from {self.path})"


__all__ = ["AtbError", "Plugin", "PluginInfo", "call"]
