"""Forward through both plugins from Python against a NumPy f64 attention, over paged schedules of
prefills, chunks and decodes of several sequences, with guards around the pool and the output."""

import unittest

import numpy as np

import atb
from support import attention_f64, build_path, outside_pages, relative_l2

GUARD = 64
SENTINEL = 0xA5


class Session:
    """One layer, its pool with guards, a block manager, and every K/V a sequence was given."""

    def __init__(self, plugin, layer, config, num_pages, seed):
        self.layer = layer
        self.backend = plugin.create_backend(layer, config)
        self.pool = self.backend.allocate_pool(num_pages, guard_bytes=GUARD, fill=SENTINEL)
        self.manager = atb.PagedKvManager(layer.block_size, num_pages, shuffle_seed=seed + 1)
        self.rng = np.random.default_rng(seed)
        self.history = {}

    def step(self, steps, dtype=np.float32):
        """Runs one forward of `steps` [(sequence, new tokens)]; returns (outputs, f64 expectation)."""
        layer = self.layer
        batch = self.manager.schedule(steps)
        n = batch.num_tokens
        # Q, K and V as views into one fused projection, as engines lay them out.
        heads = layer.num_query_heads + 2 * layer.num_kv_heads
        fused = self.rng.standard_normal((n, heads, layer.head_size)).astype(dtype)
        query = fused[:, :layer.num_query_heads]
        key = fused[:, layer.num_query_heads:layer.num_query_heads + layer.num_kv_heads]
        value = fused[:, layer.num_query_heads + layer.num_kv_heads:]
        padded = np.full((n + 2, layer.num_query_heads, layer.head_size), np.nan, dtype=dtype)
        output = padded[1:n + 1]
        self.backend.forward(query, key, value, output, pool=self.pool, batch=batch)
        self.assertion_pad = padded
        expected = np.zeros(output.shape)
        for s, (sequence, count) in enumerate(steps):
            start, end = batch.query_start_loc[s], batch.query_start_loc[s + 1]
            keys, values = self.history.get(sequence, (key[:0], value[:0]))
            keys = np.concatenate([keys, key[start:end]])
            values = np.concatenate([values, value[start:end]])
            self.history[sequence] = (keys, values)
            positions = range(len(keys) - count, len(keys))
            expected[start:end] = attention_f64(query[start:end], keys, values, positions, layer.num_kv_heads,
                                                layer.scale, layer.sliding_window, layer.logits_soft_cap)
        return output, expected

    def guards_untouched(self):
        return bool(np.all(outside_pages(self.pool, self.pool.bytes) == SENTINEL)) and bool(np.all(np.isnan(self.assertion_pad[[0, -1]])))


SCHEDULE = [[(0, 37), (1, 5)], [(0, 1), (1, 19), (2, 64)], [(0, 1), (1, 1), (2, 1)], [(2, 9), (0, 1)],
            [(3, 1), (1, 1)]]


class ForwardAgainstNumpy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.registry = atb.Registry.scan([build_path("ATB_TEST_PLUGIN_DIR")], include_environment=False)

    def run_schedule(self, backend, config, layer, bound, dtype=np.float32, seed=0):
        session = Session(self.registry.select(backend), layer, config, num_pages=48, seed=seed)
        worst = 0.0
        for steps in SCHEDULE:
            output, expected = session.step(steps, dtype)
            worst = max(worst, relative_l2(output, expected))
            self.assertTrue(session.guards_untouched(), f"{backend} {config} wrote outside its pages or output")
        self.assertLess(worst, bound, f"{backend} {config} {layer}")
        return worst

    def test_reference_f32_matches_f64(self):
        for seed, (hq, hkv, d, block) in enumerate([(4, 2, 64, 16), (8, 1, 128, 32), (3, 3, 64, 7)]):
            layer = atb.Layer(num_query_heads=hq, num_kv_heads=hkv, head_size=d, block_size=block)
            self.run_schedule("reference", None, layer, 1e-5, seed=seed)

    def test_reference_f16_matches_f64(self):
        layer = atb.Layer(num_query_heads=4, num_kv_heads=2, head_size=64, dtype="f16", block_size=16)
        self.run_schedule("reference", None, layer, 1e-3, dtype=np.float16)

    def test_reference_window_soft_cap_and_scale(self):
        layer = atb.Layer(num_query_heads=4, num_kv_heads=2, head_size=64, block_size=16, sliding_window=20,
                          logits_soft_cap=5.0, scale=0.2)
        self.run_schedule("reference", None, layer, 1e-5)

    def test_turboquant_stays_within_its_compression_error(self):
        layer = atb.Layer(num_query_heads=8, num_kv_heads=2, head_size=128, block_size=16)
        for config, bound in [({"k_quant": "q8_0", "v_quant": "q8_0"}, 0.02),
                              ({"k_quant": "q8_0", "v_quant": "q3_0"}, 0.2),
                              ({"k_quant": "tq4", "v_quant": "tq3"}, 0.25)]:
            self.run_schedule("turboquant", config, layer, bound)

    def test_torch_cpu_tensors_when_torch_is_there(self):
        try:
            import torch
        except ImportError:
            self.skipTest("torch is not installed here (it is on the device image)")
        layer = atb.Layer(num_query_heads=4, num_kv_heads=2, head_size=64, block_size=16)
        backend = self.registry.select("reference").create_backend(layer)
        pool = backend.allocate_pool(4)
        batch = atb.PagedKvManager(16, 4).schedule([(0, 6)])
        q, k, v = (torch.randn(6, h, 64) for h in (4, 2, 2))
        out = torch.zeros(6, 4, 64)
        backend.forward(q, k, v, out, pool=pool, batch=batch)
        expected = attention_f64(q.numpy(), k.numpy(), v.numpy(), range(6), 2)
        self.assertLess(relative_l2(out.numpy(), expected), 1e-5)

    def test_torch_cuda_tensors_on_the_current_stream(self):
        try:
            import torch
        except ImportError:
            self.skipTest("torch is not installed here (it is on the device image)")
        if not torch.cuda.is_available():
            self.skipTest("no CUDA device here")
        for backend, config, dtype, bound in (("reference", None, "bf16", 1e-2), ("turboquant", {"k_quant": "q8_0",
                                              "v_quant": "q8_0"}, "f16", 0.03)):
            layer = atb.Layer(num_query_heads=8, num_kv_heads=2, head_size=128, block_size=16, dtype=dtype,
                              device="cuda")
            plugin_backend = self.registry.select(backend).create_backend(layer, config)
            pool = plugin_backend.allocate_pool(8, guard_bytes=256, fill=SENTINEL)
            batch = atb.PagedKvManager(16, 8, shuffle_seed=3).schedule([(0, 40), (1, 1), (2, 17)])
            torch_dtype = {"bf16": torch.bfloat16, "f16": torch.float16}[dtype]
            q, k, v = (torch.randn(58, h, 128, device="cuda").to(torch_dtype) for h in (8, 2, 2))
            out = torch.zeros(58, 8, 128, device="cuda", dtype=torch_dtype)
            plugin_backend.forward(q, k, v, out, pool=pool, batch=batch.to("cuda"))
            torch.cuda.synchronize()
            expected = np.concatenate([attention_f64(q[s:e].float().cpu().numpy(), k[s:e].float().cpu().numpy(),
                                                     v[s:e].float().cpu().numpy(), range(e - s), 2)
                                       for s, e in ((0, 40), (40, 41), (41, 58))])
            error = relative_l2(out.float().cpu().numpy(), expected)
            self.assertLess(error, bound, backend)
            self.assertTrue(np.all(outside_pages(pool, pool.bytes.cpu().numpy()) == SENTINEL),
                            f"{backend} wrote outside its pages")


if __name__ == "__main__":
    unittest.main()
