// The paged-attention driver shared by every backend: it walks each sequence's block table, applies
// causality, the sliding window and the soft-cap, runs the online softmax in f32, splits long
// contexts into fixed-size parts and merges their partial softmax states in a fixed order (so any
// thread count gives bit-identical results).  A backend supplies only how to score a span of keys
// and how to accumulate its values from its own page format: TileOps.
#pragma once

#include <atb/kit/forward_batch.hpp>
#include <atb/plugin/vector_math.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace atb::plugin {

// Keys the driver scores, weighs and accumulates at once: a backend's per-call costs (its weights
// rounded per tile, its sums converted per tile, the softmax's reductions) are paid per 64 keys,
// not per page (vLLM's pages hold 16).
inline constexpr int kSpanKeys = 64;

// Consecutive keys of one sequence, handed to a backend as pieces of pages in key order: slots
// first_slot .. first_slot + n - 1 of each piece's page.
struct KeySpan {
  struct Piece {
    const std::byte* page = nullptr;
    int first_slot = 0;
    int n = 0;
  };
  std::array<Piece, kSpanKeys> pieces;
  int count = 0;  // pieces in use
  int keys = 0;   // their n summed, at most kSpanKeys

  void add(const std::byte* page, int first_slot, int n) {
    pieces[size_t(count++)] = {page, first_slot, n};
    keys += n;
  }
  // Keys begin .. end - 1 of this span, 0 <= begin < end <= keys.
  KeySpan slice(int begin, int end) const;
};

// out[j] = row_at(page, slot) for every key j of the span (a backend's rows of one KV head).
template <class Row, class RowAt>
void gather_rows(const KeySpan& span, RowAt row_at, Row* out) {
  for (int i = 0; i < span.count; ++i) {
    const KeySpan::Piece& piece = span.pieces[size_t(i)];
    for (int slot = piece.first_slot; slot < piece.first_slot + piece.n; ++slot) *out++ = row_at(piece.page, slot);
  }
}

// Prefetches every piece's rows of the span, `row_bytes` each from row_at(page, first_slot) on (rows
// of one KV head are consecutive within a page).
template <class RowAt>
void prefetch_rows(const KeySpan& span, size_t row_bytes, RowAt row_at);

class TileOps {
 public:
  virtual ~TileOps() = default;

  // Floats per prepared query row, at least head_size_k: a backend may keep per-query data beside
  // the query (e.g. block sums or a sketch of it) for score() to use.  Default: head_size_k.
  virtual int query_stride(int head_size_k) const;

  // Called once per unit of work on its `count` query rows of one KV head (f32, already multiplied
  // by the scale; row g starts at rows + g * query_stride): the GQA group of one token, or of
  // several consecutive tokens of a prefill, token by token.  E.g. to rotate them into the cache's
  // domain.  Default: unchanged.
  virtual void prepare_queries(int kv_head, float* rows, int count) const;

  // scores[g * span.keys + j] = <query row g, key j of the span>, for g < count; query rows at the
  // query_stride.
  virtual void score(const KeySpan& span, int kv_head, const float* queries, int count, float* scores) const = 0;

  // acc[g * head_size_v + d] += sum_j probs[g * span.keys + j] * value(key j of the span)[d].
  virtual void accumulate(const KeySpan& span, int kv_head, const float* probs, int count, float* acc) const = 0;

  // A hint that the span's keys come next: a backend may prefetch their K rows (`rows` is keys) or
  // their V rows (values) while the current span computes (pages are scattered, so hardware
  // prefetchers cannot follow).  The driver asks for the K rows before the current span's scores and for the V
  // rows after them, so that the two bursts of prefetches do not queue behind each other.  Default:
  // nothing.
  enum class Rows { keys, values };
  virtual void prefetch(const KeySpan& span, int kv_head, Rows rows) const;

  // Called on the `count` normalised output rows (f32) before they are stored, e.g. to rotate
  // back.  Default: unchanged.
  virtual void finish_outputs(int kv_head, float* rows, int count) const;
};

// Asks for the cache line holding `at` to be brought into L1.  An asm statement, not
// __builtin_prefetch: GCC 12 judged a function whose only effect was that builtin to have none
// (pure), and deleted its calls, so the prefetches of TileOps::prefetch were never executed.
inline void prefetch_line(const std::byte* at) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 %0" ::"m"(*at));
#else
  __builtin_prefetch(at);
#endif
}

// Prefetches every cache line that `bytes` bytes from `data` touch (for TileOps::prefetch).
inline void prefetch_bytes(const std::byte* data, size_t bytes) {
  constexpr uintptr_t kLine = 64;
  if (bytes == 0) return;
  const uintptr_t first = reinterpret_cast<uintptr_t>(data) & ~(kLine - 1);
  const uintptr_t last = reinterpret_cast<uintptr_t>(data) + bytes - 1;
  for (uintptr_t line = first; line <= last; line += kLine) prefetch_line(reinterpret_cast<const std::byte*>(line));
}

template <class RowAt>
void prefetch_rows(const KeySpan& span, size_t row_bytes, RowAt row_at) {
  for (int i = 0; i < span.count; ++i) {
    const KeySpan::Piece& piece = span.pieces[size_t(i)];
    prefetch_bytes(row_at(piece.page, piece.first_slot), size_t(piece.n) * row_bytes);
  }
}

// Devices the plugins serve: the CPU always, CUDA where the build has it.
#if defined(ATB_HAVE_CUDA)
inline constexpr uint32_t kDeviceMask = ATB_BIT(ATB_DEVICE_CPU) | ATB_BIT(ATB_DEVICE_CUDA);
#else
inline constexpr uint32_t kDeviceMask = ATB_BIT(ATB_DEVICE_CPU);
#endif

// What the shared driver gives every backend built on it (plugin-info capability flags).
inline constexpr uint32_t kDriverCapabilities = ATB_CAP_PAGED_KV_CACHE | ATB_CAP_GQA | ATB_CAP_CHUNKED_PREFILL |
                                                ATB_CAP_MIXED_BATCH | ATB_CAP_SLIDING_WINDOW | ATB_CAP_LOGITS_SOFT_CAP |
                                                ATB_CAP_KV_SHARING | ATB_CAP_TENSOR_PARALLEL;

struct AttentionShape {
  int num_query_heads;
  int num_kv_heads;
  int head_size_k;
  int head_size_v;
  int block_size;
  int sliding_window;     // 0: none
  float logits_soft_cap;  // 0: none
  float scale;
  int threads;
  VectorMath math;
};

// Keys per context part when a short query (<= kMaxSplitQueryLen new tokens) is split over threads.
inline constexpr int64_t kSplitKeys = 2048;
inline constexpr int32_t kMaxSplitQueryLen = 16;
// Query tokens of a longer query (a prefill) that share each key and value tile: the backend scores
// and accumulates them together, so it decodes each tile once for all of them.
inline constexpr int32_t kPrefillTokensPerItem = 8;

// The shape of a layer as the driver needs it.
inline AttentionShape attention_shape(const atb_layer_spec& spec, int threads, VectorMath math) {
  return {spec.num_query_heads, spec.num_kv_heads,    spec.head_size_k, spec.head_size_v, spec.block_size,
          spec.sliding_window,  spec.logits_soft_cap, spec.scale,       threads,          math};
}

// Computes attention for every query token of the batch and writes batch.output.
void run_paged_attention(const kit::ForwardBatch& batch, const AttentionShape& shape, const TileOps& ops);

}  // namespace atb::plugin
