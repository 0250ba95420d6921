#!/usr/bin/env python3
"""A Hugging Face transformers Llama with attention and KV cache only through an atb plugin: nats per
character on a text, a greedy continuation, and the KV bytes the plugin's pages hold.

    python3 examples/python/llama2c_to_hf.py ../shared/models/shakespeare_char_17M.bin \\
        ../shared/models/tokenizer.bin /tmp/shakespeare_hf
    PYTHONPATH=sdk/python python3 examples/python/transformers_demo.py /tmp/shakespeare_hf \\
        --plugin-dir build/release/plugins --text ../shared/data/shakespeare_dev.txt --device cpu \\
        --config reference --config 'turboquant {"k_quant": "q8_0", "v_quant": "q3_0"}'
"""

import argparse
import json
import math
import os
import time

import torch
from transformers import LlamaForCausalLM

import atb
import atb.transformers as atb_hf

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}


def load_model(hf_dir, device="cpu", dtype="f32"):
    atb_hf.register()
    model = LlamaForCausalLM.from_pretrained(hf_dir, attn_implementation=atb_hf.ATTN_IMPLEMENTATION,
                                             dtype=DTYPES[dtype])
    return model.to(device).eval()


def load_vocab(hf_dir):
    with open(os.path.join(hf_dir, "vocab.json")) as f:
        pieces = json.load(f)
    return pieces, {piece: i for i, piece in enumerate(pieces)}


def encode(index, text):
    missing = sorted({c for c in text if c not in index})
    if missing:
        raise ValueError(f"text holds characters outside the vocabulary: {missing[:5]}")
    return [index[c] for c in text]


def parse_variant(text):
    """'reference' or 'turboquant {"k_quant": ...}' -> (backend, config dict)."""
    name, _, config = text.partition(" ")
    return name, json.loads(config) if config.strip() else {}


@torch.inference_mode()
def perplexity(model, ids, registry, backend, config, window=1024, batch=4, max_windows=None):
    """Mean nats per predicted character over windows of `window` inputs (positions from 0), as
    `tq perplexity` counts them; returns (nats per char, predictions, KV bytes of the last cache)."""
    device = model.device
    starts = list(range(0, len(ids) - 1, window))[:max_windows]
    nats, predictions, kv_bytes = 0.0, 0, 0
    groups = {}
    for start in starts:
        groups.setdefault(min(window, len(ids) - 1 - start), []).append(start)
    for length, group in groups.items():
        for i in range(0, len(group), batch):
            chunk = group[i:i + batch]
            inputs = torch.tensor([ids[s:s + length] for s in chunk], device=device)
            targets = torch.tensor([ids[s + 1:s + length + 1] for s in chunk], device=device)
            cache = atb_hf.PluginCache(model, backend, config, registry=registry, max_tokens=length)
            logits = model(input_ids=inputs, past_key_values=cache, use_cache=True).logits.double()
            log_probs = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1))
            nats -= float(log_probs.sum())
            predictions += targets.numel()
            kv_bytes = cache.kv_bytes
    return nats / predictions, predictions, kv_bytes


@torch.inference_mode()
def generate(model, ids, registry, backend, config, steps=64):
    """Greedy continuation of `ids` by `steps` tokens; returns (new token ids, the cache)."""
    cache = atb_hf.PluginCache(model, backend, config, registry=registry, max_tokens=len(ids) + steps)
    inputs = torch.tensor([ids], device=model.device)
    out = model.generate(inputs, past_key_values=cache, max_new_tokens=steps, do_sample=False,
                         attention_mask=torch.ones_like(inputs), pad_token_id=2)
    return out[0, len(ids):].tolist(), cache


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hf_dir")
    parser.add_argument("--plugin-dir", action="append", default=[])
    parser.add_argument("--config", action="append", help="'BACKEND [JSON]', repeatable (default: reference)")
    parser.add_argument("--text", help="text for nats per character")
    parser.add_argument("--windows", type=int, help="evaluate only the first N windows")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--steps", type=int, default=64)
    args = parser.parse_args()

    registry = atb.Registry.scan(args.plugin_dir)
    model = load_model(args.hf_dir, args.device, args.dtype)
    pieces, index = load_vocab(args.hf_dir)
    variants = [parse_variant(v) for v in (args.config or ["reference"])]
    print(f"model {args.hf_dir} on {args.device} in {args.dtype}; attention: atb plugins")
    if args.text:
        with open(args.text, encoding="utf-8") as f:
            ids = encode(index, f.read())
        print(f"{'backend':<48} {'nats/char':>10} {'ppl':>8} {'predictions':>11} {'KV bytes':>10} {'s':>6}")
        for backend, config in variants:
            began = time.time()
            nats, count, kv_bytes = perplexity(model, ids, registry, backend, config, max_windows=args.windows)
            label = backend + (" " + json.dumps(config) if config else "")
            print(f"{label:<48} {nats:>10.5f} {math.exp(nats):>8.4f} {count:>11} {kv_bytes:>10} "
                  f"{time.time() - began:>6.1f}")
    for backend, config in variants:
        new, cache = generate(model, encode(index, args.prompt), registry, backend, config, args.steps)
        spec = cache.layers[0].backend.spec
        print(f"\n[{backend} {json.dumps(config)}] {args.prompt}{''.join(pieces[t] for t in new)}")
        print(f"KV pages held: {cache.kv_bytes} bytes over {len(cache.layers)} layers "
              f"({spec.bytes_per_token_per_head} bytes per token per KV head, page {spec.page_bytes} bytes)")


if __name__ == "__main__":
    main()
