// Per-channel smoothing of one role (K or V) of a layer, before the rotation: a channel j of KV head h
// is stored as x_j / s_j - mu_j and the scale comes back where the role ends, the query multiplied by s_j
// (K) or the output by s_j after mu_j is added back (V), so attention is unchanged in exact arithmetic
// (QServe's SmoothAttention, applied after RoPE, where per-channel scaling commutes with everything).
// Outlier channels a few times larger than the rest would otherwise dominate the row's one scale once
// the rotation has spread them over every coordinate.
//
// Two rules pick the scales:
// - outliers (default): s_j = 2^round(strength * log2(m_j / median(m))) where the channel maximum m_j >=
//   min_ratio * median, else 1: powers of two, so the division and the multiplication are exact, and a
//   head without outliers keeps every scale at 1 (smoothing its ordinary 2-3x channels cost the
//   unstressed model perplexity).
// - balanced (K only): s_j = (r_j / median(r))^strength with r_j = sqrt(rms(k_j) / rms(q_j)), q over the
//   KV head's query heads.  The error a key row's coding adds to a score is q . e; with e spread evenly
//   by the rotation, its variance is least where the stored channels are k_j / s_j with s_j^2 ~
//   rms(k_j) / rms(q_j) (Cauchy-Schwarz), for every channel, not only outliers.  A model whose keys were
//   scaled against its queries (an outlier channel of K with a small one of Q) gets the scales that
//   undo it.  Without queries in the first write (write_kv_only) the outliers rule is used.
//
// Centering (optional) subtracts each channel's mean mu_j (in the scaled domain) before the rotation, so
// the row's one scale is spent on what varies.  For V the output gets mu_j back (the probabilities sum
// to one); for K the queries' q . mu is the same for every key of a query, so softmax ignores it (a
// logit soft cap would not: centering K is refused with one).
//
// The scales and means are estimated from the first forward that writes rows, or given at create from
// `tq calibrate`'s maxima, and frozen for the backend's life, so every row of the pool is written and
// read under the same state.  A first write of one token, or of zeros, gives a state from that token
// (zeros: scales 1, means 0): never wrong, possibly less good.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace atb::turboquant {

// Which channels are smoothed, and how far.
struct SmoothingRule {
  double strength = 0.75;  // in [0, 1]: 0 leaves every scale at 1, 1 brings outliers down to the median
  double min_ratio = 4;    // outliers rule: channels whose maximum is below min_ratio x median keep scale 1
  bool balanced = false;   // K: scales from K and Q mean squares (needs observed queries)
  bool centered = false;   // subtract the channel means before the rotation
};

class ChannelSmoothing {
 public:
  ChannelSmoothing(int kv_heads, int head_size, SmoothingRule rule);
  // Frozen at once from given maxima and (where the rule centers) means, [kv_heads][head_size]: the
  // outliers rule.
  ChannelSmoothing(int kv_heads, int head_size, SmoothingRule rule, const std::vector<float>& maxima,
                   const std::vector<float>& means = {});

  bool frozen() const { return frozen_; }

  // Widens the statistics with one row of KV head `kv_head` (before freezing).
  void observe(int kv_head, const float* row);
  // One query row of a query head of KV head `kv_head` (the balanced rule).
  void observe_query(int kv_head, const float* query);
  // Fixes the scales and means from what was observed.
  void freeze();

  // x_j = x_j / s_j - mu_j (a row about to be rotated and coded).
  void shrink(int kv_head, float* row) const;
  // x_j = (x_j + mu_j) * s_j (an output after its inverse rotation; a stored row read back).
  void restore(int kv_head, float* row) const;
  // q_j *= s_j (a query before its rotation: K's means need nothing there).
  void scale_query(int kv_head, float* query) const;

  const float* scales(int kv_head) const { return scales_.data() + offset(kv_head); }
  const float* means(int kv_head) const { return means_.data() + offset(kv_head); }
  int head_size() const { return head_size_; }

 private:
  size_t offset(int kv_head) const { return size_t(kv_head) * size_t(head_size_); }
  void outlier_scales(int kv_head);
  void balanced_scales(int kv_head);

  int kv_heads_, head_size_;
  SmoothingRule rule_;
  bool frozen_ = false;
  std::vector<int64_t> rows_seen_, queries_seen_;  // per KV head
  // Per [kv_head][channel]: the observed statistics (sums in f64), then the frozen state.
  std::vector<float> maxima_;
  std::vector<double> sums_, squares_, query_squares_;
  std::vector<float> scales_, inverses_, means_;
};

}  // namespace atb::turboquant
