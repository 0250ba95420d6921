#include <atb/half.hpp>
#include <atb/kit/thread_pool.hpp>
#include <atb/plugin/paged_attention.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

namespace atb::plugin {

int TileOps::query_stride(int head_size_k) const { return head_size_k; }
void TileOps::prepare_queries(int, float*, int) const {}
void TileOps::finish_outputs(int, float*, int) const {}
void TileOps::prefetch(const KeySpan&, int, Rows) const {}

KeySpan KeySpan::slice(int begin, int end) const {
  KeySpan part;
  int first = 0;  // of the piece, in this span
  for (int i = 0; i < count && first < end; ++i) {
    const Piece& piece = pieces[size_t(i)];
    const int from = std::max(begin, first), to = std::min(end, first + piece.n);
    if (from < to) part.add(piece.page, piece.first_slot + (from - first), to - from);
    first += piece.n;
  }
  return part;
}

namespace {

// One unit of work: `tokens` consecutive query tokens of one sequence (several only in a prefill,
// where they share each key and value tile the backend decodes), one KV head with its whole GQA
// group, one part of the context: keys key_begin .. key_end - 1, the union of what the tokens see.
struct Item {
  int32_t seq;
  int32_t token;     // the first query token
  int32_t tokens;    // query tokens token .. token + tokens - 1, at positions position .. position + tokens - 1
  int64_t position;  // of the first token in its sequence
  int32_t kv_head;
  int64_t key_begin;
  int64_t key_end;
  int64_t partial;  // index of its partial state, or -1 when it is the only part (always for tokens > 1)
};

// A (token, KV head) whose context was split into parts partial .. partial + parts - 1.
struct Merge {
  int32_t token;
  int32_t kv_head;
  int64_t partial;
  int32_t parts;
};

struct Plan {
  std::vector<Item> items;
  std::vector<Merge> merges;
  int64_t num_partials = 0;
};

// The first key a query at `position` sees, with the sliding window.
int64_t first_visible_key(const AttentionShape& shape, int64_t position) {
  return shape.sliding_window > 0 ? std::max<int64_t>(0, position - shape.sliding_window + 1) : 0;
}

Plan make_plan(const kit::ForwardBatch& batch, const AttentionShape& shape) {
  Plan plan;
  for (int32_t s = 0; s < batch.num_seqs; ++s) {
    const int32_t q_len = batch.query_len(s);
    const int64_t seq_len = batch.seq_lens[s];
    const int32_t step = q_len <= kMaxSplitQueryLen ? 1 : kPrefillTokensPerItem;
    for (int32_t i = 0; i < q_len; i += step) {
      const int32_t token = batch.query_start_loc[s] + i;
      const int32_t tokens = std::min(step, q_len - i);
      const int64_t position = seq_len - q_len + i;
      const int64_t lo = first_visible_key(shape, position);
      const int64_t hi = position + tokens;
      const int64_t parts = q_len <= kMaxSplitQueryLen ? (hi - lo + kSplitKeys - 1) / kSplitKeys : 1;
      for (int32_t h = 0; h < shape.num_kv_heads; ++h) {
        if (parts == 1) {
          plan.items.push_back({s, token, tokens, position, h, lo, hi, -1});
          continue;
        }
        plan.merges.push_back({token, h, plan.num_partials, static_cast<int32_t>(parts)});
        for (int64_t p = 0; p < parts; ++p) {
          const int64_t begin = lo + p * kSplitKeys;
          plan.items.push_back(
              {s, token, tokens, position, h, begin, std::min(hi, begin + kSplitKeys), plan.num_partials++});
        }
      }
    }
  }
  return plan;
}

// Online-softmax state of one item: per query row r (token t, head g at r = t * group + g), running
// max m[r], sum l[r], acc[r][Dv]; `probs` packs the visible part of a partly masked span.
struct Scratch {
  std::vector<float> queries, scores, max, sum, acc, probs;
};

void store_outputs(const kit::ForwardBatch& batch, const AttentionShape& shape, const TileOps& ops, int32_t token,
                   int32_t kv_head, float* rows) {
  const int group = shape.num_query_heads / shape.num_kv_heads;
  ops.finish_outputs(kv_head, rows, group);
  for (int g = 0; g < group; ++g) {
    std::byte* out = batch.output.row(token, int64_t(kv_head) * group + g);
    for (int d = 0; d < shape.head_size_v; ++d)
      store_from_f32(out, batch.output.dtype, d, rows[size_t(g) * shape.head_size_v + d]);
  }
}

// The keys of a span (keys key .. key + n - 1) that the item's token t sees: [begin, end).
struct Visible {
  int begin, end;
  bool whole(int n) const { return begin == 0 && end == n; }
};

Visible visible_slots(const AttentionShape& shape, const Item& item, int t, int64_t key, int n) {
  const int64_t position = item.position + t;
  const auto clamp = [&](int64_t k) { return static_cast<int>(std::clamp<int64_t>(k - key, 0, n)); };
  return {clamp(first_visible_key(shape, position)), clamp(position + 1)};
}

// Folds one row's visible scores s[0..n) into its online softmax; they become probabilities.
void softmax_step(const AttentionShape& shape, float* s, int n, float& max, float& sum, float* acc) {
  const float cap = shape.logits_soft_cap;
  if (cap > 0)
    for (int j = 0; j < n; ++j) s[j] = cap * std::tanh(s[j] / cap);
  const float new_max = std::max(max, shape.math.max(s, n));
  if (new_max > max) {
    const float correction = std::exp(max - new_max);  // 0 on the first tile
    sum *= correction;
    shape.math.scale(acc, shape.head_size_v, correction);
    max = new_max;
  }
  sum += shape.math.exp_shifted_sum(s, n, new_max);
}

// One span of keys (key .. key + span.keys - 1) for every row of the item.  A row's masked keys are
// left out of its softmax and of its weighted sum (never weighted by zero: a row it may not see could
// hold anything), so a token gets bit for bit what it would get alone.
// `next`: the span after this one (none: no keys), whose rows are prefetched meanwhile.
void run_span(const AttentionShape& shape, const TileOps& ops, const Item& item, const KeySpan& span, int64_t key,
              const KeySpan& next, Scratch& scratch) {
  const int group = shape.num_query_heads / shape.num_kv_heads;
  const int rows = item.tokens * group;
  const int dv = shape.head_size_v;
  const int n = span.keys;
  float* scores = scratch.scores.data();
  if (next.keys > 0) ops.prefetch(next, item.kv_head, TileOps::Rows::keys);
  ops.score(span, item.kv_head, scratch.queries.data(), rows, scores);
  if (next.keys > 0) ops.prefetch(next, item.kv_head, TileOps::Rows::values);
  std::array<Visible, kPrefillTokensPerItem> visible;
  bool whole = true;
  for (int t = 0; t < item.tokens; ++t) {
    const Visible seen = visible[size_t(t)] = visible_slots(shape, item, t, key, n);
    whole = whole && seen.whole(n);
    for (int r = t * group; r < (t + 1) * group && seen.begin < seen.end; ++r)
      softmax_step(shape, scores + size_t(r) * n + seen.begin, seen.end - seen.begin, scratch.max[size_t(r)],
                   scratch.sum[size_t(r)], scratch.acc.data() + size_t(r) * dv);
  }
  if (whole) {
    ops.accumulate(span, item.kv_head, scores, rows, scratch.acc.data());
    return;
  }
  for (int t = 0; t < item.tokens; ++t) {
    const Visible seen = visible[size_t(t)];
    const int m = seen.end - seen.begin;
    if (m <= 0) continue;
    for (int g = 0; g < group; ++g)
      std::copy_n(scores + size_t(t * group + g) * n + seen.begin, m, scratch.probs.data() + size_t(g) * m);
    ops.accumulate(span.slice(seen.begin, seen.end), item.kv_head, scratch.probs.data(), group,
                   scratch.acc.data() + size_t(t) * group * dv);
  }
}

void run_item(const kit::ForwardBatch& batch, const AttentionShape& shape, const TileOps& ops, const Item& item,
              Scratch& scratch, float* partials) {
  const int group = shape.num_query_heads / shape.num_kv_heads;
  const int rows = item.tokens * group;
  const int dk = shape.head_size_k;
  const int dv = shape.head_size_v;
  const int bs = shape.block_size;
  const int stride = ops.query_stride(dk);
  scratch.queries.assign(size_t(rows) * stride, 0.0f);
  scratch.scores.resize(size_t(rows) * kSpanKeys);
  scratch.probs.resize(size_t(group) * kSpanKeys);
  scratch.max.assign(rows, -std::numeric_limits<float>::infinity());
  scratch.sum.assign(rows, 0.0f);
  scratch.acc.assign(size_t(rows) * dv, 0.0f);

  for (int r = 0; r < rows; ++r) {
    const std::byte* row = batch.query.row(item.token + r / group, int64_t(item.kv_head) * group + r % group);
    for (int d = 0; d < dk; ++d)
      scratch.queries[size_t(r) * stride + d] = load_as_f32(row, batch.query.dtype, d) * shape.scale;
  }
  ops.prepare_queries(item.kv_head, scratch.queries.data(), rows);

  const int32_t* table = batch.block_table(item.seq);
  // Keys key .. of the item up to the next multiple of kSpanKeys, on their pages.  Spans start at
  // multiples of kSpanKeys whatever the item, so a token's softmax folds its keys in the same groups
  // alone as among a prefill's tokens (bit-identical outputs).
  const auto span_at = [&](int64_t key) {
    KeySpan span;
    for (int64_t end = std::min(item.key_end, (key / kSpanKeys + 1) * kSpanKeys); key < end;) {
      const int first_slot = static_cast<int>(key % bs);
      const int n = static_cast<int>(std::min<int64_t>(bs - first_slot, end - key));
      span.add(batch.page(table[key / bs]), first_slot, n);
      key += n;
    }
    return span;
  };
  int64_t key = item.key_begin;
  KeySpan span = span_at(key);
  while (span.keys > 0) {
    const int64_t next_key = key + span.keys;
    const KeySpan next = next_key < item.key_end ? span_at(next_key) : KeySpan{};
    run_span(shape, ops, item, span, key, next, scratch);
    key = next_key;
    span = next;
  }

  if (item.partial < 0) {
    for (int r = 0; r < rows; ++r)
      shape.math.scale(scratch.acc.data() + size_t(r) * dv, dv, 1.0f / scratch.sum[size_t(r)]);
    for (int t = 0; t < item.tokens; ++t)
      store_outputs(batch, shape, ops, item.token + t, item.kv_head, scratch.acc.data() + size_t(t) * group * dv);
    return;
  }
  // Partial state layout per item (always one token): group x [max, sum, acc[dv]].
  float* state = partials + item.partial * group * (dv + 2);
  for (int g = 0; g < group; ++g) {
    float* out = state + size_t(g) * (dv + 2);
    out[0] = scratch.max[g];
    out[1] = scratch.sum[g];
    std::copy_n(scratch.acc.data() + size_t(g) * dv, dv, out + 2);
  }
}

void run_merge(const kit::ForwardBatch& batch, const AttentionShape& shape, const TileOps& ops, const Merge& merge,
               const float* partials, std::vector<float>& rows) {
  const int group = shape.num_query_heads / shape.num_kv_heads;
  const int dv = shape.head_size_v;
  const size_t stride = size_t(group) * (dv + 2);
  rows.assign(size_t(group) * dv, 0.0f);
  for (int g = 0; g < group; ++g) {
    float global_max = -std::numeric_limits<float>::infinity();
    for (int p = 0; p < merge.parts; ++p)
      global_max = std::max(global_max, partials[(merge.partial + p) * stride + size_t(g) * (dv + 2)]);
    float total = 0.0f;
    float* out = rows.data() + size_t(g) * dv;
    for (int p = 0; p < merge.parts; ++p) {
      const float* state = partials + (merge.partial + p) * stride + size_t(g) * (dv + 2);
      const float weight = std::exp(state[0] - global_max);
      total += state[1] * weight;
      for (int d = 0; d < dv; ++d) out[d] += state[2 + d] * weight;
    }
    const float inverse = 1.0f / total;
    for (int d = 0; d < dv; ++d) out[d] *= inverse;
  }
  store_outputs(batch, shape, ops, merge.token, merge.kv_head, rows.data());
}

}  // namespace

void run_paged_attention(const kit::ForwardBatch& batch, const AttentionShape& shape, const TileOps& ops) {
  const Plan plan = make_plan(batch, shape);
  const int group = shape.num_query_heads / shape.num_kv_heads;
  std::vector<float> partials(size_t(plan.num_partials) * group * (shape.head_size_v + 2));
  // Items go to threads in fixed runs, each run reusing one scratch; every item computes the same
  // values whichever thread runs it.
  const int64_t item_count = static_cast<int64_t>(plan.items.size());
  const int64_t kItemsPerTask = std::clamp<int64_t>(item_count / (int64_t(shape.threads) * 8), 1, 8);
  kit::parallel_for((item_count + kItemsPerTask - 1) / kItemsPerTask, shape.threads, [&](int64_t task) {
    Scratch scratch;
    const int64_t end = std::min(item_count, (task + 1) * kItemsPerTask);
    for (int64_t i = task * kItemsPerTask; i < end; ++i)
      run_item(batch, shape, ops, plan.items[size_t(i)], scratch, partials.data());
  });
  kit::parallel_for(static_cast<int64_t>(plan.merges.size()), shape.threads, [&](int64_t i) {
    std::vector<float> rows;
    run_merge(batch, shape, ops, plan.merges[size_t(i)], partials.data(), rows);
  });
}

}  // namespace atb::plugin
