#include "channel_smoothing.hpp"

#include <algorithm>
#include <cmath>

namespace atb::turboquant {

ChannelSmoothing::ChannelSmoothing(int kv_heads, int head_size, SmoothingRule rule)
    : kv_heads_(kv_heads),
      head_size_(head_size),
      rule_(rule),
      maxima_(size_t(kv_heads) * size_t(head_size), 0.0f),
      scales_(maxima_.size(), 1.0f),
      inverses_(maxima_.size(), 1.0f) {}

ChannelSmoothing::ChannelSmoothing(int kv_heads, int head_size, SmoothingRule rule, const std::vector<float>& maxima)
    : ChannelSmoothing(kv_heads, head_size, rule) {
  std::copy(maxima.begin(), maxima.begin() + std::min(maxima.size(), maxima_.size()), maxima_.begin());
  freeze();
}

void ChannelSmoothing::observe(int kv_head, const float* row) {
  float* maxima = maxima_.data() + size_t(kv_head) * size_t(head_size_);
  for (int j = 0; j < head_size_; ++j)
    if (std::isfinite(row[j])) maxima[j] = std::max(maxima[j], std::fabs(row[j]));
}

void ChannelSmoothing::freeze() {
  for (int h = 0; h < kv_heads_; ++h) {
    const float* maxima = maxima_.data() + size_t(h) * size_t(head_size_);
    std::vector<float> sorted(maxima, maxima + head_size_);
    std::nth_element(sorted.begin(), sorted.begin() + head_size_ / 2, sorted.end());
    const float median = sorted[size_t(head_size_ / 2)];
    for (int j = 0; j < head_size_; ++j) {
      float scale = 1.0f;
      if (median > 0 && maxima[j] > median && double(maxima[j]) >= rule_.min_ratio * double(median)) {
        const double exponent = std::round(rule_.strength * std::log2(double(maxima[j]) / double(median)));
        scale = float(std::ldexp(1.0, int(std::clamp(exponent, 0.0, 30.0))));
      }
      scales_[size_t(h) * size_t(head_size_) + size_t(j)] = scale;
      inverses_[size_t(h) * size_t(head_size_) + size_t(j)] = 1.0f / scale;
    }
  }
  frozen_ = true;
}

void ChannelSmoothing::shrink(int kv_head, float* row) const {
  const float* inverse = inverses_.data() + size_t(kv_head) * size_t(head_size_);
  for (int j = 0; j < head_size_; ++j) row[j] *= inverse[j];
}

void ChannelSmoothing::restore(int kv_head, float* row) const {
  const float* scale = scales(kv_head);
  for (int j = 0; j < head_size_; ++j) row[j] *= scale[j];
}

}  // namespace atb::turboquant
