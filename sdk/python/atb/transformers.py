"""Hugging Face transformers (5.x) with attention and KV storage through an atb plugin.

    import atb.transformers as atb_hf
    atb_hf.register()                                    # attn_implementation="atb"
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="atb")
    cache = atb_hf.PluginCache(model, backend="turboquant", config={"k_quant": "q8_0", "v_quant": "q3_0"})
    model.generate(input_ids, past_key_values=cache, max_new_tokens=64, do_sample=False)

The model's attention layers call `Cache.update(key, value, layer_idx)` and then the attention function
with the same key/value tensors.  PluginCache's layers hold plugin pages, never K/V tensors: update
only schedules the new tokens (slots, block tables) and hands the new K/V on, marked with their layer;
the attention function then makes the one plugin forward that writes them into the pages and attends
over everything cached.  Without a PluginCache (use_cache=False) the attention function serves each
call from a transient pool of its own, so the plugin is still the only attention.
"""

import weakref

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache, CacheLayerMixin
from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

from .backend import Layer
from .errors import InvalidArgumentError, UnsupportedError
from .pool import PagedKvManager
from .registry import Registry

ATTN_IMPLEMENTATION = "atb"
_DTYPES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16"}


def register():
    """Registers attn_implementation="atb" and its mask (None unless a batch has padding)."""
    AttentionInterface.register(ATTN_IMPLEMENTATION, attention_forward)
    AttentionMaskInterface.register(ATTN_IMPLEMENTATION, flash_attention_mask)


def _text_config(model_or_config):
    config = getattr(model_or_config, "config", model_or_config)
    return config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config


class PluginLayer(CacheLayerMixin):
    """One model layer's cache: a block manager from the first update (sequence b of the batch is
    sequence id b), a plugin backend and its page pool from the first attention call, when the
    attention's scale and window are known."""

    is_sliding = False
    is_compileable = False
    is_croppable = False

    def __init__(self, owner, layer_index):
        super().__init__()
        self._owner = weakref.proxy(owner)
        self.layer_index = layer_index
        self.backend = None
        self.pool = None
        self.manager = None
        self.pending = None

    def lazy_initialization(self, key_states, value_states):
        self.dtype, self.device = key_states.dtype, key_states.device
        self.batch_size = key_states.shape[0]
        self.num_pages = self.batch_size * -(-self._owner.max_tokens // self._owner.block_size)
        self.manager = PagedKvManager(self._owner.block_size, self.num_pages)
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        batch, _, new_tokens, _ = key_states.shape
        if batch != self.batch_size:
            raise UnsupportedError(f"PluginCache: a batch of {batch} after one of {self.batch_size}; allowed: the "
                                   "same batch size for the life of the cache (reset() it between batches)")
        self.pending = self.manager.schedule([(b, new_tokens) for b in range(batch)])
        key_states._atb_layer = self  # read by attention_forward: the tensors it gets are these
        return key_states, value_states

    def get_seq_length(self):
        return self.manager.length(0) if self.manager is not None else 0

    def get_mask_sizes(self, query_length):
        return self.get_seq_length() + query_length, 0

    def get_max_length(self):
        return self._owner.max_tokens

    def reset(self):
        if self.manager is not None:
            self.manager = PagedKvManager(self._owner.block_size, self.num_pages)

    def attend(self, query, key, value, scale, sliding_window):
        batch = self.pending
        self.pending = None
        if batch is None:
            raise InvalidArgumentError(f"layer {self.layer_index}: attention without a cache update before it")
        if self.backend is None:
            layer = _layer_spec(query, key, value, scale, sliding_window, self._owner.block_size, self.layer_index,
                                self._owner.num_layers)
            self.backend = self._owner.plugin.create_backend(layer, self._owner.backend_config)
            self.pool = self.backend.allocate_pool(self.num_pages)
        if self.device.type == "cuda":
            batch = batch.to(self.device)
        return _forward(self.backend, self.pool, batch, query, key, value)

    @property
    def kv_bytes(self):
        return self.pool.nbytes if self.pool is not None else 0


class PluginCache(Cache):
    """A transformers Cache whose layers keep K/V in plugin pages.  backend/config select the plugin
    and its config; plugin_dirs default to $ATB_PLUGIN_PATH; max_tokens bounds each sequence (default
    the model's max_position_embeddings)."""

    def __init__(self, model_or_config, backend="turboquant", config=None, *, plugin_dirs=(), registry=None,
                 block_size=16, max_tokens=None):
        text = _text_config(model_or_config)
        self.num_layers = text.num_hidden_layers
        self.block_size = block_size
        self.max_tokens = max_tokens or getattr(text, "max_position_embeddings", 4096)
        registry = registry or Registry.scan(plugin_dirs)
        self.plugin = registry.select(backend)
        self.backend_config = config
        super().__init__(layers=[PluginLayer(self, i) for i in range(self.num_layers)])

    @property
    def kv_bytes(self):
        """Bytes of KV pages held over all layers: what the plugin's spec asks for, nothing else."""
        return sum(layer.kv_bytes for layer in self.layers)


def _layer_spec(query, key, value, scale, sliding_window, block_size, layer_index=0, num_layers=1):
    """The plugin layer for an attention call's tensors; the default scale (1/sqrt(d)) stays 0 so the
    plugin computes it as every other host does."""
    dtype = _DTYPES.get(query.dtype)
    if dtype is None:
        raise UnsupportedError(f"attention: dtype {query.dtype}; allowed: float32, float16, bfloat16")
    head_size = query.shape[3]
    if scale is not None and abs(scale * head_size ** 0.5 - 1.0) < 1e-6:
        scale = None
    device = "cpu" if query.device.type == "cpu" else f"cuda:{query.device.index or 0}"
    return Layer(num_query_heads=query.shape[1], num_kv_heads=key.shape[1], head_size_k=head_size,
                 head_size_v=value.shape[3], dtype=dtype, block_size=block_size, scale=float(scale or 0.0),
                 sliding_window=int(sliding_window or 0), layer_index=layer_index, num_layers=num_layers,
                 device=device)


def _forward(backend, pool, batch, query, key, value):
    """One plugin forward for [B, H, q, d] query/key/value; returns [B, q, Hq, d_v]."""
    b, hq, q, _ = query.shape
    flat = [t.transpose(1, 2).reshape(b * q, t.shape[1], t.shape[3]) for t in (query, key, value)]
    output = torch.empty(b * q, hq, value.shape[3], dtype=query.dtype, device=query.device)
    backend.forward(*flat, output, pool=pool, batch=batch)
    return output.view(b, q, hq, value.shape[3])


class _TransientLayers:
    """Backends for calls made without a PluginCache (use_cache=False): one per module, a fresh pool
    per call."""

    def __init__(self):
        self._backends = weakref.WeakKeyDictionary()

    def attend(self, module, query, key, value, scale, sliding_window):
        b, _, q, _ = query.shape
        layer = _layer_spec(query, key, value, scale, sliding_window, 16)
        cached = self._backends.get(module)
        if cached is None or cached[1] != layer:
            plugin, config = _TRANSIENT_PLUGIN["plugin"], _TRANSIENT_PLUGIN["config"]
            if plugin is None:
                raise InvalidArgumentError("attn_implementation='atb' without a PluginCache: call "
                                           "atb.transformers.use_backend(...) first, or pass past_key_values="
                                           "PluginCache(...)")
            cached = (plugin.create_backend(layer, config), layer)
            self._backends[module] = cached
        backend = cached[0]
        manager = PagedKvManager(16, b * -(-q // 16))
        pool = backend.allocate_pool(manager.free_pages)
        batch = manager.schedule([(i, q) for i in range(b)])
        if query.device.type == "cuda":
            batch = batch.to(query.device)
        return _forward(backend, pool, batch, query, key, value)


_TRANSIENT = _TransientLayers()
_TRANSIENT_PLUGIN = {"plugin": None, "config": None}


def use_backend(backend="turboquant", config=None, *, plugin_dirs=(), registry=None):
    """The plugin that serves attention calls made without a PluginCache."""
    registry = registry or Registry.scan(plugin_dirs)
    _TRANSIENT_PLUGIN.update(plugin=registry.select(backend), config=config)


def attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """The "atb" attention function: [B, Hq, q, d] query, [B, Hkv, q, d] new key/value -> ([B, q, Hq, d_v], None)."""
    if attention_mask is not None:
        raise UnsupportedError("attn_implementation='atb': padded batches are not supported (the attention mask "
                               "has padding); give sequences of one length or batch them one at a time")
    if dropout:
        raise UnsupportedError(f"attn_implementation='atb': dropout = {dropout}; allowed: 0 (inference only)")
    if kwargs.get("softcap"):
        raise UnsupportedError("attn_implementation='atb': soft cap through transformers is not wired yet")
    window = kwargs.get("sliding_window")
    layer = getattr(key, "_atb_layer", None)
    if layer is not None:
        return layer.attend(query, key, value, scaling, window), None
    return _TRANSIENT.attend(module, query, key, value, scaling, window), None
