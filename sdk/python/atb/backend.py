"""A backend for one attention layer: its layer spec, its KV-cache spec, and forward."""

import ctypes
import json
from dataclasses import dataclass, fields

import numpy as np

from . import abi
from .errors import InvalidArgumentError
from .plugin import call
from .pool import PagePool, _allocate
from .tensors import DTYPE_NAMES, describe, integers

_KINDS = {"standard": abi.ATTENTION_STANDARD, "mla": abi.ATTENTION_MLA, "linear": abi.ATTENTION_LINEAR}
_INT32 = (-(2 ** 31), 2 ** 31 - 1)


@dataclass
class Layer:
    """atb_layer_spec in Python terms.  head_size sets both head_size_k and head_size_v unless they are
    given; dtype is "f32", "f16" or "bf16"; device is "cpu" or "cuda[:N]".  Values are checked by the
    plugin (its message names the field); only their Python types are checked here."""

    num_query_heads: int
    num_kv_heads: int
    head_size: int = 0
    dtype: str = "f32"
    block_size: int = 16
    head_size_k: int = 0
    head_size_v: int = 0
    sliding_window: int = 0
    logits_soft_cap: float = 0.0
    scale: float = 0.0
    layer_index: int = 0
    num_layers: int = 1
    kv_shared_with_layer: int = -1
    first_global_kv_head: int = 0
    num_global_kv_heads: int = 0
    device: str = "cpu"
    attention_kind: str = "standard"

    def to_abi(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type is int and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
                                  or not _INT32[0] <= value <= _INT32[1]):
                raise InvalidArgumentError(f"layer.{f.name} = {value!r}; allowed: an int32")
            if f.type is float and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise InvalidArgumentError(f"layer.{f.name} = {value!r}; allowed: a float")
        if self.dtype not in DTYPE_NAMES:
            raise InvalidArgumentError(f"layer.dtype = {self.dtype!r}; allowed: {', '.join(DTYPE_NAMES)}")
        if self.attention_kind not in _KINDS:
            raise InvalidArgumentError(f"layer.attention_kind = {self.attention_kind!r}; allowed: {', '.join(_KINDS)}")
        device_type, device_id = parse_device(self.device)
        return abi.LayerSpec.versioned(
            attention_kind=_KINDS[self.attention_kind], num_query_heads=self.num_query_heads,
            num_kv_heads=self.num_kv_heads, head_size_k=self.head_size_k or self.head_size,
            head_size_v=self.head_size_v or self.head_size, dtype=DTYPE_NAMES[self.dtype], block_size=self.block_size,
            sliding_window=self.sliding_window, logits_soft_cap=self.logits_soft_cap, scale=self.scale,
            layer_index=self.layer_index, num_layers=self.num_layers, kv_shared_with_layer=self.kv_shared_with_layer,
            first_global_kv_head=self.first_global_kv_head, num_global_kv_heads=self.num_global_kv_heads,
            device_type=device_type, device_id=device_id)


def parse_device(device):
    text = str(device)
    if text == "cpu":
        return abi.DEVICE_CPU, 0
    if text == "cuda":
        return abi.DEVICE_CUDA, 0
    if text.startswith("cuda:") and text[5:].isdigit():
        return abi.DEVICE_CUDA, int(text[5:])
    raise InvalidArgumentError(f"layer.device = {device!r}; allowed: 'cpu', 'cuda', 'cuda:N'")


@dataclass(frozen=True)
class KvCacheSpec:
    page_bytes: int
    page_alignment: int
    k_bytes_per_token_per_head: int
    v_bytes_per_token_per_head: int
    block_size: int
    writes_kv: bool
    workspace_bytes: int
    cache_flags: int
    workspace_alignment: int

    @property
    def compressed(self):
        return bool(self.cache_flags & abi.KV_CACHE_COMPRESSED)

    @property
    def bytes_per_token_per_head(self):
        return self.k_bytes_per_token_per_head + self.v_bytes_per_token_per_head


def config_text(config):
    if config is None:
        return "{}"
    if isinstance(config, str):
        return config
    if isinstance(config, dict):
        return json.dumps(config)
    raise InvalidArgumentError(f"config: a {type(config).__name__}; allowed: a dict, a JSON string or None")


class Backend:
    """One layer's backend; released by close() (or when collected).  Calls on one backend must not
    overlap (the ABI's rule); different backends may run in different threads."""

    def __init__(self, plugin, handle, layer):
        self.plugin = plugin
        self.layer = layer
        self._handle = handle
        self._api = plugin._api
        self.spec = self._read_spec()
        self._workspace = None

    @classmethod
    def create(cls, plugin, layer, config):
        if not isinstance(layer, Layer):
            raise InvalidArgumentError(f"layer: a {type(layer).__name__}; allowed: an atb.Layer")
        spec = layer.to_abi()
        handle = ctypes.POINTER(abi.Backend)()
        call(f"backend '{plugin.name}': create_backend", plugin._api.create_backend, ctypes.byref(spec),
             config_text(config).encode("utf-8"), ctypes.byref(handle))
        return cls(plugin, handle, layer)

    def _read_spec(self):
        raw = abi.KvCacheSpec.versioned()
        call("get_kv_cache_spec", self._api.get_kv_cache_spec, self._handle, ctypes.byref(raw))
        return KvCacheSpec(raw.page_bytes, raw.page_alignment, raw.k_bytes_per_token_per_head,
                           raw.v_bytes_per_token_per_head, raw.block_size, bool(raw.writes_kv), raw.workspace_bytes,
                           raw.cache_flags, raw.workspace_alignment)

    def kv_cache_spec(self):
        return self.spec

    def allocate_pool(self, num_pages, guard_bytes=0, fill=0):
        """A page pool for this layer on its device."""
        return PagePool(self.spec, num_pages, self.layer.device, guard_bytes, fill)

    def close(self):
        if self._handle:
            call("destroy_backend", self._api.destroy_backend, self._handle)
            self._handle = ctypes.POINTER(abi.Backend)()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    def _workspace_pointer(self, device):
        size = self.spec.workspace_bytes
        if size == 0:
            return None, 0
        alignment = max(self.spec.workspace_alignment or 256, 1)
        if self._workspace is None or self._workspace[2] != str(device):
            buffer, base = _allocate(size + alignment, device, 0)
            self._workspace = (buffer, base + (-base) % alignment, str(device))
        return self._workspace[1], size

    def forward(self, query, key, value, output, *, pool, batch, write_kv_only=False):
        """One step: writes the new tokens' K/V into their slots and writes attention into `output`.
        query/key/value/output: [tokens, heads, head size] NumPy arrays or torch tensors (CPU, or CUDA on
        the layer's device, enqueued on the current stream); key/value None on a KV-sharing layer;
        query/output None with write_kv_only.  pool: this layer's PagePool (or the owner's when
        sharing).  batch: a StepBatch, or any object with slot_mapping, query_start_loc, seq_lens and
        block_tables (block_tables [num_seqs, stride])."""
        if not self._handle:
            raise InvalidArgumentError("forward: the backend was closed")
        if not isinstance(pool, PagePool):
            raise InvalidArgumentError(f"pool: a {type(pool).__name__}; allowed: an atb.PagePool")
        if pool.page_bytes < self.spec.page_bytes:
            raise InvalidArgumentError(f"pool: pages of {pool.page_bytes} bytes; this layer's spec needs "
                                       f"{self.spec.page_bytes}")
        described = {}
        for name, tensor, writable in (("query", query, False), ("key", key, False), ("value", value, False),
                                       ("output", output, True)):
            if tensor is not None:
                described[name] = describe(tensor, name, writable)
        if not described:
            raise InvalidArgumentError("forward: no tensor given")
        places = {name: _place(d.device_type, d.device_id) for name, d in described.items()}
        if len(set(places.values())) > 1:
            odd = min(places, key=lambda name: list(places.values()).count(places[name]))
            others = sorted({place for name, place in places.items() if name != odd})
            raise InvalidArgumentError(f"{odd}: on {places[odd]}; the others are on {', '.join(others)}")
        first = next(iter(described.values()))
        device_type, device_id = first.device_type, first.device_id
        if (device_type, device_id) != parse_device(pool.device):
            raise InvalidArgumentError(f"pool: on {pool.device}; the tensors are on {_place(device_type, device_id)}")
        counted = described.get("key") or described.get("query")
        num_tokens = counted.descriptor.shape[0] if counted is not None else 0
        seq_lens = getattr(batch, "seq_lens", None)
        num_seqs = 0 if seq_lens is None else int(np.prod(getattr(seq_lens, "shape", (len(seq_lens),))))
        tables = getattr(batch, "block_tables", None)
        stride = _table_stride(tables, num_seqs)
        keep = []

        def ints(name, kind, length):
            data = getattr(batch, name, None)
            if data is None:
                if write_kv_only and name != "slot_mapping":
                    return None
                raise InvalidArgumentError(f"batch.{name}: missing")
            owner, pointer = integers(data, f"batch.{name}", kind, length, device_type, device_id)
            keep.append(owner)
            return pointer

        args = abi.ForwardArgs.versioned(kv_pages=pool.data_ptr, num_pages=pool.num_pages,
                                         page_stride_bytes=pool.stride_bytes, num_tokens=num_tokens,
                                         num_seqs=num_seqs, block_table_stride=stride)
        for name in ("query", "key", "value", "output"):
            if name in described:
                setattr(args, name, ctypes.pointer(described[name].descriptor))
        args.slot_mapping = ints("slot_mapping", "int64", num_tokens)
        if num_seqs or not write_kv_only:
            args.query_start_loc = ints("query_start_loc", "int32", num_seqs + 1)
            args.seq_lens = ints("seq_lens", "int32", num_seqs)
            args.block_tables = ints("block_tables", "int32", num_seqs * stride)
        args.workspace, args.workspace_bytes = self._workspace_pointer(pool.device)
        args.flags = abi.FORWARD_WRITE_KV_ONLY if write_kv_only else 0
        call("forward", self._api.forward, self._handle, ctypes.byref(args))
        del keep


def _place(device_type, device_id):
    return "cpu" if device_type == abi.DEVICE_CPU else f"cuda:{device_id}"


def _table_stride(tables, num_seqs):
    if tables is None:
        return 1
    shape = tuple(getattr(tables, "shape", ()))
    if len(shape) != 2 or shape[0] != num_seqs:
        raise InvalidArgumentError(f"batch.block_tables: shape {shape}; allowed: [num_seqs = {num_seqs}, stride]")
    return max(int(shape[1]), 1) if shape[1] else 1


__all__ = ["Backend", "KvCacheSpec", "Layer"]
