#include "channel_smoothing.hpp"

#include <algorithm>
#include <cmath>

namespace atb::turboquant {
namespace {

template <typename T>
T median_of(const T* values, int count) {
  std::vector<T> sorted(values, values + count);
  std::nth_element(sorted.begin(), sorted.begin() + count / 2, sorted.end());
  return sorted[size_t(count / 2)];
}

}  // namespace

ChannelSmoothing::ChannelSmoothing(int kv_heads, int head_size, SmoothingRule rule)
    : kv_heads_(kv_heads),
      head_size_(head_size),
      rule_(rule),
      rows_seen_(size_t(kv_heads), 0),
      queries_seen_(size_t(kv_heads), 0),
      maxima_(size_t(kv_heads) * size_t(head_size), 0.0f),
      sums_(maxima_.size(), 0.0),
      squares_(maxima_.size(), 0.0),
      query_squares_(maxima_.size(), 0.0),
      scales_(maxima_.size(), 1.0f),
      inverses_(maxima_.size(), 1.0f),
      means_(maxima_.size(), 0.0f) {}

ChannelSmoothing::ChannelSmoothing(int kv_heads, int head_size, SmoothingRule rule, const std::vector<float>& maxima,
                                   const std::vector<float>& means)
    : ChannelSmoothing(kv_heads, head_size, SmoothingRule{rule.strength, rule.min_ratio, false, rule.centered}) {
  std::copy(maxima.begin(), maxima.begin() + std::min(maxima.size(), maxima_.size()), maxima_.begin());
  // Given means stand for the sums of one row each.
  const size_t given = std::min(means.size(), sums_.size());
  std::copy(means.begin(), means.begin() + std::ptrdiff_t(given), sums_.begin());
  if (given > 0) std::fill(rows_seen_.begin(), rows_seen_.end(), 1);
  freeze();
}

void ChannelSmoothing::observe(int kv_head, const float* row) {
  for (int j = 0; j < head_size_; ++j) {
    if (!std::isfinite(row[j])) return;  // a row with a non-finite value teaches nothing
  }
  const size_t at = offset(kv_head);
  for (int j = 0; j < head_size_; ++j) {
    maxima_[at + size_t(j)] = std::max(maxima_[at + size_t(j)], std::fabs(row[j]));
    sums_[at + size_t(j)] += double(row[j]);
    squares_[at + size_t(j)] += double(row[j]) * double(row[j]);
  }
  ++rows_seen_[size_t(kv_head)];
}

void ChannelSmoothing::observe_query(int kv_head, const float* query) {
  for (int j = 0; j < head_size_; ++j) {
    if (!std::isfinite(query[j])) return;
  }
  const size_t at = offset(kv_head);
  for (int j = 0; j < head_size_; ++j) query_squares_[at + size_t(j)] += double(query[j]) * double(query[j]);
  ++queries_seen_[size_t(kv_head)];
}

void ChannelSmoothing::outlier_scales(int kv_head) {
  const float* maxima = maxima_.data() + offset(kv_head);
  const float median = median_of(maxima, head_size_);
  float* scales = scales_.data() + offset(kv_head);
  for (int j = 0; j < head_size_; ++j) {
    scales[j] = 1.0f;
    if (median > 0 && maxima[j] > median && double(maxima[j]) >= rule_.min_ratio * double(median)) {
      const double exponent = std::round(rule_.strength * std::log2(double(maxima[j]) / double(median)));
      scales[j] = float(std::ldexp(1.0, int(std::clamp(exponent, 0.0, 30.0))));
    }
  }
}

void ChannelSmoothing::balanced_scales(int kv_head) {
  const size_t at = offset(kv_head);
  std::vector<double> ratios(size_t(head_size_), 0.0);  // sqrt(rms(k) / rms(q)); 0 where unknown
  for (int j = 0; j < head_size_; ++j) {
    const double keys = squares_[at + size_t(j)], queries = query_squares_[at + size_t(j)];
    if (keys > 0 && queries > 0) ratios[size_t(j)] = std::pow(keys / queries, 0.25);
  }
  const double median = median_of(ratios.data(), head_size_);
  float* scales = scales_.data() + at;
  for (int j = 0; j < head_size_; ++j) {
    const double ratio = ratios[size_t(j)];
    const double scale = median > 0 && ratio > 0 ? std::pow(ratio / median, rule_.strength) : 1.0;
    scales[j] = float(std::clamp(scale, 0x1p-30, 0x1p30));
  }
}

void ChannelSmoothing::freeze() {
  for (int h = 0; h < kv_heads_; ++h) {
    if (rule_.balanced && queries_seen_[size_t(h)] > 0 && rows_seen_[size_t(h)] > 0)
      balanced_scales(h);
    else
      outlier_scales(h);
    const size_t at = offset(h);
    const int64_t rows = rows_seen_[size_t(h)];
    for (int j = 0; j < head_size_; ++j) {
      inverses_[at + size_t(j)] = 1.0f / scales_[at + size_t(j)];
      // The mean of the shrunk channel, rounded as the rows it is taken from.
      means_[at + size_t(j)] =
          rule_.centered && rows > 0 ? float(sums_[at + size_t(j)] / double(rows)) * inverses_[at + size_t(j)] : 0.0f;
    }
  }
  frozen_ = true;
}

void ChannelSmoothing::shrink(int kv_head, float* row) const {
  const float* inverse = inverses_.data() + offset(kv_head);
  const float* mean = means(kv_head);
  // One rounding, as the CUDA write's fmaf: pages are the same bytes on both.
  for (int j = 0; j < head_size_; ++j) row[j] = std::fma(row[j], inverse[j], -mean[j]);
}

void ChannelSmoothing::restore(int kv_head, float* row) const {
  const float* scale = scales(kv_head);
  const float* mean = means(kv_head);
  for (int j = 0; j < head_size_; ++j) row[j] = (row[j] + mean[j]) * scale[j];
}

void ChannelSmoothing::scale_query(int kv_head, float* query) const {
  const float* scale = scales(kv_head);
  for (int j = 0; j < head_size_; ++j) query[j] *= scale[j];
}

}  // namespace atb::turboquant
