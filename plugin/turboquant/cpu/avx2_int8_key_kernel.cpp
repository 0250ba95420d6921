// Integer scoring of K rows (kernel "avx2_int8").  A prepared query holds, per 32-coordinate block,
// an fp32 scale and int8 coordinates of at most int8_query_max() in magnitude.  A row's codes become
// unsigned bytes without passing through floats (the codes themselves, signed codes offset by 128,
// or a vpshufb table of the codebook's centroids), vpmaddubsw + vpmaddwd give exact int32 sums per
// block, and the row's block scales and zeros are applied once per block in f32.
//
// Every 128 coordinates (four blocks) are one chunk: the decoder of a width unpacks a chunk into four
// vectors of 32 bytes in an order of its own, and prepare() lays the query's bytes out in the same
// order, so no code is ever moved to its coordinate.
#include "avx2_int8_key_kernel.hpp"

#include "centroid_grid.hpp"

#include <tq/half_rounding.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "avx2_code_bytes.hpp"
#include "avx2_horizontal.hpp"
#include "head_runs.hpp"
#define ATB_HAVE_AVX2_INT8 1
#endif

namespace atb::turboquant {
namespace {

constexpr int kBlock = 32;   // coordinates per query scale (and per affine key scale)
constexpr int kChunk = 128;  // coordinates per unit of work: four blocks

bool uses_table(const tq::Format& format) { return format.scheme == tq::Scheme::turboquant_mse; }

// Codebook centroids as table bytes: 64 + their integers on the centroid grid, bytes 1 .. 127 (so
// that a query byte may reach 127).
std::array<uint8_t, 16> table_bytes(const CentroidGrid& grid) {
  std::array<uint8_t, 16> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(64 + grid.integers[i]);
  return bytes;
}

}  // namespace

double int8_score_error_bound(const tq::Quantizer& quantizer, const float* query, const uint8_t* row) {
  const int d = quantizer.head_size();
  const tq::RowLayout& layout = quantizer.layout();
  float key[tq::kMaxRotationSize];
  quantizer.decode(row, key);
  const bool table = uses_table(quantizer.format());
  const double table_step =
      table ? double(tq::load_f16(row + layout.scales_offset)) * centroid_grid(*quantizer.codebook()).step : 0;
  double bound = 0;
  for (int b = 0; b * kBlock < d; ++b) {
    const int end = std::min(d, (b + 1) * kBlock);
    double largest = 0;
    for (int i = b * kBlock; i < end; ++i) largest = std::max(largest, double(std::abs(query[i])));
    const double query_half_step = largest / (2.0 * int8_query_max(layout.code_bits));
    // What the f32 block sums are made of: unsigned bytes up to 255 times the byte's scale, plus the zero.
    const double extent = table ? 127 * table_step
                                : 255 * double(tq::load_f16(row + layout.scales_offset + 4 * size_t(b))) +
                                      std::abs(double(tq::load_f16(row + layout.scales_offset + 4 * size_t(b) + 2)));
    for (int i = b * kBlock; i < end; ++i) {
      const double q = std::abs(query[i]) + query_half_step, k = std::abs(key[i]);
      bound += query_half_step * k + q * table_step / 2 + 1e-5 * q * (k + extent);
    }
  }
  return bound;
}

#if defined(ATB_HAVE_AVX2_INT8)
namespace {

enum class Values { codes, signed_codes, table };

inline __m256i add16(__m256i a, __m256i b) { return _mm256_add_epi16(a, b); }
inline __m256i add32(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
inline __m256i widen(__m256i pairs) { return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)); }

// Codes of one chunk as four vectors of 32 bytes, and where each byte's coordinate is.  `Bits` codes
// are packed LSB-first; every int32 of the block sums below covers bytes of one block only.
template <int Bits>
struct Unpack;

// 2 bits: 32 bytes; vector s holds bits 2s, 2s+1 of every byte, so byte t of vector s is coordinate 4t+s.
template <>
struct Unpack<2> {
  static constexpr std::array<int, 8> kBlockOfSum = {0, 0, 1, 1, 2, 2, 3, 3};
  static int coordinate(int vector, int byte) { return 4 * byte + vector; }
  void codes(const uint8_t* chunk, __m256i v[4], bool) const {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk)), mask = _mm256_set1_epi8(3);
    v[0] = _mm256_and_si256(x, mask);
    v[1] = _mm256_and_si256(_mm256_srli_epi16(x, 2), mask);
    v[2] = _mm256_and_si256(_mm256_srli_epi16(x, 4), mask);
    v[3] = _mm256_and_si256(_mm256_srli_epi16(x, 6), mask);
  }
};

// 3 bits: four groups of 12 bytes, one block each, bytes in ThreeBitGroups' order.
template <>
struct Unpack<3> {
  static constexpr std::array<int, 8> kBlockOfSum = {0, 1, 2, 3, 0, 1, 2, 3};
  static int coordinate(int vector, int byte) { return kBlock * vector + ThreeBitGroups::lane_split_code(byte); }
  // `last_whole` says the 16 bytes from the last group's start lie inside the row.
  void codes(const uint8_t* chunk, __m256i v[4], bool last_whole) const {
    for (int k = 0; k < 4; ++k) {
      const uint8_t* group = chunk + 12 * k;
      v[k] = groups.codes(k < 3 || last_whole ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(group))
                                              : ThreeBitGroups::load_last(group, true));
    }
  }

  ThreeBitGroups groups;
};

// 4 bits: 64 bytes; vectors: low nibbles of bytes 0-31, high nibbles of 0-31, then of 32-63.
template <>
struct Unpack<4> {
  static constexpr std::array<int, 8> kBlockOfSum = {0, 0, 2, 2, 1, 1, 3, 3};
  static int coordinate(int vector, int byte) { return 64 * (vector / 2) + 2 * byte + vector % 2; }
  void codes(const uint8_t* chunk, __m256i v[4], bool) const {
    const __m256i mask = _mm256_set1_epi8(15);
    for (int half = 0; half < 2; ++half) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk + 32 * half));
      v[2 * half] = _mm256_and_si256(x, mask);
      v[2 * half + 1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), mask);
    }
  }
};

// 8 bits: 128 bytes, vector k is block k in order.
template <>
struct Unpack<8> {
  static constexpr std::array<int, 8> kBlockOfSum = {0, 1, 2, 3, 0, 1, 2, 3};
  static int coordinate(int vector, int byte) { return kBlock * vector + byte; }
  void codes(const uint8_t* chunk, __m256i v[4], bool) const {
    for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk + 32 * k));
  }
};

// int32 sums of byte * query byte whose blocks are Unpack<Bits>::kBlockOfSum.  Products of values up
// to 15 are added as int16 before widening (4 * 15 * 127 is far from 2^15); larger ones are widened first.
template <int Bits, bool SmallValues>
inline __m256i block_sums(const __m256i v[4], const __m256i q[4]) {
  __m256i p[4];
  for (int k = 0; k < 4; ++k) p[k] = _mm256_maddubs_epi16(v[k], q[k]);
  if constexpr (Bits == 2) {
    if constexpr (SmallValues) return widen(add16(add16(p[0], p[1]), add16(p[2], p[3])));
    return add32(add32(widen(p[0]), widen(p[1])), add32(widen(p[2]), widen(p[3])));
  } else if constexpr (Bits == 4) {
    if constexpr (SmallValues) return _mm256_hadd_epi32(widen(add16(p[0], p[1])), widen(add16(p[2], p[3])));
    return _mm256_hadd_epi32(add32(widen(p[0]), widen(p[1])), add32(widen(p[2]), widen(p[3])));
  } else {
    return _mm256_hadd_epi32(_mm256_hadd_epi32(widen(p[0]), widen(p[1])), _mm256_hadd_epi32(widen(p[2]), widen(p[3])));
  }
}

inline float load_half(const uint8_t* at) {
  uint16_t bits;
  std::memcpy(&bits, at, 2);
  return _cvtsh_ss(bits);
}

// Floats a prepared query keeps after its head_size coordinates: head_size int8 bytes in the
// decoder's order, then per chunk the block scales and the zero weights, each 8 floats laid out as
// the chunk's block sums are.
struct QueryLayout {
  int head_size;
  int chunks() const { return head_size / kChunk; }
  int extra_floats() const { return head_size / 4 + 16 * chunks(); }
  static const uint8_t* bytes(const float* query, int head_size) {
    return reinterpret_cast<const uint8_t*>(query + head_size);
  }
  const float* scales(const float* query, int chunk) const { return query + head_size + head_size / 4 + 16 * chunk; }
  float* scales(float* query, int chunk) const { return query + head_size + head_size / 4 + 16 * chunk; }
};

template <int Bits, Values V>
class Int8KeyKernel final : public KeyKernel {
  using U = Unpack<Bits>;
  static constexpr bool kSmallValues = V == Values::codes && Bits <= 4;
  static constexpr int kQueryMax = int8_query_max(Bits);

 public:
  explicit Int8KeyKernel(const tq::Quantizer& quantizer) : layout_(quantizer.layout()), query_{layout_.head_size} {
    if constexpr (V == Values::table) {
      const CentroidGrid grid = centroid_grid(*quantizer.codebook());
      const std::array<uint8_t, 16> bytes = table_bytes(grid);
      table_step_ = grid.step;
      table_ = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes.data())));
    }
    int scale_index[8], zero_index[8];
    for (int e = 0; e < 8; ++e) {
      scale_index[e] = 2 * U::kBlockOfSum[size_t(e)];
      zero_index[e] = 2 * U::kBlockOfSum[size_t(e)] + 1;
    }
    scale_index_ = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scale_index));
    zero_index_ = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zero_index));
    // Byte i of a prepared query holds coordinate source_[i].
    for (int c = 0; c < query_.chunks(); ++c)
      for (int k = 0; k < 4; ++k)
        for (int t = 0; t < 32; ++t) source_.push_back(int16_t(c * kChunk + U::coordinate(k, t)));
    // The last 3-bit group may end 4 bytes short of a 16-byte load's end.
    whole_loads_ = layout_.codes_offset + layout_.codes_bytes + 4 <= layout_.row_bytes;
  }

  int extra_floats() const override { return query_.extra_floats(); }

  void prepare(float* query) const override {
    const int d = layout_.head_size;
    alignas(32) int32_t q32[tq::kMaxRotationSize];
    float scale[tq::kMaxRotationSize / kBlock], sum[tq::kMaxRotationSize / kBlock];
    const __m256 magnitude_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int b = 0; b < d / kBlock; ++b) {
      __m256 x[4], largest = _mm256_setzero_ps(), nothing = _mm256_setzero_ps();
      for (int k = 0; k < 4; ++k) {
        x[k] = _mm256_loadu_ps(query + kBlock * b + 8 * k);
        largest = _mm256_max_ps(largest, _mm256_and_ps(x[k], magnitude_mask));
        nothing = _mm256_add_ps(nothing, _mm256_mul_ps(x[k], _mm256_setzero_ps()));  // NaN for inf and NaN
      }
      float lanes[8], zeros[8];
      _mm256_storeu_ps(lanes, largest);
      _mm256_storeu_ps(zeros, nothing);
      float block_largest = 0, any_nan = 0;
      for (int e = 0; e < 8; ++e) block_largest = std::max(block_largest, lanes[e]), any_nan += zeros[e];
      // A block that is not finite scores NaN, as the f32 kernels would, instead of rounding garbage.
      const bool finite = any_nan == 0;
      const __m256 inverse = _mm256_set1_ps(finite && block_largest > 0 ? float(kQueryMax) / block_largest : 0.0f);
      __m256i total = _mm256_setzero_si256();
      for (int k = 0; k < 4; ++k) {
        const __m256i q = finite ? _mm256_cvtps_epi32(_mm256_mul_ps(x[k], inverse)) : _mm256_setzero_si256();
        _mm256_store_si256(reinterpret_cast<__m256i*>(q32 + kBlock * b + 8 * k), q);
        total = _mm256_add_epi32(total, q);
      }
      int32_t totals[8];
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(totals), total);
      scale[b] = finite ? block_largest / float(kQueryMax) : std::numeric_limits<float>::quiet_NaN();
      sum[b] = scale[b] *
               float(totals[0] + totals[1] + totals[2] + totals[3] + totals[4] + totals[5] + totals[6] + totals[7]);
    }
    int8_t ordered[tq::kMaxRotationSize];
    for (int i = 0; i < d; ++i) ordered[i] = int8_t(q32[source_[size_t(i)]]);
    std::memcpy(query + d, ordered, size_t(d));
    for (int c = 0; c < query_.chunks(); ++c) {
      float* scales = query_.scales(query, c);
      for (int e = 0; e < 8; ++e) {
        const int block = 4 * c + U::kBlockOfSum[size_t(e)];
        scales[e] = scale[block];
        scales[8 + e] = sum[block] / 2;  // each block has two of the eight sums
      }
    }
  }

  void score(const uint8_t* const* rows, int n, const float* queries, int count, int stride,
             float* scores) const override {
    for_head_runs(count, [&](auto heads, int g) {
      score_heads<heads()>(rows, n, queries + size_t(g) * stride, stride, scores + size_t(g) * size_t(n));
    });
  }

 private:
  void values(const uint8_t* row, int chunk, __m256i v[4]) const {
    const uint8_t* codes = row + layout_.codes_offset + size_t(chunk) * size_t(kChunk * Bits / 8);
    unpack_.codes(codes, v, whole_loads_ || chunk + 1 < query_.chunks());
    for (int k = 0; k < 4; ++k) {
      if constexpr (V == Values::signed_codes) v[k] = _mm256_xor_si256(v[k], _mm256_set1_epi8(char(0x80)));
      if constexpr (V == Values::table) v[k] = _mm256_shuffle_epi8(table_, v[k]);
    }
  }

  // A row's value of byte b is scale * b + zero, per block, laid out as the block sums are.
  void row_params(const uint8_t* row, int chunk, __m256& scale, __m256& zero) const {
    if constexpr (V == Values::table) {
      const float s = load_half(row + layout_.scales_offset) * table_step_;
      scale = _mm256_set1_ps(s);
      zero = _mm256_set1_ps(-64 * s);
    } else {
      const __m128i halves = _mm_loadu_si128(
          reinterpret_cast<const __m128i*>(row + layout_.scales_offset + 16 * size_t(chunk)));  // 4 x (scale, zero)
      const __m256 both = _mm256_cvtph_ps(halves);
      scale = _mm256_permutevar8x32_ps(both, scale_index_);
      zero = _mm256_permutevar8x32_ps(both, zero_index_);
      if constexpr (V == Values::signed_codes) zero = _mm256_fnmadd_ps(_mm256_set1_ps(128), scale, zero);
    }
  }

  // GN heads (a template argument, so their sums stay in registers) against every row.
  template <int GN>
  void score_heads(const uint8_t* const* rows, int n, const float* queries, int stride, float* scores) const {
    const int d = layout_.head_size;
    for (int j = 0; j < n; ++j) {
      const uint8_t* row = rows[j];
      __m256 sums[GN];
      for (auto& sum : sums) sum = _mm256_setzero_ps();
      for (int c = 0; c < query_.chunks(); ++c) {
        __m256i v[4];
        values(row, c, v);
        __m256 scale, zero;
        row_params(row, c, scale, zero);
        for (int g = 0; g < GN; ++g) {
          const float* query = queries + size_t(g) * stride;
          const uint8_t* bytes = QueryLayout::bytes(query, d) + kChunk * c;
          __m256i q[4];
          for (int k = 0; k < 4; ++k) q[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes + 32 * k));
          const __m256i blocks = block_sums<Bits, kSmallValues>(v, q);
          const float* query_scales = query_.scales(query, c);
          sums[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(blocks), _mm256_mul_ps(scale, _mm256_loadu_ps(query_scales)),
                                    _mm256_fmadd_ps(zero, _mm256_loadu_ps(query_scales + 8), sums[g]));
        }
      }
      float out[GN];
      horizontal_sums(sums, out);
      for (int g = 0; g < GN; ++g) scores[size_t(g) * size_t(n) + size_t(j)] = out[g];
    }
  }

  tq::RowLayout layout_;
  QueryLayout query_;
  U unpack_;
  float table_step_ = 1;
  __m256i table_ = _mm256_setzero_si256(), scale_index_, zero_index_;
  bool whole_loads_ = true;
  std::vector<int16_t> source_;
};

template <Values V>
std::unique_ptr<KeyKernel> with_bits(const tq::Quantizer& quantizer) {
  switch (quantizer.layout().code_bits) {
    case 2:
      return std::make_unique<Int8KeyKernel<2, V>>(quantizer);
    case 3:
      if constexpr (V == Values::table) return std::make_unique<Int8KeyKernel<3, V>>(quantizer);
      return nullptr;  // no affine K format has 3 bits
    case 4:
      return std::make_unique<Int8KeyKernel<4, V>>(quantizer);
    case 8:
      if constexpr (V != Values::table) return std::make_unique<Int8KeyKernel<8, V>>(quantizer);
      return nullptr;  // a 256-entry codebook does not fit a vpshufb table
    default:
      return nullptr;
  }
}

}  // namespace

std::unique_ptr<KeyKernel> make_avx2_int8_key_kernel(const tq::Quantizer& quantizer) {
  if (quantizer.head_size() % kChunk != 0) return nullptr;
  const tq::Format& format = quantizer.format();
  if (format.scheme == tq::Scheme::turboquant_mse) return with_bits<Values::table>(quantizer);
  if (format.scheme != tq::Scheme::affine_block) return nullptr;
  if (format.signed_codes)
    return quantizer.layout().code_bits == 8 ? with_bits<Values::signed_codes>(quantizer) : nullptr;
  return with_bits<Values::codes>(quantizer);
}

#else  // no AVX2 in this build: callers keep the other kernels

std::unique_ptr<KeyKernel> make_avx2_int8_key_kernel(const tq::Quantizer&) { return nullptr; }

#endif

}  // namespace atb::turboquant
