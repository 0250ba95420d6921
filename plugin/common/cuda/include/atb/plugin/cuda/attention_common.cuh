// Pieces the attention kernels share: the context a query token sees, its queries scaled and
// rotated (as the row format asks) in shared memory, and the epilogue that merges partial softmax
// states, rotates the output back and writes it (or the split's state for the merge kernel).
#pragma once

#include <atb/plugin/cuda/attention_params.hpp>

#include "device_common.cuh"
#include "launch_schedule.hpp"
#include "row_format.cuh"

namespace atb::plugin::cuda {

// Sequences with at most this many new tokens are the decode kernels'; longer ones the prefill
// kernel's where it serves the layer.
constexpr int kDecodeQueryTokens = 1;

// Which query heads and which slice of the context one thread block serves.
struct BlockWork {
  int token, kv_head, global_kv_head, head0, heads, split;
  int seq;
  int low, high;  // the context positions the token attends to: [low, high)
  int first_new;  // the sequence's first position this forward writes (seq_len - q_len)
  bool poisoned;  // sequence lengths that cannot be: the outputs become NaN
  bool skip;      // the token is the prefill kernel's: the block does nothing
};

// Whether the prefill kernel serves `token` of this launch (its sequence has several new tokens).
__device__ inline bool prefill_kernel_serves(const AttentionParams& p, int seq) {
  return p.decode_tokens_only && p.query_start_loc[seq + 1] - p.query_start_loc[seq] > kDecodeQueryTokens;
}

// The sequence of `token`: the last one starting at or before it (empty sequences start where the
// next does, so the last is never empty).  A decode batch has token t in sequence t: that guess is
// checked first, its two loads at once (the search is a chain of dependent loads in every block's
// set-up).
__device__ inline int sequence_of(const AttentionParams& p, int token) {
  const int guess = max(0, min(token, p.num_seqs - 1));
  if (p.query_start_loc[guess] <= token && token < p.query_start_loc[guess + 1]) return guess;
  int low = 0, high = p.num_seqs - 1;
  while (low < high) {
    const int mid = (low + high + 1) / 2;
    if (p.query_start_loc[mid] <= token)
      low = mid;
    else
      high = mid - 1;
  }
  return low;
}

// Whether sequence `seq`'s entries of the device arrays can be: its query rows inside the batch's
// tokens, its length at least its new tokens and within what its block-table row can hold.  The
// kernels serve a sequence that fails this with NaN outputs and touch nothing through its entries.
__device__ inline bool sequence_is_sane(const AttentionParams& p, int seq) {
  const int q_begin = p.query_start_loc[seq], q_end = p.query_start_loc[seq + 1];
  const int seq_len = p.seq_lens[seq];
  return q_begin >= 0 && q_end >= q_begin && q_end <= p.num_tokens && seq_len >= q_end - q_begin &&
         int64_t(seq_len) <= int64_t(p.block_table_stride) * p.block_size;
}

// The query token and heads of a block: blockIdx.x = (token * kv_heads + kv_head) * chunks + chunk of
// G heads (known without a load).
struct BlockHeads {
  int token, kv_head, head0, heads;
};
template <int G>
__device__ inline BlockHeads block_heads(const AttentionParams& p) {
  const int group = p.num_query_heads / p.num_kv_heads;
  const int chunks = (group + G - 1) / G;
  int index = blockIdx.x;
  const int chunk = index % chunks;
  index /= chunks;
  const int kv_head = index % p.num_kv_heads;
  return {index / p.num_kv_heads, kv_head, kv_head * group + chunk * G, min(G, group - chunk * G)};
}

// blockIdx.x as block_heads; blockIdx.y = split.
template <int G>
__device__ inline BlockWork block_work(const AttentionParams& p) {
  BlockWork w;
  const BlockHeads heads = block_heads<G>(p);
  w.token = heads.token;
  w.kv_head = heads.kv_head;
  w.head0 = heads.head0;
  w.heads = heads.heads;
  w.split = blockIdx.y;
  w.global_kv_head = p.first_global_kv_head + w.kv_head;
  w.seq = sequence_of(p, w.token);
  const int q_begin = p.query_start_loc[w.seq], q_len = p.query_start_loc[w.seq + 1] - q_begin;
  const int seq_len = p.seq_lens[w.seq];
  w.poisoned = !sequence_is_sane(p, w.seq) || w.token < q_begin || w.token >= q_begin + q_len;
  w.skip = prefill_kernel_serves(p, w.seq) && !w.poisoned;  // that kernel leaves insane sequences to these blocks
  w.first_new = seq_len - q_len;
  const int position = w.first_new + (w.token - q_begin);
  w.low = p.sliding_window > 0 ? max(0, position - p.sliding_window + 1) : 0;
  w.high = position + 1;
  if (w.poisoned) w.low = w.high = 0;  // no tile: its positions may lie past the block table
  return w;
}

// Of a launch's `splits` splits of each context, the ones a sequence uses: as many as give each
// at least kMinSplitRows positions (a split costs a block's set-up and a state to merge).  Splits
// past them are empty.
constexpr int kMinSplitRows = 512;
__device__ inline int splits_used(const BlockWork& w, int splits) {
  return max(1, min(splits, (w.high - w.low) / kMinSplitRows));
}

// Units [begin, end) of split s of n units (tiles, or positions for the simple kernel) in `used`
// of the launch's `launched` splits.  Where the split blocks make more than one wave (`uneven`) and
// a context uses every launched split or 8 splits or more, the first half of its splits share 85%
// of its units and the second half the rest: blocks start in split order, so the second wave is
// made of the small blocks, and the work of the SMs that run slower ends closer together (the
// shares tried and their timings: tests/cuda/PERFORMANCE.md, "Figures moved out of the kernels").
constexpr int kFirstHalfShare = 850;  // per mille
struct SplitRange {
  int begin, end;
};
__device__ inline SplitRange split_range(int n, int used, int launched, int s, bool uneven) {
  if (!uneven || used < 2 || (used < 8 && used < launched)) {
    const int per_split = (n + used - 1) / used;
    return {min(n, s * per_split), min(n, (s + 1) * per_split)};
  }
  const int first = used / 2, rest = used - first;
  const int big = int(int64_t(n) * kFirstHalfShare / 1000);
  if (s < first) return {s * big / first, (s + 1) * big / first};
  s -= first;  // splits past `used` (the CUDA-core kernel runs them) get [n, n)
  return {min(n, big + s * (n - big) / rest), min(n, big + (s + 1) * (n - big) / rest)};
}

// Scaled query elements of type T into `queries`, every load of a thread issued before its stores
// (one load then one store per step made each thread wait out its global loads one after another).
template <int D, int G, class T>
__device__ inline void load_scaled_queries(const AttentionParams& p, const BlockWork& w, const T* query,
                                           float* queries) {
  constexpr int kAhead = 8;  // G x D / 128 for the tensor-core kernel: one round of loads
  for (int base = threadIdx.x; base < G * D; base += kAhead * blockDim.x) {
    float x[kAhead];
#pragma unroll
    for (int k = 0; k < kAhead; ++k) {
      const int i = base + k * int(blockDim.x), g = i / D, c = i % D;
      x[k] = i < G * D && g < w.heads
                 ? to_float(query[w.token * p.query_token_stride + (w.head0 + g) * p.query_head_stride + c]) * p.scale
                 : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < kAhead; ++k)
      if (base + k * int(blockDim.x) < G * D) queries[base + k * int(blockDim.x)] = x[k];
  }
}

// Asks for the block's query rows to be brought into L1 (a kernel calls this first thing, so that
// their latency overlaps its set-up before load_queries).
template <int D>
__device__ inline void prefetch_queries(const AttentionParams& p, const BlockWork& w) {
  const int element = p.io_dtype == ATB_DTYPE_F32 ? 4 : 2;
  const int lines = (D * element + 127) / 128 + 1;  // a row may start inside a line
  if (int(threadIdx.x) >= w.heads * lines) return;
  const int g = int(threadIdx.x) / lines, line = int(threadIdx.x) % lines;
  const char* row = static_cast<const char*>(p.query) +
                    (w.token * p.query_token_stride + (w.head0 + g) * p.query_head_stride) * element;
  const char* at = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(row) / 128 * 128) + 128 * line;
  if (at < row + D * element) asm volatile("prefetch.global.L1 [%0];" ::"l"(at));
}

// Once every thread has stored its scaled queries ([G][D]): rotated when K rows are (rows past
// `heads` stay zero).
template <class Rows, int D>
__device__ inline void rotate_stored_queries(const AttentionParams& p, const typename Rows::Codec& key,
                                             const BlockWork& w, float* queries) {
  __syncthreads();
  Rows::rotate_queries(p, key, w.kv_head, queries, w.heads, D);
}

// A thread's share of the block's G x D query elements as raw bits (element i = threadIdx.x + k x
// THREADS, zero past the block's heads), loaded first thing: they are then requested before the
// block's tile copies fill the memory queues, and arrive while it sets up (loaded after the copies,
// they delayed the first blocks' set-up).
template <int D, int G, int THREADS>
struct QueryBits {
  static constexpr int kCount = (G * D + THREADS - 1) / THREADS;
  uint32_t bits[kCount > 0 ? kCount : 1];  // G = 0: none loaded (the caller loads its queries otherwise)

  __device__ QueryBits(const AttentionParams& p, const BlockHeads& heads) {
#pragma unroll
    for (int k = 0; k < kCount; ++k) {
      const int i = int(threadIdx.x) + k * THREADS, g = i / D, c = i % D;
      const int64_t at = heads.token * p.query_token_stride + (heads.head0 + g) * p.query_head_stride + c;
      bits[k] = 0;
      if (i < G * D && g < heads.heads) {
        if (p.io_dtype == ATB_DTYPE_F32)
          bits[k] = __float_as_uint(static_cast<const float*>(p.query)[at]);
        else
          bits[k] = static_cast<const unsigned short*>(p.query)[at];
      }
    }
  }

  // The scaled queries into `queries` ([G][D]), rotated when K rows are (as load_queries leaves them).
  template <class Rows>
  __device__ void store(const AttentionParams& p, const typename Rows::Codec& key, const BlockWork& w,
                        float* queries) const {
#pragma unroll
    for (int k = 0; k < kCount; ++k) {
      const int i = int(threadIdx.x) + k * THREADS;
      if (i >= G * D) continue;
      float x;
      if (p.io_dtype == ATB_DTYPE_F32)
        x = __uint_as_float(bits[k]);
      else if (p.io_dtype == ATB_DTYPE_F16)
        x = __half2float(__ushort_as_half(static_cast<unsigned short>(bits[k])));
      else
        x = __bfloat162float(__ushort_as_bfloat16(static_cast<unsigned short>(bits[k])));
      queries[i] = x * p.scale;
    }
    rotate_stored_queries<Rows, D>(p, key, w, queries);
  }
};

// The block's G query vectors into `queries` ([G][D], zero past `heads`), scaled, and rotated
// when K rows are.
template <class Rows, int D, int G>
__device__ inline void load_queries(const AttentionParams& p, const typename Rows::Codec& key, const BlockWork& w,
                                    float* queries) {
  if (p.io_dtype == ATB_DTYPE_F32)
    load_scaled_queries<D, G>(p, w, static_cast<const float*>(p.query), queries);
  else if (p.io_dtype == ATB_DTYPE_F16)
    load_scaled_queries<D, G>(p, w, static_cast<const __half*>(p.query), queries);
  else
    load_scaled_queries<D, G>(p, w, static_cast<const __nv_bfloat16*>(p.query), queries);
  rotate_stored_queries<Rows, D>(p, key, w, queries);
}

// The value tables of K and V into shared memory ([256] floats each; the entries the codecs use) and
// the block's queries as load_queries leaves them.
template <class Rows, int D, int G>
__device__ inline void load_block_inputs(const AttentionParams& p, const Codecs<Rows>& codecs, const BlockWork& w,
                                         float* queries, float* key_table, float* value_table) {
  Rows::copy_tables(codecs, key_table, value_table);
  load_queries<Rows, D, G>(p, codecs.key, w, queries);
}

// This block's split state of its query head g in the workspace: (max, sum, D weighted values).
template <int D>
__device__ inline float* split_state(const AttentionParams& p, const BlockWork& w, int g, int splits) {
  return static_cast<float*>(p.workspace) +
         ((int64_t(w.token) * p.num_query_heads + w.head0 + g) * splits + w.split) * (D + 2);
}

// The state of a split that holds no position (splits_used): weight 0 in the merge.
template <int D>
__device__ inline void write_empty_state(const AttentionParams& p, const BlockWork& w, int splits) {
  for (int i = threadIdx.x; i < w.heads * (D + 2); i += blockDim.x) {
    const int g = i / (D + 2), c = i % (D + 2);
    split_state<D>(p, w, g, splits)[c] = c == 0 ? -INFINITY : 0.0f;
  }
}

// The start of a split decode kernel's block: true where the block has nothing to attend to and is
// done.  A token the prefill kernel serves only waits for the write kernel (this kernel completes
// after it: see overlaps_write); a split past the ones the context uses writes an empty state (the
// token's split 0 holds positions and waits for the write kernel).  Otherwise the merge kernel may
// be launched now: its blocks set up on spare resources and then wait for this grid to complete
// (launching it when the last blocks finish put its whole latency after them).
template <int D>
__device__ inline bool decode_block_done(const AttentionParams& p, const BlockWork& w, int splits) {
  if (w.skip) {  // the same for every thread of the block
    wait_for_previous_kernel();
    allow_dependent_launch();
    return true;
  }
  if (w.split >= splits_used(w, splits)) {
    write_empty_state<D>(p, w, splits);
    return true;
  }
  allow_dependent_launch();
  return false;
}

// COUNT partial states in shared memory, each [G][D + 2] = (max, sum, D weighted values), with
// the max in natural-log units, are merged; the result is written as the output (one split; rotated
// back when V rows are rotated) or as this split's state in the workspace (still rotated).  `merged`
// holds G x D floats of scratch.
template <class Rows, int D, int G, int COUNT>
__device__ inline void finish_block(const AttentionParams& p, const typename Rows::Codec& value, const BlockWork& w,
                                    int splits, const float* states, float* merged, bool poisoned) {
  __shared__ float merged_max[G], merged_sum[G], state_weight[COUNT][G];
  // Each state's weight exp(max - top) once per head (once per coordinate made this a chain of
  // COUNT exponentials per element).
  if (threadIdx.x < G) {
    const int g = threadIdx.x;
    float top = -INFINITY;
    for (int t = 0; t < COUNT; ++t) top = fmaxf(top, states[(t * G + g) * (D + 2)]);
    float sum = 0.0f;
    for (int t = 0; t < COUNT; ++t) {
      const float* state = states + (t * G + g) * (D + 2);
      const float weight = top > -INFINITY ? expf(state[0] - top) : 0.0f;
      state_weight[t][g] = weight;
      sum += state[1] * weight;
    }
    merged_max[g] = top, merged_sum[g] = sum;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
    const int g = i / D, c = i % D;
    float total = 0.0f;
#pragma unroll
    for (int t = 0; t < COUNT; ++t) total += states[(t * G + g) * (D + 2) + 2 + c] * state_weight[t][g];
    // One split: the outputs are normalized before the inverse rotation, which may add the channel
    // means of centered V rows (they need the weights to sum to one).
    merged[i] = splits == 1 ? total / merged_sum[g] : total;
  }
  __syncthreads();
  if (splits == 1)  // split states stay rotated: the merge kernel rotates their sum once
    Rows::rotate_outputs(p, value, w.kv_head, merged, G, D);

  for (int i = threadIdx.x; i < w.heads * D; i += blockDim.x) {
    const int g = i / D, c = i % D;
    if (splits == 1) {
      const float out = poisoned ? NAN : merged[i];
      store_element(p.output, w.token * p.output_token_stride + (w.head0 + g) * p.output_head_stride + c, p.io_dtype,
                    out);
    } else {
      float* state = split_state<D>(p, w, g, splits);
      if (c == 0) state[0] = poisoned ? NAN : merged_max[g], state[1] = merged_sum[g];
      state[2 + c] = merged[i];
    }
  }
}

}  // namespace atb::plugin::cuda
