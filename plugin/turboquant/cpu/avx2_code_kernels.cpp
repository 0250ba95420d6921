// AVX2 kernels over encoded rows (compiled with -mavx2 -mfma -mf16c; chosen only when the CPU has
// them).  Each row is decoded 8 coordinates at a time straight from its packed codes into registers
// (shifts for the codes, a permute for codebooks of up to 16 entries, one FMA for the scale) and
// used at once by every query head of the GQA group; no decoded row is ever stored.  The scalar
// kernels are their oracle (tests/turboquant/code_kernels_test.cpp).
#include "avx2_code_kernels.hpp"

#include "avx2_horizontal.hpp"
#include "head_runs.hpp"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace atb::turboquant {
namespace {

enum class Kind { affine_unsigned, affine_signed, codebook };

inline float load_half(const uint8_t* at) {
  uint16_t bits;
  std::memcpy(&bits, at, 2);
  return _cvtsh_ss(bits);
}

// Codes 8k .. 8k+7 of a row packed LSB-first at `Bits` bits each: Bits bytes.  `may_overread` says
// the 4 (or 8) bytes from the group's start lie inside the row, so one whole-word load may be used.
template <int Bits>
inline __m256i unpack8(const uint8_t* codes, int k, bool may_overread = false) {
  const uint8_t* at = codes + size_t(Bits) * size_t(k);
  if constexpr (Bits == 8) {
    int64_t word;
    std::memcpy(&word, at, 8);
    return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(word));
  } else if constexpr (Bits <= 4) {
    // A broadcast straight from memory is a load, not two vector operations.
    __m256i all;
    if (may_overread) {
      all = _mm256_castps_si256(_mm256_broadcast_ss(reinterpret_cast<const float*>(at)));
    } else {
      uint32_t word = 0;
      std::memcpy(&word, at, Bits);
      all = _mm256_set1_epi32(int(word));
    }
    const __m256i shifts = _mm256_setr_epi32(0, Bits, 2 * Bits, 3 * Bits, 4 * Bits, 5 * Bits, 6 * Bits, 7 * Bits);
    return _mm256_and_si256(_mm256_srlv_epi32(all, shifts), _mm256_set1_epi32((1 << Bits) - 1));
  } else {
    __m256i all;
    if (may_overread) {
      all = _mm256_castpd_si256(_mm256_broadcast_sd(reinterpret_cast<const double*>(at)));
    } else {
      uint64_t word = 0;
      std::memcpy(&word, at, Bits);
      all = _mm256_set1_epi64x(int64_t(word));
    }
    const __m256i low = _mm256_srlv_epi64(all, _mm256_setr_epi64x(0, Bits, 2 * Bits, 3 * Bits));
    const __m256i high = _mm256_srlv_epi64(all, _mm256_setr_epi64x(4 * Bits, 5 * Bits, 6 * Bits, 7 * Bits));
    // Lanes (0,4,1,5,2,6,3,7) in the low dwords, then back in order.
    const __m256i mixed = _mm256_blend_epi32(low, _mm256_slli_epi64(high, 32), 0xaa);
    const __m256i ordered = _mm256_permutevar8x32_epi32(mixed, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    return _mm256_and_si256(ordered, _mm256_set1_epi32((1 << Bits) - 1));
  }
}

// Decodes coordinates 8k .. 8k+7 of a row to floats, exactly as the codec's scalar decode does.
template <Kind K, int Bits>
class Decoder {
 public:
  static constexpr Kind kind = K;
  explicit Decoder(const tq::Quantizer& quantizer) : layout_(quantizer.layout()) {
    if constexpr (K == Kind::codebook) {
      const auto& centroids = quantizer.codebook()->centroids;
      centroids_ = centroids.data();
      float table[16] = {};
      for (size_t i = 0; i < centroids.size() && i < 16; ++i) table[i] = centroids[i];
      low_ = _mm256_loadu_ps(table);
      high_ = _mm256_loadu_ps(table + 8);
    }
  }
  int head_size() const { return layout_.head_size; }
  size_t row_bytes() const { return layout_.row_bytes; }

  int blocks() const { return layout_.blocks; }
  int groups_per_block() const { return layout_.block_size / 8; }
  float block_scale(const uint8_t* row, int block) const {
    return load_half(row + layout_.scales_offset + 2 * size_t(block));
  }
  size_t scales_offset() const { return layout_.scales_offset; }
  // Whether group k's codes can be read with one whole-word load without leaving the row.
  bool may_overread(int k) const {
    return layout_.codes_offset + size_t(Bits) * size_t(k) + (Bits <= 4 ? 4 : 8) <= layout_.row_bytes;
  }
  // Centroids of group k, before the row's scale (codebook kinds only).
  __m256 centroids(const uint8_t* row, int k, bool may_overread) const {
    return lookup(unpack8<Bits>(row + layout_.codes_offset, k, may_overread));
  }

  // A block's scale and zero (zero unused for codebooks), loaded once for its groups.
  struct BlockParams {
    __m256 scale, zero;
  };
  BlockParams block_params(const uint8_t* row, int block) const {
    if constexpr (K == Kind::codebook) {
      return {_mm256_set1_ps(load_half(row + layout_.scales_offset + 2 * size_t(block))), _mm256_setzero_ps()};
    } else {
      const uint8_t* meta = row + layout_.scales_offset + 4 * size_t(block);
      return {_mm256_set1_ps(load_half(meta)), _mm256_set1_ps(load_half(meta + 2))};
    }
  }
  __m256 group_in_block(const uint8_t* row, int k, const BlockParams& params, bool may_overread) const {
    __m256i codes = unpack8<Bits>(row + layout_.codes_offset, k, may_overread);
    if constexpr (K == Kind::codebook) {
      return _mm256_mul_ps(lookup(codes), params.scale);
    } else {
      if constexpr (K == Kind::affine_signed) codes = _mm256_srai_epi32(_mm256_slli_epi32(codes, 24), 24);
      return _mm256_fmadd_ps(_mm256_cvtepi32_ps(codes), params.scale, params.zero);
    }
  }

  __m256 group(const uint8_t* row, int k) const {
    const int block = (8 * k) / layout_.block_size;
    if constexpr (K == Kind::codebook) {
      const __m256 scale = _mm256_set1_ps(load_half(row + layout_.scales_offset + 2 * size_t(block)));
      return _mm256_mul_ps(lookup(unpack8<Bits>(row + layout_.codes_offset, k)), scale);
    } else {
      const uint8_t* meta = row + layout_.scales_offset + 4 * size_t(block);
      __m256i codes = unpack8<Bits>(row + layout_.codes_offset, k);
      if constexpr (K == Kind::affine_signed) codes = _mm256_srai_epi32(_mm256_slli_epi32(codes, 24), 24);
      return _mm256_fmadd_ps(_mm256_cvtepi32_ps(codes), _mm256_set1_ps(load_half(meta)),
                             _mm256_set1_ps(load_half(meta + 2)));
    }
  }

 private:
  __m256 lookup(__m256i codes) const {
    if constexpr (Bits <= 3) {
      return _mm256_permutevar8x32_ps(low_, codes);
    } else if constexpr (Bits == 4) {
      const __m256 low = _mm256_permutevar8x32_ps(low_, codes), high = _mm256_permutevar8x32_ps(high_, codes);
      return _mm256_blendv_ps(low, high, _mm256_castsi256_ps(_mm256_slli_epi32(codes, 28)));
    } else {
      return _mm256_i32gather_ps(centroids_, codes, 4);
    }
  }

  tq::RowLayout layout_;
  const float* centroids_ = nullptr;
  __m256 low_ = _mm256_setzero_ps(), high_ = _mm256_setzero_ps();
};

// GN query heads (a template argument, so their accumulators stay in registers) against every row,
// two rows at a time so each query load serves both and twice as many FMA chains run at once.
template <class D, int GN, int Rows>
inline void score_rows(const D& decoder, const uint8_t* const* rows, int n, const float* queries, int stride,
                       float* scores) {
  const int per_block = decoder.groups_per_block();
  __m256 acc[Rows][GN];
  for (int r = 0; r < Rows; ++r)
    for (int g = 0; g < GN; ++g) acc[r][g] = _mm256_setzero_ps();
  if constexpr (D::kind == Kind::codebook) {
    // K codebook formats (TurboQuant-MSE) have one scale per row: applied once to each score.
    for (int k = 0; k < decoder.head_size() / 8; ++k) {
      const bool overread = decoder.may_overread(k);
      __m256 x[Rows];
      for (int r = 0; r < Rows; ++r) x[r] = decoder.centroids(rows[r], k, overread);
      for (int g = 0; g < GN; ++g) {
        const __m256 q = _mm256_loadu_ps(queries + size_t(g) * stride + 8 * k);
        for (int r = 0; r < Rows; ++r) acc[r][g] = _mm256_fmadd_ps(q, x[r], acc[r][g]);
      }
    }
    float sums[Rows * GN];
    horizontal_sums(reinterpret_cast<const __m256(&)[Rows * GN]>(acc), sums);
    for (int r = 0; r < Rows; ++r) {
      const float scale = decoder.block_scale(rows[r], 0);
      for (int g = 0; g < GN; ++g) scores[size_t(g) * size_t(n) + size_t(r)] = scale * sums[r * GN + g];
    }
    return;
  }
  for (int block = 0; block < decoder.blocks(); ++block) {
    typename D::BlockParams params[Rows];
    for (int r = 0; r < Rows; ++r) params[r] = decoder.block_params(rows[r], block);
    const int block_end = std::min((block + 1) * per_block, decoder.head_size() / 8);  // the last block may be short
    for (int k = block * per_block; k < block_end; ++k) {
      const bool overread = decoder.may_overread(k);
      __m256 x[Rows];
      for (int r = 0; r < Rows; ++r) x[r] = decoder.group_in_block(rows[r], k, params[r], overread);
      for (int g = 0; g < GN; ++g) {
        const __m256 q = _mm256_loadu_ps(queries + size_t(g) * stride + 8 * k);
        for (int r = 0; r < Rows; ++r) acc[r][g] = _mm256_fmadd_ps(q, x[r], acc[r][g]);
      }
    }
  }
  float sums[Rows * GN];
  horizontal_sums(reinterpret_cast<const __m256(&)[Rows * GN]>(acc), sums);
  for (int r = 0; r < Rows; ++r)
    for (int g = 0; g < GN; ++g) scores[size_t(g) * size_t(n) + size_t(r)] = sums[r * GN + g];
}

template <class D, int GN>
void score_heads(const D& decoder, const uint8_t* const* rows, int n, const float* queries, int stride, float* scores) {
  int j = 0;
  for (; j + 2 <= n; j += 2) score_rows<D, GN, 2>(decoder, rows + j, n, queries, stride, scores + j);
  if (j < n) score_rows<D, GN, 1>(decoder, rows + j, n, queries, stride, scores + j);
}

// Where the folded weights p[g][j] * scale_b(row j) lie: weights[(j * heads + g) * blocks + b], so one
// row's weights for every head and block are written together with a few vector operations.
struct WeightLayout {
  int heads, blocks;
  size_t at(int j, int g) const { return (size_t(j) * size_t(heads) + size_t(g)) * size_t(blocks); }
};

// acc[g] += sum_j p[g][j] * scale_b(row j) * centroids(row j), with the scales folded into the
// weights first; two groups of 8 coordinates at a time, so each broadcast weight serves both and the
// two groups' FMA chains interleave.  `w` points at head 0, block b of row 0.
template <class D, int GN, int Groups>
inline void accumulate_groups(const D& decoder, const uint8_t* const* rows, int n, const float* w, WeightLayout layout,
                              float* acc, int acc_stride, int k) {
  bool overread[Groups];
  __m256 sum[Groups][GN];
  for (int c = 0; c < Groups; ++c) {
    overread[c] = decoder.may_overread(k + c);
    for (int g = 0; g < GN; ++g) sum[c][g] = _mm256_loadu_ps(acc + size_t(g) * acc_stride + 8 * (k + c));
  }
  for (int j = 0; j < n; ++j) {
    const uint8_t* row = rows[j];
    __m256 x[Groups];
    for (int c = 0; c < Groups; ++c) x[c] = decoder.centroids(row, k + c, overread[c]);
    for (int g = 0; g < GN; ++g) {
      const __m256 weight = _mm256_broadcast_ss(w + layout.at(j, g));
      for (int c = 0; c < Groups; ++c) sum[c][g] = _mm256_fmadd_ps(weight, x[c], sum[c][g]);
    }
  }
  for (int c = 0; c < Groups; ++c)
    for (int g = 0; g < GN; ++g) _mm256_storeu_ps(acc + size_t(g) * acc_stride + 8 * (k + c), sum[c][g]);
}

template <class D, int GN>
void accumulate_heads(const D& decoder, const uint8_t* const* rows, int n, const float* weights, WeightLayout layout,
                      float* acc, int acc_stride) {
  const int groups = decoder.head_size() / 8, per_block = decoder.groups_per_block();
  for (int block = 0; block * per_block < groups; ++block) {
    const float* w = weights + block;
    const int end = std::min(groups, (block + 1) * per_block);
    int k = block * per_block;
    for (; k + 2 <= end; k += 2) accumulate_groups<D, GN, 2>(decoder, rows, n, w, layout, acc, acc_stride, k);
    if (k < end) accumulate_groups<D, GN, 1>(decoder, rows, n, w, layout, acc, acc_stride, k);
  }
}

template <class D>
class Avx2KeyKernel final : public KeyKernel {
 public:
  explicit Avx2KeyKernel(const tq::Quantizer& quantizer) : decoder_(quantizer) {}
  void score(const uint8_t* const* rows, int n, const float* queries, int count, int stride,
             float* scores) const override {
    for_head_runs(count, [&](auto heads, int g) {
      score_heads<D, heads()>(decoder_, rows, n, queries + size_t(g) * stride, stride, scores + size_t(g) * size_t(n));
    });
  }

 private:
  D decoder_;
};

template <class D>
class Avx2ValueKernel final : public ValueKernel {
 public:
  explicit Avx2ValueKernel(const tq::Quantizer& quantizer) : decoder_(quantizer) {}
  void accumulate(const uint8_t* const* rows, int n, const float* probs, int count, float* acc) const override {
    // Rows in chunks and heads in runs of at most 8, so the folded weights fit on the stack.
    for (int j0 = 0; j0 < n; j0 += kChunkRows)
      for (int g0 = 0; g0 < count; g0 += 8)
        accumulate_chunk(rows + j0, std::min(kChunkRows, n - j0), probs + j0, n, std::min(8, count - g0), g0, acc);
  }

 private:
  static constexpr int kChunkRows = 32;
  static constexpr int kMaxBlocks = tq::kMaxRotationSize / tq::kScaleBlock;  // blocks are 32 or the whole row

  void accumulate_chunk(const uint8_t* const* rows, int n, const float* probs, int probs_stride, int count, int g0,
                        float* acc) const {
    const int d = decoder_.head_size();
    const WeightLayout layout{count, decoder_.blocks()};
    float weights[kMaxBlocks * 8 * kChunkRows];
    for (int j = 0; j < n; ++j)
      fold_row_weights(rows[j], probs + j, probs_stride, g0, weights + layout.at(j, 0), layout);
    for_head_runs(count, [&](auto heads, int g) {
      accumulate_heads<D, heads()>(decoder_, rows, n, weights + layout.at(0, g), layout,
                                   acc + size_t(g0 + g) * size_t(d), d);
    });
  }

  // out[g * blocks + b] = probs[(g0 + g) * probs_stride] * scale of block b of `row`, for every head of
  // the run: four blocks' fp16 scales converted at once where the row has whole fours of them.
  void fold_row_weights(const uint8_t* row, const float* probs, int probs_stride, int g0, float* out,
                        WeightLayout layout) const {
    int b = 0;
    for (; b + 4 <= layout.blocks; b += 4) {
      const __m128i halves =
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + decoder_.scales_offset() + 2 * size_t(b)));
      const __m128 scales = _mm_cvtph_ps(halves);
      for (int g = 0; g < layout.heads; ++g)
        _mm_storeu_ps(out + size_t(g) * size_t(layout.blocks) + size_t(b),
                      _mm_mul_ps(_mm_set1_ps(probs[size_t(g0 + g) * size_t(probs_stride)]), scales));
    }
    for (; b < layout.blocks; ++b) {
      const float scale = decoder_.block_scale(row, b);
      for (int g = 0; g < layout.heads; ++g)
        out[size_t(g) * size_t(layout.blocks) + size_t(b)] = probs[size_t(g0 + g) * size_t(probs_stride)] * scale;
    }
  }

 public:
 private:
  D decoder_;
};

template <template <class> class Kernel, class Base, Kind K>
std::unique_ptr<Base> with_bits(const tq::Quantizer& quantizer) {
  switch (quantizer.layout().code_bits) {
    case 1:
      return std::make_unique<Kernel<Decoder<K, 1>>>(quantizer);
    case 2:
      return std::make_unique<Kernel<Decoder<K, 2>>>(quantizer);
    case 3:
      return std::make_unique<Kernel<Decoder<K, 3>>>(quantizer);
    case 4:
      return std::make_unique<Kernel<Decoder<K, 4>>>(quantizer);
    case 5:
      return std::make_unique<Kernel<Decoder<K, 5>>>(quantizer);
    case 6:
      return std::make_unique<Kernel<Decoder<K, 6>>>(quantizer);
    case 7:
      return std::make_unique<Kernel<Decoder<K, 7>>>(quantizer);
    case 8:
      return std::make_unique<Kernel<Decoder<K, 8>>>(quantizer);
    default:
      return nullptr;
  }
}

template <template <class> class Kernel, class Base>
std::unique_ptr<Base> make_kernel(const tq::Quantizer& quantizer) {
  switch (quantizer.format().scheme) {
    case tq::Scheme::affine_block:
      if (quantizer.format().signed_codes) {
        if (quantizer.layout().code_bits != 8) return nullptr;
        return std::make_unique<Kernel<Decoder<Kind::affine_signed, 8>>>(quantizer);
      }
      return with_bits<Kernel, Base, Kind::affine_unsigned>(quantizer);
    case tq::Scheme::lloyd_max_block:
    case tq::Scheme::turboquant_mse:
      return with_bits<Kernel, Base, Kind::codebook>(quantizer);
    default:
      return nullptr;  // turboquant_prod and plain formats have kernels of their own
  }
}

}  // namespace

std::unique_ptr<KeyKernel> make_avx2_key_kernel(const tq::Quantizer& quantizer) {
  // Codebook keys are TurboQuant-MSE: one scale per row, which score_rows relies on.
  if (quantizer.format().scheme == tq::Scheme::lloyd_max_block) return nullptr;
  return make_kernel<Avx2KeyKernel, KeyKernel>(quantizer);
}
std::unique_ptr<ValueKernel> make_avx2_value_kernel(const tq::Quantizer& quantizer) {
  if (quantizer.format().scheme != tq::Scheme::lloyd_max_block &&
      quantizer.format().scheme != tq::Scheme::turboquant_mse)
    return nullptr;  // V formats are codebook or plain
  return with_bits<Avx2ValueKernel, ValueKernel, Kind::codebook>(quantizer);
}

}  // namespace atb::turboquant

#else  // no AVX2 in this build: callers fall back to the scalar kernels

namespace atb::turboquant {
std::unique_ptr<KeyKernel> make_avx2_key_kernel(const tq::Quantizer&) { return nullptr; }
std::unique_ptr<ValueKernel> make_avx2_value_kernel(const tq::Quantizer&) { return nullptr; }
}  // namespace atb::turboquant

#endif
