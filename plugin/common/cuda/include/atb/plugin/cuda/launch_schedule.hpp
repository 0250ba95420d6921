// The split planner: how many splits of each context a decode launch makes, so that its blocks
// fill whole waves of the device, and the facts about a kernel that decides it (host only).
#pragma once

#include <atb/plugin/cuda/attention_params.hpp>
#include <atb/status.hpp>

#include <cstddef>

namespace atb::plugin::cuda {

constexpr int kMaxSplits = 32;  // see splits_filling_waves

// Tokens x splits the workspace holds partial states for (attention_workspace_bytes).
constexpr int kTokenSplitCapacity = 1024;

// Multiprocessors of the current device (read once).
int multiprocessors();

// Splits of the context for `blocks` blocks a split where `slots` blocks are resident at once.
// None where the blocks fill 85% of a wave (where the kernel gives splits uneven ranges,
// split_range: where they make 1.85 waves).  Otherwise the fewest that make about two waves (a
// block that finishes early is then replaced by one of the second wave: the older blocks on a
// multiprocessor are served first and finish first, and a single wave ends on its youngest) whose
// last wave is at least 85% full (a wave a third full costs as much as a full one), and at most
// kMaxSplits (each split costs a block's set-up and a state to merge).  The timings behind these
// thresholds are in tests/cuda/PERFORMANCE.md ("Figures moved out of the kernels").
int splits_filling_waves(int blocks, int slots, bool uneven_ranges);

// Blocks per split of a decode launch whose blocks serve `heads_per_block` query heads of one KV
// head: tokens x KV heads x chunks of the group.
int blocks_per_split(const AttentionParams& p, int heads_per_block);

// Raises `kernel`'s dynamic shared-memory limit to `shared_limit` and returns how many of its
// blocks of `threads` threads and `shared_bytes` bytes one multiprocessor holds at once.
Expected<int> prepare_kernel(const void* kernel, int threads, size_t shared_limit, size_t shared_bytes);

}  // namespace atb::plugin::cuda
