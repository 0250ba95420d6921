#!/usr/bin/env bash
# Per-instruction Nsight Compute counters (SASS, executed instructions and stall samples per
# instruction) of one decode-attention kernel launch of `tq cuda-bench` (B=8, 32K), written as CSV
# to DIR, with the kernel's warp-state and instruction summaries.  Run from the repository root.
#   tests/cuda/profile_sass.sh DIR [KERNEL_REGEX] [PAIR]
set -u -o pipefail
dir=${1:?usage: profile_sass.sh DIR [KERNEL_REGEX] [PAIR]}
kernel=${2:-mma_attention}
pair=${3:-q4_0/q3_0}
export PATH="$PATH:/usr/local/cuda/bin"
mkdir -p "$dir"
ncu --kernel-name "regex:$kernel" --launch-count 1 --import-source no \
  --section SourceCounters --section WarpStateStats --section InstructionStats --section SpeedOfLight \
  --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
  -o "$dir/profile" build/release/bin/tq cuda-bench --batches 8 --pairs "$pair" --runs 2 --no-reference > "$dir/ncu.log" 2>&1
ncu --import "$dir/profile.ncu-rep" --page details > "$dir/details.txt" 2>&1
ncu --import "$dir/profile.ncu-rep" --page source --csv --print-source sass > "$dir/sass.csv" 2>&1
tail -n 3 "$dir/ncu.log"; grep -E "Duration|Issue Slots Busy|Executed Ipc|Warp Cycles Per Issued|Registers Per|Achieved Occupancy" "$dir/details.txt"
