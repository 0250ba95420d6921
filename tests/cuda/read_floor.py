#!/usr/bin/env python3
"""The read floor of a decode step: how long one bare kernel takes to read as many bytes as the step
of `tq cuda-bench` reads, on the same device and timed the same way.

A step reads B x context x KV heads x (K + V row bytes); the row bytes of each pair are the
plugin's (`tq verify` prints them: q4_0/q3_0 80+56, q8_0/q3_0 144+56, tq4/tq3 66+50 at head size
128).  The kernel streams those bytes once with 16-byte loads (grid-stride, its fastest of a few
grid sizes) and does nothing else; buffers are used in turn so that no step finds its bytes in L2.
Times are medians of CUDA-event-timed single launches, as the bench's single-step figures.
Needs CuPy (its runtime compiler builds the kernel) besides PyTorch.
"""
import argparse
import math
import sys

import torch

from sdpa_decode_baseline import median_ms

READ_KERNEL = r'''
extern "C" __global__ void read_all(const uint4* __restrict__ bytes, unsigned long long count, unsigned* sink) {
  unsigned folded = 0;
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < count;
       i += (unsigned long long)gridDim.x * blockDim.x) {
    const uint4 v = __ldcs(bytes + i);
    folded ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (folded == 0x9e3779b9u) sink[0] = folded;  // keeps the loads; practically never stores
}'''


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--context", type=int, default=32768)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--pairs", default="q4_0/q3_0=136,q8_0/q3_0=200,tq4/tq3=116",
                        help="LABEL=ROW_BYTES,... (K + V bytes per token per KV head)")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    try:
        import cupy
    except ImportError:
        print("read_floor: CuPy is not installed here", file=sys.stderr)
        return 1
    if not torch.cuda.is_available():
        print("read_floor: no CUDA device", file=sys.stderr)
        return 1
    kernel = cupy.RawKernel(READ_KERNEL, "read_all")
    sink = cupy.zeros(1, dtype=cupy.uint32)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    pairs = [(label, int(row)) for label, row in (item.split("=") for item in args.pairs.split(","))]
    print(f"read floor on {torch.cuda.get_device_name()}: one kernel reading a step's bytes, context {args.context}, "
          f"{args.kv_heads} KV heads")
    print(f"{'pair':12} {'batch':>5} {'bytes MB':>10} {'floor ms':>10} {'GB/s':>8}")
    for batch in [int(b) for b in args.batches.split(",")]:
        for label, row_bytes in pairs:
            step_bytes = batch * args.context * args.kv_heads * row_bytes
            vectors = step_bytes // 16
            count = min(16, max(2, math.ceil(256e6 / step_bytes)) + 1)
            buffers = [cupy.ones(vectors * 4, dtype=cupy.uint32) for _ in range(count)]
            best = math.inf
            for blocks_per_sm in (4, 8, 16):
                turn = [0]

                def read_step():
                    buffer = buffers[turn[0] % count]
                    turn[0] += 1
                    kernel((sms * blocks_per_sm,), (512,), (buffer, cupy.uint64(vectors), sink))

                for _ in range(count):
                    read_step()
                best = min(best, median_ms(read_step, args.runs))
            print(f"{label:12} {batch:5d} {step_bytes / 1e6:10.1f} {best:10.4f} {step_bytes / (best * 1e-3) / 1e9:8.0f}")
            del buffers
            cupy.get_default_memory_pool().free_all_blocks()
    return 0


if __name__ == "__main__":
    sys.exit(main())
