// Compiled with -mavx2 -mfma -mf16c; reached only when simd_enabled().
#include "simd_kernels.hpp"

#include <tq/scaled_codes.hpp>

#include <cstring>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

namespace tq::avx2 {
namespace {

// ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)), as combine_lanes.
inline float horizontal_sum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

// The 8 int32 codes of one vector, stored as bytes.
inline void store_codes(__m256i codes, uint8_t* out) {
  const __m128i packed16 = _mm_packus_epi32(_mm256_castsi256_si128(codes), _mm256_extracti128_si256(codes, 1));
  const __m128i packed8 = _mm_packus_epi16(packed16, packed16);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), packed8);
}

}  // namespace

namespace {

// The butterflies of span 1, 2 and 4 inside one vector: each output is the same a + b or a - b of
// the same operands as in the scalar loop.
inline __m256 hadamard8(__m256 v) {
  // span 1: (a, b) -> (a + b, a - b) on lane pairs.
  __m256 swapped = _mm256_permute_ps(v, 0xb1);                                     // (x1, x0, x3, x2, ...)
  __m256 sum = _mm256_add_ps(v, swapped), difference = _mm256_sub_ps(swapped, v);  // odd lanes: a - b
  v = _mm256_blend_ps(sum, difference, 0xaa);
  // span 2.
  swapped = _mm256_permute_ps(v, 0x4e);  // (x2, x3, x0, x1, ...)
  sum = _mm256_add_ps(v, swapped);
  difference = _mm256_sub_ps(swapped, v);
  v = _mm256_blend_ps(sum, difference, 0xcc);
  // span 4.
  swapped = _mm256_permute2f128_ps(v, v, 0x01);
  sum = _mm256_add_ps(v, swapped);
  difference = _mm256_sub_ps(swapped, v);
  return _mm256_blend_ps(sum, difference, 0xf0);
}

// signs, hadamard, scale of kVectors * 8 values held in registers: one load and one store per value
// instead of one per butterfly stage.
template <int kVectors>
void rotate_block_in_registers(float* x, const float* signs, float norm) {
  __m256 v[kVectors];
#pragma GCC unroll 16
  for (int i = 0; i < kVectors; ++i) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    if (signs) v[i] = _mm256_mul_ps(v[i], _mm256_loadu_ps(signs + 8 * i));
    v[i] = hadamard8(v[i]);
  }
#pragma GCC unroll 4
  for (int half = 1; half < kVectors; half *= 2)
#pragma GCC unroll 16
    for (int i = 0; i < kVectors; ++i)
      if ((i & half) == 0) {
        const __m256 a = v[i], b = v[i + half];
        v[i] = _mm256_add_ps(a, b);
        v[i + half] = _mm256_sub_ps(a, b);
      }
  const __m256 scale = _mm256_set1_ps(norm);
#pragma GCC unroll 16
  for (int i = 0; i < kVectors; ++i) _mm256_storeu_ps(x + 8 * i, _mm256_mul_ps(v[i], scale));
}

}  // namespace

bool rotate_block(float* x, const float* signs, int n, float norm) {
  switch (n) {
    case 8:
      return rotate_block_in_registers<1>(x, signs, norm), true;
    case 16:
      return rotate_block_in_registers<2>(x, signs, norm), true;
    case 32:
      return rotate_block_in_registers<4>(x, signs, norm), true;
    case 64:
      return rotate_block_in_registers<8>(x, signs, norm), true;
    case 128:
      return rotate_block_in_registers<16>(x, signs, norm), true;
    default:
      return false;
  }
}

void hadamard(float* x, int n) {
  for (int i = 0; i < n; i += 8) _mm256_storeu_ps(x + i, hadamard8(_mm256_loadu_ps(x + i)));
  for (int half = 8; half < n; half *= 2)
    for (int start = 0; start < n; start += 2 * half)
      for (int i = start; i < start + half; i += 8) {
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + half);
        _mm256_storeu_ps(x + i, _mm256_add_ps(a, b));
        _mm256_storeu_ps(x + i + half, _mm256_sub_ps(a, b));
      }
}

namespace {

// The number of a codebook's ascending boundaries that are <= v, per lane (NaN: 0).
template <int kBounds>
class BoundarySearch {
 public:
  explicit BoundarySearch(const ScalarCodebook& codebook) {
    if constexpr (kSearched) {
      middles_[0] = _mm256_set1_ps(codebook.search_levels[0][0]);  // one interval: no look-up needed
      for (int level = 1; level < kLevels; ++level) middles_[level] = _mm256_loadu_ps(codebook.search_levels[level]);
    } else
      for (int t = 0; t < kBounds; ++t) bounds_[t] = _mm256_set1_ps(codebook.boundaries[size_t(t)]);
  }

  __m256i count_at_most(__m256 v) const {
    __m256i code = _mm256_setzero_si256();
    if constexpr (kSearched) {
      // A binary search, one comparison per level: ascending boundaries make "b <= v" monotone, so
      // it counts what the comparison chain counts, in log2 steps.
#pragma GCC unroll 4
      for (int level = 0; level < kLevels; ++level) {
        const int bit = kLevels - 1 - level;
        const __m256 middle =
            level == 0 ? middles_[0] : _mm256_permutevar8x32_ps(middles_[level], _mm256_srli_epi32(code, bit + 1));
        const __m256i at_most = _mm256_castps_si256(_mm256_cmp_ps(middle, v, _CMP_LE_OQ));
        code = _mm256_or_si256(code, _mm256_and_si256(at_most, _mm256_set1_epi32(1 << bit)));
      }
    } else {
#pragma GCC unroll 15
      for (int t = 0; t < kBounds; ++t)
        code = _mm256_sub_epi32(code, _mm256_castps_si256(_mm256_cmp_ps(bounds_[t], v, _CMP_LE_OQ)));
    }
    return code;
  }

 private:
  // 15 boundaries (4-bit codes) are searched; up to 7 are as cheap or cheaper as a chain (measured).
  static constexpr bool kSearched = kBounds == 15;
  static constexpr int kLevels = 4;
  __m256 middles_[kSearched ? kLevels : 1];
  __m256 bounds_[kSearched ? 1 : kBounds];
};

// Codebooks of up to 16 codes (the formats' 1 to 4 bits): the count of boundaries <= v, and the
// centroid by one or two permutes.
template <int kBounds>
void nearest_codes_small(const float* x, int count, float inverse, const ScalarCodebook& codebook, uint8_t* codes,
                         float& cross, float& self) {
  static_assert(kBounds >= 1 && kBounds <= 15);
  const BoundarySearch<kBounds> search(codebook);
  const __m256 scale = _mm256_set1_ps(inverse);
  const __m256 low = _mm256_loadu_ps(codebook.first16), high = _mm256_loadu_ps(codebook.first16 + 8);
  __m256 cross_acc = _mm256_setzero_ps(), self_acc = _mm256_setzero_ps();
  for (int i = 0; i < count; i += 8) {
    const __m256 raw = _mm256_loadu_ps(x + i);
    const __m256 v = _mm256_mul_ps(raw, scale);
    const __m256i code = search.count_at_most(v);
    __m256 c = _mm256_permutevar8x32_ps(low, code);
    if constexpr (kBounds > 7)
      c = _mm256_blendv_ps(c, _mm256_permutevar8x32_ps(high, code), _mm256_castsi256_ps(_mm256_slli_epi32(code, 28)));
    store_codes(code, codes + i);
    cross_acc = _mm256_fmadd_ps(raw, c, cross_acc);
    self_acc = _mm256_fmadd_ps(c, c, self_acc);
  }
  cross = horizontal_sum(cross_acc);
  self = horizontal_sum(self_acc);
}

// Larger codebooks: a binary search over the ascending boundaries, same count.
void nearest_codes_searched(const float* x, int count, float inverse, const ScalarCodebook& codebook, uint8_t* codes,
                            float& cross, float& self) {
  const __m256 scale = _mm256_set1_ps(inverse);
  const int boundaries = int(codebook.boundaries.size());
  const float* bounds = codebook.boundaries.data();
  const float* centroids = codebook.centroids.data();
  __m256 cross_acc = _mm256_setzero_ps(), self_acc = _mm256_setzero_ps();
  for (int i = 0; i < count; i += 8) {
    const __m256 raw = _mm256_loadu_ps(x + i);
    const __m256 v = _mm256_mul_ps(raw, scale);
    __m256i code = _mm256_setzero_si256();
    for (int step = (boundaries + 1) / 2; step > 0; step /= 2) {
      const __m256i probe = _mm256_add_epi32(code, _mm256_set1_epi32(step - 1));
      const __m256 bound = _mm256_i32gather_ps(bounds, probe, 4);
      const __m256i take = _mm256_castps_si256(_mm256_cmp_ps(bound, v, _CMP_LE_OQ));
      code = _mm256_add_epi32(code, _mm256_and_si256(take, _mm256_set1_epi32(step)));
    }
    const __m256 c = _mm256_i32gather_ps(centroids, code, 4);
    store_codes(code, codes + i);
    cross_acc = _mm256_fmadd_ps(raw, c, cross_acc);
    self_acc = _mm256_fmadd_ps(c, c, self_acc);
  }
  cross = horizontal_sum(cross_acc);
  self = horizontal_sum(self_acc);
}

}  // namespace

void nearest_codes(const float* x, int count, float inverse, const ScalarCodebook& codebook, uint8_t* codes,
                   float& cross, float& self) {
  switch (codebook.boundaries.size()) {
    case 1:
      return nearest_codes_small<1>(x, count, inverse, codebook, codes, cross, self);
    case 3:
      return nearest_codes_small<3>(x, count, inverse, codebook, codes, cross, self);
    case 7:
      return nearest_codes_small<7>(x, count, inverse, codebook, codes, cross, self);
    case 15:
      return nearest_codes_small<15>(x, count, inverse, codebook, codes, cross, self);
    default:
      return nearest_codes_searched(x, count, inverse, codebook, codes, cross, self);
  }
}

float sum_of_squares(const float* x, int count) {
  __m256 acc = _mm256_setzero_ps();
  for (int i = 0; i < count; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  return horizontal_sum(acc);
}

void min_max(const float* x, int count, float& low, float& high) {
  __m256 lo = _mm256_loadu_ps(x), hi = lo;
  for (int i = 8; i < count; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    lo = _mm256_min_ps(lo, v);
    hi = _mm256_max_ps(hi, v);
  }
  // Minimum and maximum are exact whatever the order (NaN-free input), so a shuffle tree serves.
  __m128 l = _mm_min_ps(_mm256_castps256_ps128(lo), _mm256_extractf128_ps(lo, 1));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(hi), _mm256_extractf128_ps(hi, 1));
  l = _mm_min_ps(l, _mm_movehl_ps(l, l));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  l = _mm_min_ss(l, _mm_movehdup_ps(l));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  low = _mm_cvtss_f32(l);
  high = _mm_cvtss_f32(h);
}

int pack_codes(const uint8_t* codes, int count, int bits, uint8_t* out) {
  // Groups of 16 codes: multiply-adds merge neighbours into wider fields (code 2k + 1 shifted past
  // code 2k, then pairs of those), and the fields' bytes are gathered: the stream's layout.
  const __m128i mask = _mm_set1_epi8(char((1 << bits) - 1));
  int i = 0;
  switch (bits) {
    case 2:
      for (; i + 16 <= count; i += 16) {
        const __m128i c = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i)), mask);
        const __m128i pairs = _mm_maddubs_epi16(c, _mm_set1_epi16(0x0401));       // 4 bits each
        const __m128i quads = _mm_madd_epi16(pairs, _mm_set1_epi32(0x00100001));  // 8 bits each
        const __m128i bytes =
            _mm_shuffle_epi8(quads, _mm_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
        const int word = _mm_cvtsi128_si32(bytes);
        std::memcpy(out + i / 4, &word, 4);
      }
      return i;
    case 3:
      for (; i + 16 <= count; i += 16) {
        const __m128i c = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i)), mask);
        const __m128i pairs = _mm_maddubs_epi16(c, _mm_set1_epi16(0x0801));       // 6 bits each
        const __m128i quads = _mm_madd_epi16(pairs, _mm_set1_epi32(0x00400001));  // 12 bits each
        const __m128i eights = _mm_or_si128(quads, _mm_srli_epi64(quads, 20));    // 24 bits per 64-bit lane
        const __m128i bytes =
            _mm_shuffle_epi8(eights, _mm_setr_epi8(0, 1, 2, 8, 9, 10, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
        const uint64_t word = uint64_t(_mm_cvtsi128_si64(bytes));
        std::memcpy(out + i / 8 * 3, &word, 6);
      }
      return i;
    case 4:
      for (; i + 16 <= count; i += 16) {
        const __m128i c = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i)), mask);
        const __m128i pairs = _mm_maddubs_epi16(c, _mm_set1_epi16(0x1001));  // 8 bits each
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i / 2), _mm_packus_epi16(pairs, pairs));
      }
      return i;
    case 8:
      std::memcpy(out, codes, size_t(count));
      return count;
    default:
      return 0;
  }
}

void multiply(float* x, const float* factors, int count) {
  int i = 0;
  for (; i + 8 <= count; i += 8)
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(factors + i)));
  for (; i < count; ++i) x[i] *= factors[i];
}

void scale(float* x, int count, float factor) {
  const __m256 f = _mm256_set1_ps(factor);
  int i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), f));
  for (; i < count; ++i) x[i] *= factor;
}

namespace {

// fp16 bits of four floats, nearest-even, NaN as atb::f32_to_f16 writes it (sign | 0x7e00).
inline __m128i f16_nearest4(__m128 v) {
  const __m128i bits = _mm_cvtepu16_epi32(_mm_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m128 nan = _mm_cmpunord_ps(v, v);
  const __m128i sign = _mm_and_si128(_mm_srli_epi32(_mm_castps_si128(v), 16), _mm_set1_epi32(0x8000));
  return _mm_blendv_epi8(bits, _mm_or_si128(sign, _mm_set1_epi32(0x7e00)), _mm_castps_si128(nan));
}
inline __m128 f16_value4(__m128i bits) { return _mm_cvtph_ps(_mm_packus_epi32(bits, bits)); }

// As f16_at_least / f16_at_most / f16_nearest_finite (tq/half_rounding.hpp), four at a time.
inline __m128i f16_at_least4(__m128 v) {
  __m128i h = f16_nearest4(v);
  const __m128i negative = _mm_cmpgt_epi32(_mm_and_si128(h, _mm_set1_epi32(0x8000)), _mm_setzero_si128());
  const __m128i minus_zero = _mm_cmpeq_epi32(h, _mm_set1_epi32(0x8000));
  __m128i up = _mm_blendv_epi8(_mm_add_epi32(h, _mm_set1_epi32(1)), _mm_sub_epi32(h, _mm_set1_epi32(1)), negative);
  up = _mm_blendv_epi8(up, _mm_set1_epi32(0x0001), minus_zero);
  h = _mm_blendv_epi8(h, up, _mm_castps_si128(_mm_cmplt_ps(f16_value4(h), v)));
  const __m128 in_range = _mm_cmplt_ps(v, _mm_set1_ps(65504.0f));
  return _mm_blendv_epi8(_mm_set1_epi32(0x7bff), h, _mm_castps_si128(in_range));
}
inline __m128i f16_at_most4(__m128 v) {
  __m128i h = f16_nearest4(v);
  const __m128i negative = _mm_cmpgt_epi32(_mm_and_si128(h, _mm_set1_epi32(0x8000)), _mm_setzero_si128());
  const __m128i plus_zero = _mm_cmpeq_epi32(h, _mm_setzero_si128());
  __m128i down = _mm_blendv_epi8(_mm_sub_epi32(h, _mm_set1_epi32(1)), _mm_add_epi32(h, _mm_set1_epi32(1)), negative);
  down = _mm_blendv_epi8(down, _mm_set1_epi32(0x8001), plus_zero);
  h = _mm_blendv_epi8(h, down, _mm_castps_si128(_mm_cmpgt_ps(f16_value4(h), v)));
  const __m128 in_range = _mm_cmpgt_ps(v, _mm_set1_ps(-65504.0f));
  return _mm_blendv_epi8(_mm_set1_epi32(0xfbff), h, _mm_castps_si128(in_range));
}
inline __m128i f16_nearest_finite4(__m128 v) {
  __m128i h = f16_nearest4(v);
  h = _mm_blendv_epi8(h, _mm_set1_epi32(0x7bff), _mm_castps_si128(_mm_cmpge_ps(v, _mm_set1_ps(65504.0f))));
  return _mm_blendv_epi8(h, _mm_set1_epi32(0xfbff), _mm_castps_si128(_mm_cmple_ps(v, _mm_set1_ps(-65504.0f))));
}

}  // namespace

void affine_fields4(const float* lows, const float* highs, int top, bool is_signed, uint16_t* scale_bits,
                    uint16_t* zero_bits) {
  const __m128 low = _mm_add_ps(_mm_loadu_ps(lows), _mm_setzero_ps());  // -0 becomes +0
  const __m128 high = _mm_add_ps(_mm_loadu_ps(highs), _mm_setzero_ps());
  const __m128 steps = _mm_set1_ps(float(top));
  __m128i zero, scale;
  if (is_signed) {
    zero = f16_nearest_finite4(_mm_mul_ps(_mm_set1_ps(0.5f), _mm_add_ps(low, high)));
    const __m128 zero_value = f16_value4(zero);
    const __m128 above = _mm_sub_ps(high, zero_value), below = _mm_sub_ps(zero_value, low);
    scale = f16_at_least4(_mm_div_ps(_mm_blendv_ps(above, below, _mm_cmplt_ps(above, below)), steps));
  } else {
    zero = f16_at_most4(low);
    scale = f16_at_least4(_mm_div_ps(_mm_sub_ps(high, f16_value4(zero)), steps));
  }
  _mm_storel_epi64(reinterpret_cast<__m128i*>(scale_bits), _mm_packus_epi32(scale, scale));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(zero_bits), _mm_packus_epi32(zero, zero));
}

void affine_codes(const float* x, int count, float zero, float inverse, float low, float high, uint8_t* codes) {
  const __m256 z = _mm256_set1_ps(zero), s = _mm256_set1_ps(inverse), lo = _mm256_set1_ps(low),
               hi = _mm256_set1_ps(high);
  for (int i = 0; i < count; i += 8) {
    const __m256 q = _mm256_round_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), z), s),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i code = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(q, lo), hi));
    // Two's complement bytes for signed codes: keep the low byte of each lane.
    const __m256i low_bytes = _mm256_and_si256(code, _mm256_set1_epi32(0xff));
    store_codes(low_bytes, codes + i);
  }
}

}  // namespace tq::avx2

#else  // a build without AVX2: simd_enabled() is false there, so these are never reached

#include <cstdlib>

namespace tq::avx2 {
void hadamard(float*, int) { std::abort(); }
bool rotate_block(float*, const float*, int, float) { std::abort(); }
void nearest_codes(const float*, int, float, const ScalarCodebook&, uint8_t*, float&, float&) { std::abort(); }
float sum_of_squares(const float*, int) { std::abort(); }
void min_max(const float*, int, float&, float&) { std::abort(); }
void multiply(float*, const float*, int) { std::abort(); }
void scale(float*, int, float) { std::abort(); }
void affine_codes(const float*, int, float, float, float, float, uint8_t*) { std::abort(); }
int pack_codes(const uint8_t*, int, int, uint8_t*) { std::abort(); }
void affine_fields4(const float*, const float*, int, bool, uint16_t*, uint16_t*) { std::abort(); }
}  // namespace tq::avx2

#endif
