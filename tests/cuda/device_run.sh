#!/usr/bin/env bash
# The CUDA checks and timings in one call on a GPU machine, from the repository root, with
# build/release built elsewhere and carried over: the GPU-vs-CPU test, the same test under
# compute-sanitizer memcheck, `tq cuda-bench`, PyTorch's SDPA on the same shape and the read floor
# (one bare kernel reading a step's bytes).
#   tests/cuda/device_run.sh BUILD_ROOT [LIB_DIR]
# BUILD_ROOT: where the build was made (the tests look for plugins at its absolute path);
# LIB_DIR: shared libraries the build machine had and this one lacks (spdlog, fmt, ...).
# PARTS (environment): which parts to run, default all: tests conformance memcheck bench sdpa floor.
set -u -o pipefail
build_root=${1:?usage: device_run.sh BUILD_ROOT [LIB_DIR]}
if [ "$(realpath "$build_root" 2>/dev/null)" != "$(realpath "$PWD")" ]; then
  mkdir -p "$(dirname "$build_root")" && ln -sfn "$PWD" "$build_root"
fi
[ -n "${2:-}" ] && export LD_LIBRARY_PATH="$(realpath "$2")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$PATH:/usr/local/cuda/bin"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv
parts=" ${PARTS:-tests conformance memcheck bench sdpa floor} "
wanted() { [[ "$parts" == *" $1 "* ]]; }
status=0
if wanted tests; then
  echo "== cuda_tests"
  build/release/bin/cuda_tests 2>&1 | tail -n 30 || status=1
fi
if wanted conformance; then
  echo "== ABI conformance on the CUDA device (GoogleTest suite, then the tool)"
  build/release/bin/conformance_tests --gtest_filter='ConformanceOnCuda*' 2>&1 | grep -E "on CUDA:|PASSED|FAILED|SKIPPED|Failure" || status=1
  build/release/bin/abi-conformance --device cuda || status=1
fi
if wanted memcheck; then
  echo "== compute-sanitizer memcheck cuda_tests"
  compute-sanitizer --tool memcheck --leak-check no build/release/bin/cuda_tests --gtest_brief=1 2>&1 | tail -n 8 || status=1
  echo "== compute-sanitizer memcheck abi-conformance --device cuda (every check's child process)"
  compute-sanitizer --tool memcheck --leak-check no --target-processes all build/release/bin/abi-conformance --device cuda \
    --churn-cycles 100 2>&1 | tail -n 24 || status=1
fi
if wanted bench; then
  echo "== tq cuda-bench"
  build/release/bin/tq cuda-bench ${BENCH_FLAGS:-} || status=1
fi
if wanted sdpa; then
  echo "== PyTorch SDPA"
  python3 tests/cuda/sdpa_decode_baseline.py || status=1
fi
if wanted floor; then
  echo "== read floor"
  python3 tests/cuda/read_floor.py || status=1
fi
exit $status
