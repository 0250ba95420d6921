#!/usr/bin/env python3
"""PyTorch scaled_dot_product_attention in bf16 on the decode shape of `tq cuda-bench`.

One new query token per sequence against a contiguous bf16 K/V cache: B sequences, 32 query / 8 KV
heads (GQA; --query-heads, --kv-heads), head size 128 (--head-size), context 32768.  Times the
median of CUDA-event-timed calls (one call per timing, and 20 calls in a row per timing as the
in-row figure) and counts the K/V bytes read (B x context x KV heads x head size x 2 bytes x 2), as
tq cuda-bench does.
"""
import argparse
import sys

import torch
import torch.nn.functional as F


def median_ms(fn, samples, calls=1):
    """Median time per call of `samples` timings of `calls` calls in a row (as tq cuda-bench)."""
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(samples):
        start.record()
        for _ in range(calls):
            fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / calls)
    times.sort()
    return times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--context", type=int, default=32768)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--head-size", type=int, default=128)
    parser.add_argument("--query-heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("sdpa_decode_baseline: no CUDA device", file=sys.stderr)
        return 1
    hq, hkv, d = args.query_heads, args.kv_heads, args.head_size
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}: SDPA bf16, {hq}/{hkv} heads, d {d}, "
          f"context {args.context}")
    print(f"{'backend':28} {'batch':>5} {'ms/step':>12} {'ms (in row)':>12} {'cache MB':>12} {'GB/s':>10} {'GB/s row':>10}")
    for batch in [int(b) for b in args.batches.split(",")]:
        torch.manual_seed(batch)
        q = torch.randn(batch, hq, 1, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(batch, hkv, args.context, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(batch, hkv, args.context, d, device="cuda", dtype=torch.bfloat16)
        try:
            step = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
            step()
            label = "torch SDPA (enable_gqa)"
        except TypeError:  # older torch: the KV heads expanded to every query head (a view, no copy)
            ke = k[:, :, None].expand(batch, hkv, hq // hkv, args.context, d).reshape(batch, hq, args.context, d)
            ve = v[:, :, None].expand(batch, hkv, hq // hkv, args.context, d).reshape(batch, hq, args.context, d)
            step = lambda: F.scaled_dot_product_attention(q, ke, ve)
            label = "torch SDPA (expanded KV)"
        out = step()
        if not torch.isfinite(out).all():
            print("sdpa_decode_baseline: non-finite output", file=sys.stderr)
            return 1
        for _ in range(5):
            step()
        ms = median_ms(step, args.runs)
        in_row_ms = median_ms(step, max(args.runs // 20, 3), 20)
        cache_bytes = batch * args.context * hkv * d * 2 * 2
        print(f"{label:28} {batch:5d} {ms:12.4f} {in_row_ms:12.4f} {cache_bytes / 1e6:12.1f} "
              f"{cache_bytes / (ms * 1e-3) / 1e9:10.0f} {cache_bytes / (in_row_ms * 1e-3) / 1e9:10.0f}")
        del q, k, v, out
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
