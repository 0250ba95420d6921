#!/usr/bin/env bash
# Nsight Compute counters of one decode-attention kernel launch of `tq cuda-bench` (B=8, 32K):
# instructions, issue activity, tensor-pipe activity, occupancy, DRAM throughput and the stall
# reasons per issued instruction.  Run from the repository root on a GPU machine.
#   tests/cuda/profile_decode.sh [KERNEL_REGEX] [PAIR]
set -u -o pipefail
kernel=${1:-attention_kernel}
pair=${2:-q4_0/q3_0}
metrics="smsp__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active"
metrics+=",sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.per_cycle_active"
metrics+=",dram__throughput.avg.pct_of_peak_sustained_elapsed,gpu__time_duration.sum"
metrics+=",smsp__inst_executed_op_shared_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum"
for stall in long_scoreboard short_scoreboard mio_throttle math_pipe_throttle wait not_selected dispatch_stall \
             no_instruction branch_resolving selected lg_throttle; do
  metrics+=",smsp__average_warps_issue_stalled_${stall}_per_issue_active.ratio"
done
PATH="$PATH:/usr/local/cuda/bin" ncu --kernel-name "regex:$kernel" --launch-count 1 --metrics "$metrics" \
  build/release/bin/tq cuda-bench --batches 8 --pairs "$pair" --runs 2 --no-reference 2>&1 |
  grep -E "^\s+(smsp|sm__|dram|gpu__|l1tex)"
