#!/usr/bin/env bash
# The CUDA checks and timings in one call on a GPU machine, from the repository root, with
# build/release built elsewhere and carried over: the GPU-vs-CPU test, the same test under
# compute-sanitizer memcheck, `tq cuda-bench` and PyTorch's SDPA on the same shape.
#   tests/cuda/device_run.sh BUILD_ROOT [LIB_DIR]
# BUILD_ROOT: where the build was made (the tests look for plugins at its absolute path);
# LIB_DIR: shared libraries the build machine had and this one lacks (spdlog, fmt, ...).
set -u -o pipefail
build_root=${1:?usage: device_run.sh BUILD_ROOT [LIB_DIR]}
if [ "$(realpath "$build_root" 2>/dev/null)" != "$(realpath "$PWD")" ]; then
  mkdir -p "$(dirname "$build_root")" && ln -sfn "$PWD" "$build_root"
fi
[ -n "${2:-}" ] && export LD_LIBRARY_PATH="$(realpath "$2")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$PATH:/usr/local/cuda/bin"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv
status=0
echo "== cuda_tests"
build/release/bin/cuda_tests 2>&1 | tail -n 30 || status=1
echo "== compute-sanitizer memcheck cuda_tests"
compute-sanitizer --tool memcheck --leak-check no build/release/bin/cuda_tests --gtest_brief=1 2>&1 | tail -n 8 || status=1
echo "== tq cuda-bench"
build/release/bin/tq cuda-bench ${BENCH_FLAGS:-} || status=1
echo "== PyTorch SDPA"
python3 tests/cuda/sdpa_decode_baseline.py || status=1
exit $status
