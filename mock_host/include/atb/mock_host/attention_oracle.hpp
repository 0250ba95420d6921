// A plain f64 attention, shared with no plugin: the semantics every backend must match (causal,
// sliding window, soft-cap, scale, GQA).  The conformance suite's numbers check and the tests use it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace atb::mock_host {

struct OracleShape {
  int num_query_heads;
  int num_kv_heads;
  int head_size_k;
  int head_size_v;
  int sliding_window;  // 0: none
  double soft_cap;     // 0: none
  double scale;
};

// keys[p][h][d], values[p][h][d] for positions 0..len-1 of one sequence (flattened row-major);
// query[hq][d] of the token at `position`.  Returns out[hq][dv].
inline std::vector<double> oracle_attention(const OracleShape& shape, const std::vector<float>& keys,
                                            const std::vector<float>& values, const float* query, int64_t position) {
  const int group = shape.num_query_heads / shape.num_kv_heads;
  const int64_t first = shape.sliding_window > 0 ? std::max<int64_t>(0, position - shape.sliding_window + 1) : 0;
  std::vector<double> out(size_t(shape.num_query_heads) * shape.head_size_v, 0.0);
  std::vector<double> scores;
  for (int hq = 0; hq < shape.num_query_heads; ++hq) {
    const int h = hq / group;
    scores.assign(size_t(position - first + 1), 0.0);
    double max_score = -INFINITY;
    for (int64_t p = first; p <= position; ++p) {
      double dot = 0;
      for (int d = 0; d < shape.head_size_k; ++d)
        dot += double(query[size_t(hq) * shape.head_size_k + d]) *
               double(keys[(size_t(p) * shape.num_kv_heads + h) * shape.head_size_k + d]);
      double s = dot * shape.scale;
      if (shape.soft_cap > 0) s = shape.soft_cap * std::tanh(s / shape.soft_cap);
      scores[size_t(p - first)] = s;
      max_score = std::max(max_score, s);
    }
    double total = 0;
    for (auto& s : scores) total += (s = std::exp(s - max_score));
    for (int64_t p = first; p <= position; ++p) {
      const double weight = scores[size_t(p - first)] / total;
      for (int d = 0; d < shape.head_size_v; ++d)
        out[size_t(hq) * shape.head_size_v + d] +=
            weight * double(values[(size_t(p) * shape.num_kv_heads + h) * shape.head_size_v + d]);
    }
  }
  return out;
}

}  // namespace atb::mock_host
