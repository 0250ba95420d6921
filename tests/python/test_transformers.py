"""Hugging Face transformers running the converted ../shared model with the atb plugins as its only
attention and KV storage, against `tq perplexity` / `tq generate` on the llama2.c original.
Needs torch and transformers (the device image has them); skips, saying so, where they are missing."""

import importlib.util
import json
import os
import subprocess
import tempfile
import unittest

from support import build_path

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "examples", "python")
TURBOQUANT = {"k_quant": "q8_0", "v_quant": "q3_0"}


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Shared:
    """The converted model and the tq figures, made once for every test here."""

    ready = False

    @classmethod
    def prepare(cls):
        if cls.ready:
            return
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as missing:
            raise unittest.SkipTest(f"{missing.name} is not installed here (the device image has torch and "
                                    "transformers)") from None
        shared = build_path("ATB_SHARED_DIR")
        cls.checkpoint = os.path.join(shared, "models", "shakespeare_char_17M.bin")
        cls.tokenizer = os.path.join(shared, "models", "tokenizer.bin")
        cls.text = os.path.join(shared, "data", "shakespeare_dev.txt")
        if not os.path.exists(cls.checkpoint) or not os.path.exists(cls.text):
            raise unittest.SkipTest(f"{cls.checkpoint} or {cls.text} is absent (../shared is not committed)")
        import atb
        cls.plugin_dir = build_path("ATB_TEST_PLUGIN_DIR")
        cls.tq = build_path("ATB_TQ")
        cls.registry = atb.Registry.scan([cls.plugin_dir], include_environment=False)
        cls.scratch = tempfile.TemporaryDirectory()
        load_example("llama2c_to_hf").convert(cls.checkpoint, cls.tokenizer, cls.scratch.name, "f32")
        cls.demo = load_example("transformers_demo")
        cls.pieces, index = cls.demo.load_vocab(cls.scratch.name)
        with open(cls.text, encoding="utf-8") as f:
            cls.ids = cls.demo.encode(index, f.read())
        cls.tq_nats = {name: cls.tq_perplexity(backend, config, cls.text)
                       for name, backend, config in (("reference", "reference", {}),
                                                     ("turboquant", "turboquant", TURBOQUANT))}
        # The first 8 windows, for the dtype/device pairs checked on part of the text.
        cls.short_text = os.path.join(cls.scratch.name, "first_8_windows.txt")
        with open(cls.text, encoding="utf-8") as f, open(cls.short_text, "w", encoding="utf-8") as out:
            out.write(f.read()[:8 * 1024 + 1])
        cls.short_ids = cls.ids[:8 * 1024 + 1]
        cls.tq_short_nats = {"reference": cls.tq_perplexity("reference", {}, cls.short_text),
                             "turboquant": cls.tq_perplexity("turboquant", TURBOQUANT, cls.short_text)}
        cls.models = {}
        cls.ready = True

    @classmethod
    def tq_perplexity(cls, backend, config, text):
        done = subprocess.run([cls.tq, "perplexity", "--model", cls.checkpoint, "--tokenizer", cls.tokenizer, "--text",
                               text, "--plugin-dir", cls.plugin_dir, "--attention-backend", backend,
                               "--attention-config", json.dumps(config), "--json"], capture_output=True, text=True,
                              check=True)
        return json.loads(done.stdout)["rows"][0]["nats_per_char"]

    @classmethod
    def model(cls, device, dtype):
        if (device, dtype) not in cls.models:
            cls.models[(device, dtype)] = cls.demo.load_model(cls.scratch.name, device, dtype)
        return cls.models[(device, dtype)]


class TransformersThroughThePlugins(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        Shared.prepare()

    def nats(self, device, dtype, backend, config):
        model = Shared.model(device, dtype)
        nats, predictions, kv_bytes = Shared.demo.perplexity(model, Shared.ids, Shared.registry, backend, config)
        print(f"\n{device} {dtype} {backend} {config}: {nats:.6f} nats/char over {predictions} predictions "
              f"(tq perplexity: {Shared.tq_nats[backend]:.6f}); KV pages {kv_bytes} bytes")
        self.assertEqual(predictions, len(Shared.ids) - 1)
        return nats

    def test_cpu_f32_reference_equals_tq_perplexity(self):
        nats = self.nats("cpu", "f32", "reference", {})
        self.assertLess(abs(nats / Shared.tq_nats["reference"] - 1), 1e-4)

    def test_cpu_f32_turboquant_within_1e3_of_tq_perplexity(self):
        nats = self.nats("cpu", "f32", "turboquant", TURBOQUANT)
        self.assertLess(abs(nats / Shared.tq_nats["turboquant"] - 1), 1e-3)

    def test_cuda_bf16_within_half_a_percent(self):
        import torch
        if not torch.cuda.is_available():
            self.skipTest("no CUDA device here")
        for backend, config in (("reference", {}), ("turboquant", TURBOQUANT)):
            nats = self.nats("cuda", "bf16", backend, config)
            self.assertLess(abs(nats / Shared.tq_nats[backend] - 1), 5e-3, backend)

    def short_text_nats(self, device, dtype, backend, config):
        model = Shared.model(device, dtype)
        nats, predictions, _ = Shared.demo.perplexity(model, Shared.short_ids, Shared.registry, backend, config)
        print(f"\n{device} {dtype} {backend} {config}, first 8 windows: {nats:.6f} nats/char over {predictions} "
              f"predictions (tq perplexity: {Shared.tq_short_nats[backend]:.6f})")
        self.assertEqual(predictions, 8 * 1024)
        return nats / Shared.tq_short_nats[backend] - 1

    def test_cpu_bf16_within_half_a_percent_on_8_windows(self):
        for backend, config in (("reference", {}), ("turboquant", TURBOQUANT)):
            self.assertLess(abs(self.short_text_nats("cpu", "bf16", backend, config)), 5e-3, backend)

    def test_cuda_f32_on_8_windows(self):
        import torch
        if not torch.cuda.is_available():
            self.skipTest("no CUDA device here")
        self.assertLess(abs(self.short_text_nats("cuda", "f32", "reference", {})), 1e-4)
        self.assertLess(abs(self.short_text_nats("cuda", "f32", "turboquant", TURBOQUANT)), 1e-3)

    def test_greedy_generation_matches_tq_generate(self):
        model = Shared.model("cpu", "f32")
        prompt = "ROMEO:"
        _, index = Shared.demo.load_vocab(Shared.scratch.name)
        new, cache = Shared.demo.generate(model, Shared.demo.encode(index, prompt), Shared.registry, "reference", {},
                                          64)
        text = "".join(Shared.pieces[t] for t in new)
        done = subprocess.run([Shared.tq, "generate", "--model", Shared.checkpoint, "--tokenizer", Shared.tokenizer,
                               "--plugin-dir", Shared.plugin_dir, "--attention-backend", "reference", "--prompt",
                               prompt, "--steps", "64", "--temperature", "0"], capture_output=True, text=True,
                              check=True)
        print(f"\ntransformers: {prompt}{text!r}\ntq generate:  {done.stdout!r}")
        self.assertEqual(len(new), 64)
        self.assertTrue(done.stdout.startswith(prompt + text), "the greedy continuations differ")
        # The cache holds plugin pages, no K/V tensors.
        spec = cache.layers[0].backend.spec
        self.assertEqual(cache.kv_bytes, sum(layer.pool.num_pages for layer in cache.layers) * spec.page_bytes)
        self.assertTrue(all(layer.keys is None and layer.values is None for layer in cache.layers))

    def test_a_forward_without_a_cache_uses_the_plugin_too(self):
        import torch
        import atb.transformers as atb_hf
        model = Shared.model("cpu", "f32")
        atb_hf.use_backend("reference", registry=Shared.registry)
        inputs = torch.tensor([Shared.ids[:200]])
        with torch.inference_mode():
            cached = model(input_ids=inputs, past_key_values=atb_hf.PluginCache(
                model, "reference", registry=Shared.registry, max_tokens=200)).logits
            uncached = model(input_ids=inputs, use_cache=False).logits
        self.assertLess(float((cached - uncached).abs().max()), 1e-4)

    def test_padded_batches_are_refused(self):
        import torch
        import atb
        import atb.transformers as atb_hf
        model = Shared.model("cpu", "f32")
        cache = atb_hf.PluginCache(model, "reference", registry=Shared.registry, max_tokens=8)
        with self.assertRaises(atb.UnsupportedError) as raised:
            model(input_ids=torch.tensor([[5, 6, 7], [5, 6, 7]]), attention_mask=torch.tensor([[0, 1, 1], [1, 1, 1]]),
                  past_key_values=cache)
        self.assertIn("padded", str(raised.exception))


if __name__ == "__main__":
    unittest.main()
