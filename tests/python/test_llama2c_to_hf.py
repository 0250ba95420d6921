"""examples/python/llama2c_to_hf.py: the converted checkpoint holds every weight, and its RoPE layout
(rotate_half on permuted W_q/W_k rows) gives the same attention scores as llama2.c's interleaved pairs."""

import importlib.util
import os
import tempfile
import unittest

import numpy as np

from support import build_path

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTER = os.path.join(HERE, "..", "..", "examples", "python", "llama2c_to_hf.py")


def load_converter():
    spec = importlib.util.spec_from_file_location("llama2c_to_hf", CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rope_interleaved(x, position, theta=10000.0):
    d = x.shape[-1]
    j = np.arange(d // 2)
    angle = position / theta ** (2 * j / d)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * np.cos(angle) - odd * np.sin(angle)
    out[..., 1::2] = even * np.sin(angle) + odd * np.cos(angle)
    return out


def rope_half(x, position, theta=10000.0):
    d = x.shape[-1]
    j = np.arange(d // 2)
    angle = np.concatenate([position / theta ** (2 * j / d)] * 2)
    rotated = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], axis=-1)
    return x * np.cos(angle) + rotated * np.sin(angle)


class Llama2cToHf(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shared = build_path("ATB_SHARED_DIR")
        cls.checkpoint = os.path.join(shared, "models", "shakespeare_char_17M.bin")
        cls.tokenizer = os.path.join(shared, "models", "tokenizer.bin")
        if not os.path.exists(cls.checkpoint):
            raise unittest.SkipTest(f"{cls.checkpoint} is absent (../shared/models is not committed)")
        cls.converter = load_converter()
        cls.scratch = tempfile.TemporaryDirectory()
        cls.config = cls.converter.convert(cls.checkpoint, cls.tokenizer, cls.scratch.name, "f32")
        cls.tensors = cls.converter.read_safetensors(os.path.join(cls.scratch.name, "model.safetensors"))
        _, cls.original = cls.converter.read_checkpoint(cls.checkpoint)

    @classmethod
    def tearDownClass(cls):
        cls.scratch.cleanup()

    def test_every_weight_is_there_with_its_shape(self):
        layers = self.config["layers"]
        self.assertEqual(len(self.tensors), 2 + 9 * layers)
        self.assertEqual(self.tensors["model.layers.5.self_attn.k_proj.weight"].shape, (256, 512))
        self.assertEqual(self.tensors["model.layers.0.mlp.down_proj.weight"].shape, (512, 1408))
        np.testing.assert_array_equal(self.tensors["model.layers.3.mlp.gate_proj.weight"], self.original["w1"][3])
        np.testing.assert_array_equal(self.tensors["model.layers.2.self_attn.v_proj.weight"], self.original["wv"][2])

    def test_scores_are_those_of_interleaved_rope(self):
        rng = np.random.default_rng(0)
        heads, kv_heads, d = self.config["heads"], self.config["kv_heads"], 128
        for layer in (0, 4):
            x_q, x_k = rng.standard_normal((2, 512))
            q_old = (self.original["wq"][layer] @ x_q).reshape(heads, d)
            k_old = (self.original["wk"][layer] @ x_k).reshape(kv_heads, d)
            q_new = (self.tensors[f"model.layers.{layer}.self_attn.q_proj.weight"] @ x_q).reshape(heads, d)
            k_new = (self.tensors[f"model.layers.{layer}.self_attn.k_proj.weight"] @ x_k).reshape(kv_heads, d)
            for p_q, p_k in ((0, 0), (37, 5), (1023, 1000)):
                for h in range(heads):
                    kv = h // (heads // kv_heads)
                    old = rope_interleaved(q_old[h], p_q) @ rope_interleaved(k_old[kv], p_k)
                    new = rope_half(q_new[h], p_q) @ rope_half(k_new[kv], p_k)
                    self.assertAlmostEqual(old, new, delta=1e-9 * max(1.0, abs(old)) + 1e-6)

    def test_bf16_is_f32_rounded(self):
        with tempfile.TemporaryDirectory() as out:
            self.converter.convert(self.checkpoint, self.tokenizer, out, "bf16")
            bf16 = self.converter.read_safetensors(os.path.join(out, "model.safetensors"))
        name = "model.layers.1.self_attn.q_proj.weight"
        f32 = self.tensors[name]
        self.assertLessEqual(float(np.max(np.abs(bf16[name] - f32) / np.maximum(np.abs(f32), 1e-30))), 2.0 ** -8)

    def test_vocab_lists_the_tokenizer_pieces(self):
        import json
        with open(os.path.join(self.scratch.name, "vocab.json")) as f:
            vocab = json.load(f)
        self.assertEqual(len(vocab), self.config["vocab"])
        self.assertEqual(vocab[:3], ["<unk>", "<s>", "</s>"])
        self.assertEqual(vocab[3], "\n")


if __name__ == "__main__":
    unittest.main()
