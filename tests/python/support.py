"""What the sdk/python tests share: the build tree's paths (from ctest's environment) and a NumPy f64
attention oracle over the K/V a test handed the plugin."""

import os
import unittest

import numpy as np


def build_path(variable):
    """A path ctest passes in the environment; the test skips, saying which, when it is absent."""
    value = os.environ.get(variable)
    if not value:
        raise unittest.SkipTest(f"${variable} is not set (ctest sets it; see tests/CMakeLists.txt)")
    return value


def attention_f64(query, keys, values, positions, num_kv_heads, scale=None, sliding_window=0, soft_cap=0.0):
    """Causal attention in f64 for one sequence.  query [q, Hq, d] at `positions` (ascending, the last
    q positions of the sequence); keys/values [seq_len, Hkv, d] of every position so far."""
    q = query.astype(np.float64)
    k = keys.astype(np.float64)
    v = values.astype(np.float64)
    group = q.shape[1] // num_kv_heads
    scale = 1.0 / np.sqrt(q.shape[2]) if not scale else scale
    out = np.zeros((q.shape[0], q.shape[1], v.shape[2]))
    for t, position in enumerate(positions):
        first = max(0, position - sliding_window + 1) if sliding_window else 0
        for h in range(q.shape[1]):
            kv = h // group
            scores = k[first:position + 1, kv] @ q[t, h] * scale
            if soft_cap:
                scores = soft_cap * np.tanh(scores / soft_cap)
            weights = np.exp(scores - scores.max())
            out[t, h] = weights @ v[first:position + 1, kv] / weights.sum()
    return out


def relative_l2(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.linalg.norm(np.asarray(actual, dtype=np.float64) - expected) / max(np.linalg.norm(expected),
                                                                                       1e-30))


def outside_pages(pool, whole):
    """The bytes of `whole` (a pool's bytes as NumPy) that no page covers: guards and stride gaps."""
    mask = np.ones(whole.size, dtype=bool)
    for i in range(pool.num_pages):
        start = pool.leading_bytes + i * pool.stride_bytes
        mask[start:start + pool.page_bytes] = False
    return whole[mask]
