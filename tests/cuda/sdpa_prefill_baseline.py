#!/usr/bin/env python3
"""PyTorch scaled_dot_product_attention in bf16 on the prefill shapes of `tq cuda-bench`.

One sequence: NEW query tokens at the end of a sequence CACHED tokens long (a chunked prefill: query i
of the chunk sees keys 0 .. CACHED - NEW + i), 32 query / 8 KV heads (GQA), head size 128, contiguous
bf16 K/V.  The mask is causal aligned to the bottom right (torch's causal_lower_right).  Each backend
SDPA has (flash, cuDNN, memory-efficient) is timed where it takes the shape, and the best is printed
with TFLOP/s of causal-useful flops (4 x query heads x d per visible query-key pair), as
`tq cuda-bench --prefill-shapes` counts them.
"""
import argparse
import sys

import torch
import torch.nn.functional as F

from sdpa_decode_baseline import median_ms  # this script's folder is on sys.path


def flops(new, cached, hq, d):
    pairs = new * (cached - new) + new * (new + 1) / 2
    return 4.0 * hq * d * pairs


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shapes", default="512@8192,2048@8192,8192@8192,512@32768")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("sdpa_prefill_baseline: no CUDA device", file=sys.stderr)
        return 1
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.bias import causal_lower_right

    hq, hkv, d = 32, 8, 128
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION}
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}: SDPA bf16, {hq}/{hkv} heads, d {d}, "
          "causal lower right")
    print(f"{'backend':28} {'new@cached':>14} {'ms/step':>12} {'TFLOP/s':>10}   (each backend's ms)")
    for item in args.shapes.split(","):
        new, cached = (int(x) for x in item.split("@"))
        torch.manual_seed(new + cached)
        q = torch.randn(1, hq, new, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, hkv, cached, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, hkv, cached, d, device="cuda", dtype=torch.bfloat16)
        # GQA as expanded views (no copy): every backend takes them.
        ke = k[:, :, None].expand(1, hkv, hq // hkv, cached, d).reshape(1, hq, cached, d)
        ve = v[:, :, None].expand(1, hkv, hq // hkv, cached, d).reshape(1, hq, cached, d)
        mask = causal_lower_right(new, cached)
        timings = {}
        for name, backend in backends.items():
            step = lambda: F.scaled_dot_product_attention(q, ke, ve, attn_mask=mask)
            try:
                with sdpa_kernel(backend):
                    out = step()
                    if not torch.isfinite(out).all():
                        raise RuntimeError("non-finite output")
                    for _ in range(3):
                        step()
                    timings[name] = median_ms(step, args.runs)
            except Exception as error:  # a backend that does not take this shape or mask
                timings[name] = None
                print(f"  {name}: not taken ({str(error).splitlines()[0][:100]})", file=sys.stderr)
        taken = {name: ms for name, ms in timings.items() if ms is not None}
        if not taken:
            print(f"sdpa_prefill_baseline: no SDPA backend took {item}", file=sys.stderr)
            return 1
        best = min(taken, key=taken.get)
        ms = taken[best]
        each = ", ".join(f"{name} {value:.4f}" for name, value in taken.items())
        print(f"{'torch SDPA bf16 (' + best + ')':28} {item:>14} {ms:12.4f} {flops(new, cached, hq, d) / (ms * 1e-3) / 1e12:10.1f}"
              f"   ({each})")
        del q, k, v, ke, ve
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
