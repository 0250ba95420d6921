#!/usr/bin/env python3
"""Converts a llama2.c checkpoint (and its tokenizer.bin) into a Hugging Face transformers Llama
checkpoint: config.json, model.safetensors (f32 or bf16) and vocab.json (the tokenizer's pieces by id).
NumPy only, offline.

    python3 examples/python/llama2c_to_hf.py ../shared/models/shakespeare_char_17M.bin \\
        ../shared/models/tokenizer.bin /tmp/shakespeare_hf [--dtype bf16]

The mapping it relies on:
  - llama2.c weights are row-major (out_features, in_features), as torch.nn.Linear's weight: copied as is
    (w1 -> mlp.gate_proj, w3 -> mlp.up_proj, w2 -> mlp.down_proj, rms_att -> input_layernorm,
    rms_ffn -> post_attention_layernorm, rms_final -> norm, token_embedding -> embed_tokens; a positive
    vocab_size means the classifier is the embedding: tie_word_embeddings).
  - RoPE: llama2.c rotates interleaved pairs (x[2j], x[2j+1]) of each head; transformers' Llama rotates
    (x[j], x[j + d/2]) ("rotate_half").  Both use the angle pos / theta^(2j/d) for pair j, so permuting
    each head's rows of W_q and W_k, new row j <- old row 2j and new row d/2 + j <- old row 2j + 1, makes
    transformers compute the same rotated q and k up to that permutation of coordinates; q.k, and so
    the attention, is unchanged.  W_v and W_o are not permuted.  theta = 10000.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

HEADER = struct.Struct("<7i")


def read_checkpoint(path):
    with open(path, "rb") as f:
        raw = f.read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = HEADER.unpack_from(raw)
    shared = vocab > 0
    vocab = abs(vocab)
    head = dim // heads
    kv_dim = kv_heads * head
    data = np.frombuffer(raw, dtype="<f4", offset=HEADER.size)
    offset = 0

    def take(*shape):
        nonlocal offset
        count = int(np.prod(shape))
        if offset + count > data.size:
            sys.exit(f"{path}: ends before its weights do (needs {count} more floats at {offset})")
        array = data[offset:offset + count].reshape(shape)
        offset += count
        return array

    weights = {"token_embedding": take(vocab, dim), "rms_att": take(layers, dim), "wq": take(layers, dim, dim),
               "wk": take(layers, kv_dim, dim), "wv": take(layers, kv_dim, dim), "wo": take(layers, dim, dim),
               "rms_ffn": take(layers, dim), "w1": take(layers, hidden, dim), "w2": take(layers, dim, hidden),
               "w3": take(layers, hidden, dim), "rms_final": take(dim)}
    take(seq_len, head // 2)  # freq_cis_real / imag: transformers computes RoPE itself
    take(seq_len, head // 2)
    if not shared:
        weights["wcls"] = take(vocab, dim)
    config = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab,
                  seq_len=seq_len, shared=shared)
    return config, weights


def read_tokenizer(path, vocab):
    pieces = []
    with open(path, "rb") as f:
        f.read(4)  # max_token_length
        for _ in range(vocab):
            _score, length = struct.unpack("<fi", f.read(8))
            pieces.append(f.read(length).decode("utf-8", "replace"))
    return pieces


def interleaved_to_half(w, heads):
    """Rows of each head reordered from interleaved RoPE pairs to rotate_half pairs."""
    rows, cols = w.shape
    head = rows // heads
    return w.reshape(heads, head // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def hf_tensors(config, weights):
    tensors = {"model.embed_tokens.weight": weights["token_embedding"], "model.norm.weight": weights["rms_final"]}
    for i in range(config["layers"]):
        p = f"model.layers.{i}."
        tensors[p + "input_layernorm.weight"] = weights["rms_att"][i]
        tensors[p + "self_attn.q_proj.weight"] = interleaved_to_half(weights["wq"][i], config["heads"])
        tensors[p + "self_attn.k_proj.weight"] = interleaved_to_half(weights["wk"][i], config["kv_heads"])
        tensors[p + "self_attn.v_proj.weight"] = weights["wv"][i]
        tensors[p + "self_attn.o_proj.weight"] = weights["wo"][i]
        tensors[p + "post_attention_layernorm.weight"] = weights["rms_ffn"][i]
        tensors[p + "mlp.gate_proj.weight"] = weights["w1"][i]
        tensors[p + "mlp.up_proj.weight"] = weights["w3"][i]
        tensors[p + "mlp.down_proj.weight"] = weights["w2"][i]
    if not config["shared"]:
        tensors["lm_head.weight"] = weights["wcls"]
    return tensors


def hf_config(config, dtype):
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": config["dim"],
            "intermediate_size": config["hidden"], "num_hidden_layers": config["layers"],
            "num_attention_heads": config["heads"], "num_key_value_heads": config["kv_heads"],
            "head_dim": config["dim"] // config["heads"], "vocab_size": config["vocab"],
            "max_position_embeddings": config["seq_len"], "rms_norm_eps": 1e-5, "hidden_act": "silu",
            "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": config["shared"],
            "rope_theta": 10000.0, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
            "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": {"f32": "float32", "bf16": "bfloat16"}[dtype],
            "dtype": {"f32": "float32", "bf16": "bfloat16"}[dtype]}


def to_bf16_bits(array):
    """f32 -> bf16 bit patterns, rounded to nearest even (NaN kept NaN)."""
    bits = np.ascontiguousarray(array, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    rounded = np.where(np.isnan(array.reshape(bits.shape)), 0x7FC0, rounded)
    return rounded.astype("<u2")


def write_safetensors(path, tensors, dtype):
    """The safetensors format: an 8-byte little-endian header length, a JSON header, then the data."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in tensors.items():
        blob = (to_bf16_bits(array) if dtype == "bf16" else np.ascontiguousarray(array, dtype="<f4")).tobytes()
        header[name] = {"dtype": "BF16" if dtype == "bf16" else "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """{name: f32 array} of a file write_safetensors wrote (F32 or BF16)."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        if entry["dtype"] == "F32":
            array = np.frombuffer(data[start:end], dtype="<f4")
        else:
            array = (np.frombuffer(data[start:end], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        tensors[name] = array.reshape(entry["shape"])
    return tensors


def convert(checkpoint, tokenizer, out_dir, dtype="f32"):
    config, weights = read_checkpoint(checkpoint)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config(config, dtype), f, indent=2)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), hf_tensors(config, weights), dtype)
    with open(os.path.join(out_dir, "vocab.json"), "w") as f:
        json.dump(read_tokenizer(tokenizer, config["vocab"]), f)
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("tokenizer")
    parser.add_argument("out_dir")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    args = parser.parse_args()
    config = convert(args.checkpoint, args.tokenizer, args.out_dir, args.dtype)
    print(f"wrote {args.out_dir}: {config['layers']} layers, dim {config['dim']}, {config['heads']} heads "
          f"({config['kv_heads']} KV), vocab {config['vocab']}, {args.dtype}")


if __name__ == "__main__":
    main()
