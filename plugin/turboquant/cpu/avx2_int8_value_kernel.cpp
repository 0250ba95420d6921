// Integer accumulation of V rows (kernel "avx2_int8").  Per tile of rows, head and scale block the
// weights p_j * scale_j are rounded to unsigned bytes (int8_weight_step): their sum is bounded as
// well as their largest, so the int16 sums cannot overflow whatever the tile holds.  Centroids are signed bytes (a
// vpshufb table).  Two rows' bytes are interleaved so that one vpmaddubsw adds both rows' products; the int16 sums go
// back to f32 once per tile.
#include "avx2_int8_value_kernel.hpp"

#include "centroid_grid.hpp"

#include <tq/half_rounding.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "avx2_code_bytes.hpp"
#define ATB_HAVE_AVX2_INT8 1
#endif

namespace atb::turboquant {
namespace {

constexpr int kGroup = 32;  // coordinates per decoded vector (and per scale block of q*_0 formats)

// Codebook formats with one scale per row (tq3, tq4) or per block (q3_0, q4_0: their weights are
// rounded per block, which pays once the driver's spans fill 32-row tiles; cpu/PERFORMANCE.md).
[[maybe_unused]] bool covered(const tq::Quantizer& quantizer) {
  const tq::Format& format = quantizer.format();
  const bool codebook = format.scheme == tq::Scheme::turboquant_mse || format.scheme == tq::Scheme::lloyd_max_block;
  const int bits = quantizer.layout().code_bits;
  return codebook && (bits == 3 || bits == 4) && quantizer.head_size() % kGroup == 0;
}

float block_scale(const tq::RowLayout& layout, const uint8_t* row, int coordinate) {
  return tq::load_f16(row + layout.scales_offset + 2 * size_t(coordinate / layout.block_size));
}

}  // namespace

std::vector<double> int8_accumulate_error_bound(const tq::Quantizer& quantizer, const uint8_t* const* rows, int n,
                                                const float* probs) {
  const int d = quantizer.head_size();
  const tq::RowLayout& layout = quantizer.layout();
  const double step = centroid_grid(*quantizer.codebook()).step;
  std::vector<double> bound(size_t(d), 0.0);
  std::vector<float> values(size_t(n) * size_t(d));
  for (int j = 0; j < n; ++j) quantizer.decode(rows[j], values.data() + size_t(j) * d);
  for (int j0 = 0; j0 < n; j0 += kInt8ValueTileRows) {
    const int end = std::min(n, j0 + kInt8ValueTileRows);
    for (int i = 0; i < d; ++i) {
      double total = 0, largest = 0;  // the tile's weights in this coordinate's block
      for (int j = j0; j < end; ++j) {
        const double w = double(probs[j]) * block_scale(layout, rows[j], i);
        total += w, largest = std::max(largest, std::abs(w));
      }
      const double weight_step = int8_weight_step(largest, std::abs(total));
      for (int j = j0; j < end; ++j) {
        const double scale = block_scale(layout, rows[j], i), p = std::abs(probs[j]);
        const double value = std::abs(values[size_t(j) * d + i]), centroid = scale > 0 ? value / scale : 0;
        bound[size_t(i)] +=
            0.5 * weight_step * (centroid + step / 2) + p * scale * step / 2 + 1e-5 * p * (value + scale * step);
      }
    }
  }
  return bound;
}

#if defined(ATB_HAVE_AVX2_INT8)
namespace {

constexpr int kHeadsPerRun = 4;  // int16 sums of a run stay in registers
constexpr int kMaxBlocks = tq::kMaxRotationSize / kGroup;

// The codes of group k (coordinates 32k .. 32k+31) of a row as bytes in ThreeBitGroups' lane-split
// order, so that interleaving two rows and vpmaddubsw give coordinates 0-15 and 16-31 in order.
template <int Bits>
class GroupCodes;

template <>
class GroupCodes<3> {
 public:
  explicit GroupCodes(const tq::RowLayout& layout)
      : codes_offset_(layout.codes_offset),
        last_whole_(layout.codes_offset + layout.codes_bytes + 4 <= layout.row_bytes),
        groups_(layout.head_size / kGroup) {}
  __m256i operator()(const uint8_t* row, int k) const {
    const uint8_t* group = row + codes_offset_ + 12 * size_t(k);
    if (k + 1 < groups_ || last_whole_) return three_.codes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(group)));
    return three_.codes(ThreeBitGroups::load_last(group, k > 0 || codes_offset_ >= 4));
  }

 private:
  size_t codes_offset_;
  bool last_whole_;
  int groups_;
  ThreeBitGroups three_;
};

template <>
class GroupCodes<4> {
 public:
  explicit GroupCodes(const tq::RowLayout& layout) : codes_offset_(layout.codes_offset) {}
  __m256i operator()(const uint8_t* row, int k) const {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + codes_offset_ + 16 * size_t(k)));
    const __m128i mask = _mm_set1_epi8(15);
    const __m128i low = _mm_and_si128(x, mask), high = _mm_and_si128(_mm_srli_epi16(x, 4), mask);
    const __m128i first = _mm_unpacklo_epi8(low, high), second = _mm_unpackhi_epi8(low, high);  // codes 0-15, 16-31
    return _mm256_set_m128i(_mm_unpackhi_epi64(first, second), _mm_unpacklo_epi64(first, second));
  }

 private:
  size_t codes_offset_;
};

template <int Bits>
class Int8ValueKernel final : public ValueKernel {
 public:
  explicit Int8ValueKernel(const tq::Quantizer& quantizer)
      : layout_(quantizer.layout()),
        block_scales_(quantizer.format().scheme == tq::Scheme::lloyd_max_block),
        codes_(layout_) {
    const CentroidGrid grid = centroid_grid(*quantizer.codebook());
    std::array<int8_t, 16> bytes{};
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = int8_t(grid.integers[i]);
    step_ = grid.step;
    table_ = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes.data())));
  }

  void accumulate(const uint8_t* const* rows, int n, const float* probs, int count, float* acc) const override {
    for (int j0 = 0; j0 < n; j0 += kInt8ValueTileRows)
      for (int g0 = 0; g0 < count; g0 += kHeadsPerRun) {
        const int heads = std::min(kHeadsPerRun, count - g0), tile_rows = std::min(kInt8ValueTileRows, n - j0);
        const uint8_t* const* tile = rows + j0;
        if (heads == 4)
          accumulate_tile<4>(tile, tile_rows, probs + j0, n, g0, acc);
        else if (heads == 3)
          accumulate_tile<3>(tile, tile_rows, probs + j0, n, g0, acc);
        else if (heads == 2)
          accumulate_tile<2>(tile, tile_rows, probs + j0, n, g0, acc);
        else
          accumulate_tile<1>(tile, tile_rows, probs + j0, n, g0, acc);
      }
  }

 private:
  // A tile's weights as bytes, [block][head][row] (zero past the tile's rows, so an odd last row
  // pairs with a weight of 0), and the factor that turns each (block, head)'s int16 sums into values.
  struct TileWeights {
    alignas(32) uint8_t bytes[kMaxBlocks][kHeadsPerRun][kInt8ValueTileRows];
    float factor[kMaxBlocks][kHeadsPerRun];
  };

  void quantize_weights(const uint8_t* const* rows, int n, const float* probs, int probs_stride, int g0, int heads,
                        TileWeights& weights) const {
    constexpr int kVectors = kInt8ValueTileRows / 8;
    const int blocks = block_scales_ ? layout_.blocks : 1, vectors = (n + 7) / 8;
    alignas(32) float scales[kMaxBlocks][kInt8ValueTileRows];
    for (int b = 0; b < blocks; ++b) std::fill_n(scales[b] + n, kInt8ValueTileRows - n, 0.0f);
    for (int j = 0; j < n; ++j)
      for (int b = 0; b < blocks; ++b)
        scales[b][j] = _cvtsh_ss(load_u16(rows[j] + layout_.scales_offset + 2 * size_t(b)));
    __m256i in_tile[kVectors];
    for (int v = 0; v < kVectors; ++v)
      in_tile[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8 * v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int g = 0; g < heads; ++g) {
      const float* p = probs + size_t(g0 + g) * size_t(probs_stride);
      __m256 prob[kVectors];
      for (int v = 0; v < kVectors; ++v)
        prob[v] = v < vectors ? _mm256_maskload_ps(p + 8 * v, in_tile[v]) : _mm256_setzero_ps();
      for (int b = 0; b < blocks; ++b) {
        __m256 w[kVectors], sum = _mm256_setzero_ps(), most = _mm256_setzero_ps();
        for (int v = 0; v < kVectors; ++v) {
          w[v] = _mm256_mul_ps(prob[v], _mm256_load_ps(scales[b] + 8 * v));
          sum = _mm256_add_ps(sum, w[v]);
          most = _mm256_max_ps(most, w[v]);
        }
        float lanes[8], largest_lanes[8];
        _mm256_storeu_ps(lanes, sum);
        _mm256_storeu_ps(largest_lanes, most);
        const float total =
            ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
        const float largest = *std::max_element(largest_lanes, largest_lanes + 8);
        // The kernel's grid is the bound's (int8_weight_step), in f32 and never finer than it.
        const float weight_step = total > 0 ? std::max(largest / 255.0f, total / float(kInt8WeightTotal)) : 0.0f;
        const __m256 to_bytes = _mm256_set1_ps(weight_step > 0 ? 1.0f / weight_step : 0.0f);
        __m256i bytes[kVectors];
        for (int v = 0; v < kVectors; ++v)  // NaN and negative weights (pages not ours) become 0
          bytes[v] = _mm256_cvtps_epi32(_mm256_max_ps(_mm256_mul_ps(w[v], to_bytes), _mm256_setzero_ps()));
        const __m256i packed =
            _mm256_packus_epi16(_mm256_packus_epi32(bytes[0], bytes[1]), _mm256_packus_epi32(bytes[2], bytes[3]));
        _mm256_store_si256(reinterpret_cast<__m256i*>(weights.bytes[b][g]),
                           _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        weights.factor[b][g] = weight_step * step_;
      }
    }
  }

  static uint16_t load_u16(const uint8_t* at) {
    uint16_t bits;
    std::memcpy(&bits, at, 2);
    return bits;
  }

  __m256i values(const uint8_t* row, int k) const { return _mm256_shuffle_epi8(table_, codes_(row, k)); }

  template <int GN>
  void accumulate_tile(const uint8_t* const* rows, int n, const float* probs, int probs_stride, int g0,
                       float* acc) const {
    TileWeights weights;
    quantize_weights(rows, n, probs, probs_stride, g0, GN, weights);
    const int d = layout_.head_size;
    for (int k = 0; k < d / kGroup; ++k) {
      const int b = block_scales_ ? k : 0;
      __m256i sums[GN][2];
      for (int g = 0; g < GN; ++g) sums[g][0] = sums[g][1] = _mm256_setzero_si256();
      for (int j = 0; j < n; j += 2) {
        const __m256i first = values(rows[j], k);
        const __m256i second = j + 1 < n ? values(rows[j + 1], k) : first;  // its weight is 0
        const __m256i low = _mm256_unpacklo_epi8(first, second), high = _mm256_unpackhi_epi8(first, second);
        for (int g = 0; g < GN; ++g) {
          uint16_t pair;
          std::memcpy(&pair, &weights.bytes[b][g][j], 2);
          const __m256i w = _mm256_set1_epi16(short(pair));
          sums[g][0] = _mm256_add_epi16(sums[g][0], _mm256_maddubs_epi16(w, low));
          sums[g][1] = _mm256_add_epi16(sums[g][1], _mm256_maddubs_epi16(w, high));
        }
      }
      for (int g = 0; g < GN; ++g) {
        float* out = acc + size_t(g0 + g) * size_t(d) + size_t(kGroup * k);
        const __m256 factor = _mm256_set1_ps(weights.factor[b][g]);
        for (int half = 0; half < 2; ++half) {
          const __m256i x = sums[g][half];
          const __m256 first = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(x)));
          const __m256 second = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(x, 1)));
          _mm256_storeu_ps(out + 16 * half, _mm256_fmadd_ps(factor, first, _mm256_loadu_ps(out + 16 * half)));
          _mm256_storeu_ps(out + 16 * half + 8, _mm256_fmadd_ps(factor, second, _mm256_loadu_ps(out + 16 * half + 8)));
        }
      }
    }
  }

  tq::RowLayout layout_;
  bool block_scales_;
  GroupCodes<Bits> codes_;
  float step_ = 1;
  __m256i table_;
};

}  // namespace

std::unique_ptr<ValueKernel> make_avx2_int8_value_kernel(const tq::Quantizer& quantizer) {
  if (!covered(quantizer)) return nullptr;
  if (quantizer.layout().code_bits == 3) return std::make_unique<Int8ValueKernel<3>>(quantizer);
  return std::make_unique<Int8ValueKernel<4>>(quantizer);
}

#else  // no AVX2 in this build: callers keep the other kernels

std::unique_ptr<ValueKernel> make_avx2_int8_value_kernel(const tq::Quantizer&) { return nullptr; }

#endif

}  // namespace atb::turboquant
