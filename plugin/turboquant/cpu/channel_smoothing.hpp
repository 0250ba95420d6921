// Per-channel smoothing of one role (K or V) of a layer, before the rotation: a channel j of KV head h
// is stored as x_j / s_j and the scale comes back where the role ends, the query multiplied by s_j (K)
// or the output by s_j (V), so attention is unchanged in exact arithmetic (QServe's SmoothAttention,
// applied after RoPE, where per-channel scaling commutes with everything).  Outlier channels a few
// times larger than the rest would otherwise dominate the row's one scale once the rotation has spread
// them over every coordinate.
//
// The scales are estimated from the first forward that writes rows (its tokens' largest magnitude per
// channel), or given at create as maxima measured by `tq calibrate`, and frozen for the backend's life, so
// every row of the pool is written and read under the same scales.  s_j = 2^round(strength * log2(m_j /
// median(m))) where m_j >= min_ratio * median, else 1: powers of two, so the division and the
// multiplication are exact, and a head without outliers keeps every scale at 1 (smoothing its ordinary
// 2-3x channels cost the unstressed model perplexity).  A first write of one token, or of zeros, gives
// scales from that token (zeros: all 1): never wrong, possibly less good.
#pragma once

#include <cstddef>
#include <vector>

namespace atb::turboquant {

// Which channels are smoothed, and how far.
struct SmoothingRule {
  double strength = 0.75;  // in [0, 1]: 0 leaves every scale at 1, 1 brings outliers down to the median
  double min_ratio = 4;    // channels whose maximum is below min_ratio x the head's median keep scale 1
};

class ChannelSmoothing {
 public:
  ChannelSmoothing(int kv_heads, int head_size, SmoothingRule rule);
  // Frozen at once from given maxima, [kv_heads][head_size].
  ChannelSmoothing(int kv_heads, int head_size, SmoothingRule rule, const std::vector<float>& maxima);

  bool frozen() const { return frozen_; }

  // Widens the per-channel maxima with one row of KV head `kv_head` (before freezing).
  void observe(int kv_head, const float* row);
  // Fixes the scales from what was observed.
  void freeze();

  // x_j /= s_j (a row about to be rotated and coded).
  void shrink(int kv_head, float* row) const;
  // x_j *= s_j (a query before its rotation, or an output after its inverse rotation).
  void restore(int kv_head, float* row) const;

  const float* scales(int kv_head) const { return scales_.data() + size_t(kv_head) * size_t(head_size_); }
  int head_size() const { return head_size_; }

 private:
  int kv_heads_, head_size_;
  SmoothingRule rule_;
  bool frozen_ = false;
  std::vector<float> maxima_, scales_, inverses_;
};

}  // namespace atb::turboquant
