"""Bad input from Python is refused with an exception of its status and a message naming the field,
before the ABI call or by the plugin, and a refused forward writes nothing: not the pool, not the
output."""

import json
import unittest

import numpy as np

import atb
from support import build_path


class Refusals(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        registry = atb.Registry.scan([build_path("ATB_TEST_PLUGIN_DIR")], include_environment=False)
        cls.reference = registry.select("reference")
        cls.turboquant = registry.select("turboquant")

    def setUp(self):
        self.layer = atb.Layer(num_query_heads=4, num_kv_heads=2, head_size=64, block_size=16)
        self.backend = self.turboquant.create_backend(self.layer, {"k_quant": "q8_0", "v_quant": "q3_0"})
        self.pool = self.backend.allocate_pool(4, guard_bytes=64, fill=7)
        self.batch = atb.PagedKvManager(16, 4).schedule([(0, 3), (1, 2)])
        rng = np.random.default_rng(1)
        self.q = rng.standard_normal((5, 4, 64)).astype(np.float32)
        self.k = rng.standard_normal((5, 2, 64)).astype(np.float32)
        self.v = rng.standard_normal((5, 2, 64)).astype(np.float32)
        self.out = np.full((5, 4, 64), 3.0, dtype=np.float32)

    def refused(self, error_type, fragment, **changes):
        """Forward with `changes` applied must raise error_type naming `fragment` and change nothing."""
        arguments = dict(query=self.q, key=self.k, value=self.v, output=self.out, pool=self.pool, batch=self.batch)
        arguments.update(changes)
        pool_before = self.pool.bytes.copy()
        out_before = self.out.copy()
        with self.assertRaises(error_type) as raised:
            self.backend.forward(arguments.pop("query"), arguments.pop("key"), arguments.pop("value"),
                                 arguments.pop("output"), **arguments)
        self.assertIn(fragment, str(raised.exception))
        self.assertTrue(np.array_equal(self.pool.bytes, pool_before), "a refused forward wrote into the pool")
        self.assertTrue(np.array_equal(self.out, out_before), "a refused forward wrote the output")
        return str(raised.exception)

    def test_the_good_call_works(self):
        self.backend.forward(self.q, self.k, self.v, self.out, pool=self.pool, batch=self.batch)
        self.assertTrue(np.all(np.isfinite(self.out)))

    def test_tensors_of_the_wrong_kind(self):
        self.refused(atb.InvalidArgumentError, "query: dtype float64", query=self.q.astype(np.float64))
        self.refused(atb.InvalidArgumentError, "key: a list is not a tensor", key=self.k.tolist())
        self.refused(atb.InvalidArgumentError, "value: ndim = 2", value=self.v.reshape(5, 128))
        self.refused(atb.InvalidArgumentError, "negative stride", query=self.q[::-1])
        self.refused(atb.InvalidArgumentError, "last dimension has stride 2",
                     query=np.zeros((5, 4, 128), np.float32)[:, :, ::2])
        read_only = self.out.copy()
        read_only.flags.writeable = False
        self.refused(atb.InvalidArgumentError, "output: the array is read-only", output=read_only)

    def test_tensors_the_plugin_refuses(self):
        self.refused(atb.InvalidArgumentError, "query", query=self.q[:, :2])
        self.refused(atb.InvalidArgumentError, "dtype", query=self.q.astype(np.float16))
        message = self.refused(atb.InvalidArgumentError, "output", output=self.out[:4])
        self.assertIn("4", message)

    def test_integer_arrays_shorter_or_wrong(self):
        batch = self.batch
        short = atb.StepBatch(batch.slot_mapping[:4], batch.query_start_loc, batch.seq_lens, batch.block_tables)
        self.refused(atb.InvalidArgumentError, "batch.slot_mapping: 4 elements; the batch needs 5", batch=short)
        floats = atb.StepBatch(batch.slot_mapping.astype(np.float64), batch.query_start_loc, batch.seq_lens,
                               batch.block_tables)
        self.refused(atb.InvalidArgumentError, "batch.slot_mapping: dtype float64", batch=floats)
        flat = atb.StepBatch(batch.slot_mapping, batch.query_start_loc, batch.seq_lens, batch.block_tables.ravel())
        self.refused(atb.InvalidArgumentError, "batch.block_tables: shape", batch=flat)
        huge = atb.StepBatch(batch.slot_mapping, batch.query_start_loc, batch.seq_lens,
                             batch.block_tables.astype(np.int64) + 2 ** 40)
        self.refused(atb.InvalidArgumentError, "do not fit int32", batch=huge)

    def test_batches_the_plugin_refuses(self):
        batch = self.batch
        outside = atb.StepBatch(batch.slot_mapping + 1000, batch.query_start_loc, batch.seq_lens, batch.block_tables)
        self.refused(atb.InvalidArgumentError, "slot_mapping", batch=outside)
        lengths = atb.StepBatch(batch.slot_mapping, batch.query_start_loc, batch.seq_lens + 100, batch.block_tables)
        self.refused(atb.InvalidArgumentError, "seq_lens", batch=lengths)

    def test_a_pool_too_small_or_not_a_pool(self):
        small_layer = atb.Layer(num_query_heads=4, num_kv_heads=2, head_size=64, block_size=1)
        small = self.reference.create_backend(small_layer).allocate_pool(4)
        self.refused(atb.InvalidArgumentError, "pool: pages of", pool=small)
        self.refused(atb.InvalidArgumentError, "pool: a ndarray", pool=np.zeros(1 << 20, np.uint8))

    def test_configs_and_layers(self):
        with self.assertRaises(atb.InvalidArgumentError) as raised:
            self.turboquant.create_backend(self.layer, {"k_quant": "q9_0"})
        self.assertIn("k_quant", str(raised.exception))
        with self.assertRaises(atb.InvalidArgumentError) as raised:
            self.turboquant.create_backend(self.layer, '{"v_quant": "q3_0", "v_quant": "q4_0"}')
        self.assertIn("v_quant", str(raised.exception))
        with self.assertRaises(atb.InvalidArgumentError):
            self.turboquant.create_backend(self.layer, ["k_quant"])
        with self.assertRaises(atb.InvalidArgumentError) as raised:
            self.reference.create_backend(atb.Layer(num_query_heads=4, num_kv_heads=2, head_size=64,
                                                    block_size=16.0))
        self.assertIn("layer.block_size = 16.0", str(raised.exception))
        with self.assertRaises(atb.UnsupportedError):
            self.reference.create_backend(atb.Layer(num_query_heads=4, num_kv_heads=2, head_size=64,
                                                    attention_kind="mla"))
        with self.assertRaises(atb.InvalidArgumentError):
            self.reference.create_backend(atb.Layer(num_query_heads=4, num_kv_heads=2, head_size=64, device="tpu"))

    def test_a_closed_backend(self):
        self.backend.close()
        self.refused(atb.InvalidArgumentError, "the backend was closed")

    def test_schedule_refuses_what_does_not_fit(self):
        manager = atb.PagedKvManager(16, 2)
        with self.assertRaises(atb.OutOfMemoryError):
            manager.schedule([(0, 40)])
        self.assertEqual(manager.free_pages, 2)

    def test_tensors_on_the_wrong_device(self):
        try:
            import torch
        except ImportError:
            self.skipTest("torch is not installed here (it is on the device image)")
        if not torch.cuda.is_available():
            self.skipTest("no CUDA device here")
        on_gpu = torch.from_numpy(self.q).cuda()
        self.refused(atb.InvalidArgumentError, "query: on cuda:0; the others are on cpu", query=on_gpu)
        self.refused(atb.InvalidArgumentError, "pool: on cpu; the tensors are on cuda:0",
                     **{name: torch.from_numpy(a).cuda() for name, a in (("query", self.q), ("key", self.k),
                                                                         ("value", self.v))},
                     output=torch.zeros(5, 4, 64, device="cuda"))
        layer = atb.Layer(num_query_heads=4, num_kv_heads=2, head_size=64, block_size=16, device="cuda")
        backend = self.turboquant.create_backend(layer, {"k_quant": "q8_0", "v_quant": "q3_0"})
        pool = backend.allocate_pool(4)
        tensors = [torch.from_numpy(a).cuda() for a in (self.q, self.k, self.v)]
        with self.assertRaises(atb.InvalidArgumentError) as raised:
            backend.forward(*tensors, torch.zeros(5, 4, 64, device="cuda"), pool=pool, batch=self.batch)
        self.assertIn("a host array; CUDA tensors need their integer arrays on cuda:0", str(raised.exception))

    def test_plugin_logs_reach_python_logging(self):
        with self.assertLogs("atb", level="WARNING") as logs:
            with self.assertRaises(atb.InvalidArgumentError):
                self.reference.create_backend(atb.Layer(num_query_heads=4, num_kv_heads=3, head_size=64))
        from_plugin = [r for r in logs.records if r.name.startswith("atb.plugin.")]
        self.assertTrue(from_plugin, [r.name for r in logs.records])
        self.assertIn("num_query_heads = 4", from_plugin[0].getMessage())

    def test_the_schema_is_json(self):
        schema = self.turboquant.config_schema()
        self.assertIn("k_quant", schema["properties"])
        json.dumps(schema)


if __name__ == "__main__":
    unittest.main()
