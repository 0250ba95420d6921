// The tensor-core decode kernel: head sizes 64, 128 and 256, 8 query heads of one KV head a block,
// affine or 2- to 4-bit codebook K rows, 2- to 5- or 8-bit codebook V rows; each head size and
// format pair is an instance whose row layout is known at compile time (mma_attention_d*.cu).
// Per 16-row tile a warp computes S = K Q^T and O^T += V^T P^T with mma.sync m16n8k16 (fp16
// operands, fp32 accumulation).  Why it is laid out as it is (operand splits for f32 layers, pair
// tables, fragment slots) is in ../README.md.
#pragma once

#include <atb/plugin/cuda/attention_common.cuh>
#include <atb/plugin/cuda/attention_launch.hpp>
#include <atb/plugin/cuda/attention_params.hpp>
#include <atb/plugin/cuda/fixed_tile_stream.cuh>
#include <atb/plugin/cuda/tensor_core.cuh>
#include <atb/plugin/cuda/tile_pipeline.cuh>

#include <tq/byte_accounting.hpp>
#include <tq/format_table.hpp>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <array>
#include <utility>

#include "mma_attention.hpp"
#include "turboquant_rows.cuh"

namespace atb::turboquant::cuda {
namespace mma_detail {

using namespace plugin::cuda;  // the shared kernels' pieces
using TensorCoreKernel = OwnDecodeKernel<TurboQuantRows>;

constexpr int kHeads = 8;             // query heads a block serves: MMA columns
constexpr float kRescaleLog2 = 8.0f;  // the running max is raised when a tile passes it by more
// The V table of 2- to 4-bit codes has an entry per pair of codes (split_half of both values: the
// two A registers of a token's k-slot pair) and holds each entry once per bank pair (entry e of
// copy c at (16e + c) x 8 bytes), and lane L reads copy L % 16: a warp's 8-byte lookups then take
// the two shared-memory wavefronts that 256 bytes need, whatever the codes (one copy took ~3.5).
// 4-bit codes' 256 entries are held 8 times (at (8e + c) x 8 bytes: 16 KB, where 16 copies would
// cost a block per multiprocessor): lanes L, L + 8, L + 16 and L + 24 then share a bank pair where
// their entries' parities agree.  5- and 8-bit codes have an entry per code (split_half of its
// value, 4 bytes), 32 copies of 32 entries or 16 of 256 (16 KB; lanes 16 apart then share a bank
// where their entries' parities agree).
template <int V_BITS>
struct ValueTable {
  static_assert((V_BITS >= 2 && V_BITS <= 5) || V_BITS == 8, "V tables for 2- to 5- and 8-bit codes");
  static constexpr bool kPairs = V_BITS <= 4;
  static constexpr int kEntries = 1 << (kPairs ? 2 * V_BITS : V_BITS);
  static constexpr uint32_t kEntryBytes = kPairs ? 8 : 4;
  static constexpr int kCopies = V_BITS == 4 || V_BITS == 8 ? 64 / kEntryBytes : 128 / kEntryBytes;
  static constexpr int kEntryShift = V_BITS == 4 || V_BITS == 8 ? 6 : 7;  // log2 of an entry's bytes over its copies
  static constexpr uint32_t kEntryMask = uint32_t(kEntries - 1) << kEntryShift;
  static constexpr size_t kBytes = size_t(kEntries) << kEntryShift;
  // Bits of a lane's field before its first code: pair tables read from kEntryShift bits before, so
  // that pair 0's entry needs no shift (a 4-code field of 5 or 8 bits has no room for them).
  static constexpr int kFieldLead = kPairs ? kEntryShift : 0;
  static_assert(kEntryBytes * kCopies == 1u << kEntryShift, "entries are a power of two bytes apart");
};
// Codebook K rows of 2 or 3 bits (whose codes do not sit in nibbles, as KeyPlanes needs) take a
// shared table per pair of adjacent codes: entry (code 2j + 1) << BITS | code 2j is the two values'
// fp16 high parts as one MMA register (f32 layers: and their remainders as a second), held once per
// bank (4-byte entries 32 times, 8-byte ones 16 times; 128 bytes an entry), so that a warp's
// lookups take the fewest wavefronts whatever the codes.
template <int K_BITS, bool SPLIT>
struct KeyPairs {
  static constexpr int kEntries = 1 << (2 * K_BITS);
  static constexpr uint32_t kEntryBytes = SPLIT ? 8 : 4;
  static constexpr int kCopies = 128 / kEntryBytes;
  static constexpr int kEntryShift = 7;
  static constexpr uint32_t kEntryMask = uint32_t(kEntries - 1) << kEntryShift;
  static constexpr size_t kBytes = size_t(kEntries) * 128;
};
// Codebook K values come from registers, not shared memory: byte p of split_half(value) of the
// codebook's first 8 entries is an 8-byte "plane" in 2 registers, and byte permutes look up 4 codes
// of a plane at a time (see KeyPlanes; entry 15 - e is entry e negated).  Shared tables of K values
// (per code, per byte pair, a 16-copy pair table) left the kernel bound by shared-memory wavefronts
// or bank conflicts (tests/cuda/PERFORMANCE.md, "Figures moved out of the kernels").

// One instance's format pair, read from tq's table (K and V: indices into tq::kKeyFormats and
// tq::kValueFormats) at head size D, and what the kernel keeps in shared memory.
template <int D, int K, int V>
struct PairLayout {
  static_assert(D == 64 || D == 128 || D == 256, "head sizes of 2, 4 or 8 blocks of 32 coordinates");
  static constexpr int kBlocks = D / 32;  // 32-coordinate blocks of a row
  static constexpr tq::RowLayout kKeyLayout = tq::row_layout(tq::kKeyFormats[K], D);
  static constexpr tq::RowLayout kValueLayout = tq::row_layout(tq::kValueFormats[V], D);
  static constexpr int kKeyKind = row_kind(tq::kKeyFormats[K]);
  static constexpr int kKeyBits = kKeyLayout.code_bits, kKeyBlock = kKeyLayout.block_size;
  static constexpr int kValueBits = kValueLayout.code_bits, kValueBlock = kValueLayout.block_size;
  static_assert(row_kind(tq::kValueFormats[V]) == kCodebook, "V rows of codebook codes");
  static_assert(kKeyKind == kCodebook || kKeyKind == kAffineUnsigned || kKeyKind == kAffineSigned,
                "K rows of codebook or affine codes");
  static constexpr bool kAffineKeys = kKeyKind != kCodebook;
  static constexpr bool kKeyPairTable = !kAffineKeys && kKeyBits < 4;  // else KeyPlanes (4 bits) or affine codes
  // KeyPairs::kBytes, spelled out (the kernel asserts they agree): naming KeyPairs<kKeyBits, ...> here
  // for affine rows would make a table type nothing uses, whose members nvcc warns of (an error here).
  static constexpr size_t kKeyPairBytes = kKeyPairTable ? (size_t(1) << (2 * kKeyBits)) * 128 : 0;
  static constexpr uint32_t kKeyCodes = uint32_t(kKeyLayout.codes_bytes);
  static constexpr uint32_t kKeyRow = uint32_t(kKeyLayout.row_bytes);
  static constexpr uint32_t kValueCodes = uint32_t(kValueLayout.codes_bytes);
  static constexpr uint32_t kValueRow = uint32_t(kValueLayout.row_bytes);
  static_assert(kKeyLayout.codes_offset == 0 && kKeyLayout.scales_offset == kKeyCodes &&
                    kValueLayout.codes_offset == 0 && kValueLayout.scales_offset == kValueCodes,
                "rows hold their codes from byte 0 and their scale fields right after");
  static constexpr size_t kFixedBytes = sizeof(float) * kHeads * D                          // queries
                                        + ValueTable<kValueBits>::kBytes                    // V table
                                        + kKeyPairBytes                                     // K pairs
                                        + sizeof(float) * kTileWarps * kTileRows * kHeads;  // weights
  static constexpr uint32_t kStageBytes = FixedTileStream<kKeyRow, kValueRow, 2>::kStageBytes;
  static constexpr size_t kStagesBytes(int stages) { return kFixedBytes + size_t(stages) * kTileWarps * kStageBytes; }
  // Four tiles in flight where four blocks still fit a multiprocessor, else three where two blocks
  // do, else two (head size 256's longest rows).
  static constexpr int kStages = kStagesBytes(4) <= 56 * 1024 ? 4 : kStagesBytes(3) <= kStageBudget + 8192 ? 3 : 2;
  static constexpr size_t kTileBytes = size_t(kStages) * kTileWarps * kStageBytes;
  static constexpr size_t kStateBytes = sizeof(float) * kTileWarps * kHeads * (D + 2);
  static constexpr size_t kSharedBytes = kFixedBytes + (kTileBytes > kStateBytes ? kTileBytes : kStateBytes);
  static_assert(!kAffineKeys || kKeyBlock == 32, "affine rows have 32-coordinate blocks");
  static_assert(kValueRow % 2 == 0 && kKeyRow % 2 == 0, "scale fields are fp16 words");
  static_assert(kSharedBytes <= 2 * (kStageBudget + 8192), "two stages of any row fit the 227 KB a block may have");
};

// The thread's lane and warp, read once: the compiler recomputes threadIdx.x % 32 and / 32
// wherever they are used (on every tile) rather than keep them in registers.
__device__ inline int lane_index() {
  int lane;
  asm volatile("mov.u32 %0, %%laneid;" : "=r"(lane));
  return lane & 31;  // tells the compiler its range
}
__device__ inline int warp_index() {
  static_assert((kTileThreads & (kTileThreads - 1)) == 0, "the mask below keeps the thread index");
  int thread;
  asm volatile("mov.u32 %0, %%tid.x;" : "=r"(thread));
  return (thread & (kTileThreads - 1)) / 32;
}

// (a & b) | c in one instruction (the compiler splits it where two operands are immediates).
__device__ inline uint32_t and_or(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

// A lane's place in a tile: a word index from the 16-byte aligned tile start (it may be -1: the
// bits before are never used) and a right shift.
struct LaneSpot {
  int word;
  uint32_t shift;
};
__device__ inline LaneSpot spot_of_bit(int bit) { return {bit >> 5, uint32_t(bit) & 31u}; }

// NW words from `spot` + `extra` words, shifted into place (ALIGNED: the shift is known to be 0).
template <int NW, bool ALIGNED>
__device__ inline void read_words(const uint32_t* tile, LaneSpot spot, int extra, uint32_t (&out)[NW]) {
  const uint32_t* at = tile + spot.word + extra;
  if constexpr (ALIGNED && NW == 2) {
    const uint2 pair = *reinterpret_cast<const uint2*>(at);  // 8-byte aligned where this is used
    out[0] = pair.x, out[1] = pair.y;
  } else if constexpr (ALIGNED) {
#pragma unroll
    for (int j = 0; j < NW; ++j) out[j] = at[j];
  } else {
    uint32_t raw[NW + 1];
#pragma unroll
    for (int j = 0; j <= NW; ++j) raw[j] = at[j];
#pragma unroll
    for (int j = 0; j < NW; ++j) out[j] = __funnelshift_r(raw[j], raw[j + 1], spot.shift);
  }
}

// The fp16 at an even bit offset (multiple of 16) of a tile, as a float.
__device__ inline float half_at_bit(const uint32_t* tile, int bit) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(tile[bit >> 5] >> (bit & 31))));
}

// The 8-byte entry of a pair table at a byte offset.
__device__ inline uint2 entry_at(const uint2* table, uint32_t byte_offset) {
  return *reinterpret_cast<const uint2*>(reinterpret_cast<const uint8_t*>(table) + byte_offset);
}

// The first of the 8 K coordinates that lane t contracts in block b (k-steps 2b, 2b + 1): affine rows
// keep the 32-coordinate blocks of their scales, 32b + 8t; codebook rows (one scale) take D/4 t + 8b,
// which puts the 4 lanes of a row D / 32 words apart (4-bit codes): rows 66 bytes long (D = 128)
// then read without bank conflicts.
template <int KIND, int D>
__device__ constexpr int lane_key_coordinate(int b, int t) {
  return KIND == kCodebook ? D / 4 * t + 8 * b : 32 * b + 8 * t;
}

// Which of a lane's 8 K coordinates (lane_key_coordinate + i) fills half e of register r of k-step 2b + h: the
// order in which the codes come out of the packed word cheapest.  Affine 4-bit: (w >> 4s) &
// 0x000F000F holds codes s and s + 4; affine 8-bit: (w >> 8s) & 0x00FF00FF holds codes s and s + 2
// of each word; codebook 4-bit: byte 2h + r holds codes 2(2h + r) and 2(2h + r) + 1.
template <int KIND, int BITS>
__device__ constexpr int slot_coordinate(int h, int r, int e) {
  if constexpr (KIND != kCodebook && BITS == 4) return 2 * h + r + 4 * e;
  if constexpr (KIND != kCodebook && BITS == 8) return 4 * h + r + 2 * e;
  return 4 * h + 2 * r + e;
}

// prmt.b32 in its generic mode: byte i of the result is byte (selector nibble i, bits 0-2) of {b, a},
// bytes 0-3 from a; where the nibble's bit 3 is set, that byte's top bit is copied into all 8 bits.
__device__ inline uint32_t permute(uint32_t a, uint32_t b, uint32_t selector) {
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(selector));
  return d;
}

// The 16-entry K codebook in registers for an antisymmetric table (entry 15 - e = -entry e, as the
// Lloyd-Max codebooks of a symmetric distribution; the host checks it, see antisymmetric): the
// split_half(value) byte planes of entries 0-7, byte p of entry e at byte e % 4 of plane[p][e / 4]
// (PLANES 2: high parts only; 4: high parts and remainders).  Code c reads entry c, or 15 - c with
// the sign bits of both fp16 parts flipped (split_half(-x) is split_half(x) so flipped, exactly):
// one byte permute per plane and 4 codes, where the whole table took three.
template <int PLANES>
struct KeyPlanes {
  uint32_t plane[PLANES][2];

  __device__ explicit KeyPlanes(const float* table) {
#pragma unroll
    for (int p = 0; p < PLANES; ++p) plane[p][0] = plane[p][1] = 0;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const uint32_t value = split_half(table[e]);
#pragma unroll
      for (int p = 0; p < PLANES; ++p) plane[p][e / 4] |= ((value >> (8 * p)) & 0xFFu) << (8 * (e % 4));
    }
  }

  // Byte p of the entries of 4 codes whose mirrored indices (c < 8 ? c : 15 - c) are the nibbles
  // of `mirrored`.
  __device__ uint32_t bytes(int p, uint32_t mirrored) const { return permute(plane[p][0], plane[p][1], mirrored); }
};

// x ^ (y & z) in one instruction.
__device__ inline uint32_t xor_and(uint32_t x, uint32_t y, uint32_t z) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0x78;" : "=r"(d) : "r"(x), "r"(y), "r"(z));
  return d;
}

// The A-operand pairs of one K row's lane coordinates in one block, [h][register], from its
// packed code words: exact affine codes (high parts only) or codebook values (high and low).
// BIASED: affine codes are left as 1024 + code (+ 128 for signed codes: kKeyCodeBias), which
// saves a subtraction per register; the caller's bias MMA then takes bias x scale x sum(Q) away.
template <int KIND, int BITS, bool BIASED, int PLANES>
__device__ inline void key_pairs_of(const uint32_t (&words)[(BITS + 3) / 4], const KeyPlanes<PLANES>& planes,
                                    uint32_t (&high)[2][2], uint32_t (&low)[2][2]) {
  if constexpr (KIND == kCodebook) {
    static_assert(BITS == 4, "codebook K rows: 4-bit codes");
    const uint32_t w = words[0];
    const uint32_t upper = (w >> 3) & 0x11111111u;               // bit 3 of each code, at its nibble's bit 0
    const uint32_t mirrored = (w ^ (upper * 7u)) & 0x77777777u;  // c < 8 ? c : 15 - c, per nibble
    const uint32_t shifted = w << 4;  // even codes' bit 3 at their byte's top bit (odd codes': there in w)
#pragma unroll
    for (int h = 0; h < 2; ++h) {  // codes 4h .. 4h + 3
      // 0xFF in byte i where code 4h + i has bit 3 set (prmt's sign-replicating selectors: nibble | 8).
      const uint32_t negative = permute(shifted, w, h == 0 ? 0xD9C8u : 0xFBEAu);
      const uint32_t codes_mirrored = h == 0 ? mirrored : mirrored >> 16;
      uint32_t bytes[PLANES];
#pragma unroll
      for (int p = 0; p < PLANES; ++p) {
        bytes[p] = planes.bytes(p, codes_mirrored);
        if (p % 2 == 1) bytes[p] = xor_and(bytes[p], negative, 0x80808080u);  // an fp16 part's sign byte
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {  // codes 4h + 2r, 4h + 2r + 1: slot_coordinate(h, r, 0 and 1)
        const uint32_t interleave = r == 0 ? 0x5140u : 0x7362u;
        high[h][r] = permute(bytes[0], bytes[1], interleave);
        if constexpr (PLANES == 4) low[h][r] = permute(bytes[2], bytes[3], interleave);
      }
    }
  } else {
    constexpr bool kSigned = KIND == kAffineSigned;
    const unsigned short offset = kSigned ? 0x6480 : 0x6400;  // 1024 + 128 or 1024: the codes sit in the mantissa
    const __half2 bias(__ushort_as_half(offset), __ushort_as_half(offset));
    const uint32_t exponent = 0x64006400u;
    auto finish = [&](uint32_t biased) {
      if constexpr (BIASED) return biased;
      const __half2 value = __hsub2(*reinterpret_cast<const __half2*>(&biased), bias);
      return *reinterpret_cast<const uint32_t*>(&value);
    };
    if constexpr (BITS == 4) {
      const uint32_t mask = 0x000F000Fu;
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int r = 0; r < 2; ++r) high[h][r] = finish(and_or(words[0] >> (4 * (2 * h + r)), mask, exponent));
    } else if constexpr (BITS == 8) {
      const uint32_t mask = 0x00FF00FFu;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint32_t word = kSigned ? words[h] ^ 0x80808080u : words[h];
#pragma unroll
        for (int r = 0; r < 2; ++r) high[h][r] = finish(and_or(word >> (8 * r), mask, exponent));
      }
    } else {
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const uint32_t first = code_in<BITS>(words, slot_coordinate<KIND, BITS>(h, r, 0));
          const uint32_t second = code_in<BITS>(words, slot_coordinate<KIND, BITS>(h, r, 1));
          high[h][r] = finish(first | (second << 16) | exponent);
        }
    }
  }
}

// A lane's code bits of one K row (lane_key_coordinate(0, t) on) from bit kEntryShift of word 0:
// enough words for its D / 4 codes.
template <int K_BITS, int D>
constexpr int kKeyRunWords = (D / 4 * K_BITS + 7 + 31) / 32;

// The A-operand pairs of one K row's lane coordinates in block b, [h][register], looked up in the
// pair table (KeyPairs) from the lane's code bits `run`: register (h, r) is codes 4h + 2r and
// 4h + 2r + 1 (slot_coordinate), whose entry sits at bits 2 x BITS x (2h + r) of the block's field.
template <int K_BITS, int D, bool SPLIT>
__device__ inline void key_pairs_from_table(const uint32_t (&run)[kKeyRunWords<K_BITS, D>], int b, const uint8_t* table,
                                            uint32_t lane_bytes, uint32_t (&high)[2][2], uint32_t (&low)[2][2]) {
  using Pairs = KeyPairs<K_BITS, SPLIT>;
  constexpr int kFieldBit = 8 * K_BITS;  // a block's 8 codes
  const int bit = kFieldBit * b, word = bit / 32, shift = bit % 32;
  const uint32_t field = shift == 0 ? run[word] : __funnelshift_r(run[word], run[word + 1], shift);
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int pair = 2 * h + r;
      const uint32_t at = and_or(pair == 0 ? field : field >> (2 * K_BITS * pair), Pairs::kEntryMask, lane_bytes);
      if constexpr (SPLIT) {
        const uint2 entry = *reinterpret_cast<const uint2*>(table + at);
        high[h][r] = entry.x, low[h][r] = entry.y;
      } else {
        high[h][r] = *reinterpret_cast<const uint32_t*>(table + at);
      }
    }
}

// x moved left by n bits (right where n < 0).
__device__ inline uint32_t shifted_by(uint32_t x, int n) { return n >= 0 ? x << n : x >> -n; }

// The A-operand registers of one V token at the lane's two coordinates of an m-tile: `field` holds
// the token's V_BITS-bit codes of the block with the lane's code 0 at bit kFieldLead (an entry's
// copies take 2^kEntryShift bytes); the registers are split_half of codes 2h and 2h + 1: one pair
// entry (code 2h + 1) << V_BITS | code 2h, or two single entries.  `lane_bytes` is where the lane's
// copy starts in an entry's copies.
template <int V_BITS>
__device__ inline uint2 value_registers(const uint8_t* table, uint32_t lane_bytes, uint32_t field, int h) {
  using Table = ValueTable<V_BITS>;
  constexpr int kLeft = Table::kEntryShift - Table::kFieldLead;  // from a code's bit 0 to the entry's place
  if constexpr (Table::kPairs) {
    return entry_at(reinterpret_cast<const uint2*>(table),
                    and_or(shifted_by(field, kLeft - 2 * V_BITS * h), Table::kEntryMask, lane_bytes));
  } else {
    const uint32_t first = and_or(shifted_by(field, kLeft - 2 * V_BITS * h), Table::kEntryMask, lane_bytes);
    const uint32_t second = and_or(shifted_by(field, kLeft - V_BITS * (2 * h + 1)), Table::kEntryMask, lane_bytes);
    return make_uint2(*reinterpret_cast<const uint32_t*>(table + first),
                      *reinterpret_cast<const uint32_t*>(table + second));
  }
}

// Whether a V block scale of the tile reaches 256 (or is not finite), read by the lanes together.
// At the weights' usual slack (up to 2^8, kRescaleLog2) weight x scale then may pass fp16's 65504:
// such a tile raises the running max to its own, which keeps its weights <= 1 and the products finite
// (a scale is an fp16 value itself).
template <uint32_t V_ROW, uint32_t V_CODES, int SCALES>
__device__ inline bool has_large_value_scale(const uint8_t* value_rows, int lane) {
  constexpr unsigned kLarge = 0x5c00u;  // 256.0 in fp16
  bool large = false;
#pragma unroll
  for (int j = lane; j < kTileRows * SCALES; j += 32) {
    const unsigned bits =
        *reinterpret_cast<const unsigned short*>(value_rows + (j / SCALES) * V_ROW + V_CODES + 2 * (j % SCALES));
    large |= (bits & 0x7fffu) >= kLarge;
  }
  return large;
}

// The lane's V tokens t + token_row(i): the tokens of its k-slots 2t, 2t + 1 (i even) and
// 2t + 8, 2t + 9 (i odd) of k-steps i / 2.
__device__ constexpr int token_row(int i) { return 4 * i; }

// One warp's share of a block: the query operands it keeps in registers, its places in a tile, and
// its softmax state (running max m, sum l and O^T per head); attend() takes one tile of 16 rows.
template <int D, int K, int V, bool SPLIT>
class TensorCoreDecode {
 public:
  using Layout = PairLayout<D, K, V>;
  static constexpr int kBlocks = Layout::kBlocks;
  static constexpr int kOffsetSteps = (kBlocks + 3) / 4;  // affine K: MMAs of the zero terms, 4 blocks each
  static constexpr int kKeyKind = Layout::kKeyKind, kKeyBits = Layout::kKeyBits, kKeyBlock = Layout::kKeyBlock;
  static constexpr int kValueBits = Layout::kValueBits, kValueBlock = Layout::kValueBlock;
  using Values = ValueTable<kValueBits>;
  using KeyTable = KeyPairs<Layout::kKeyPairTable ? kKeyBits : 3, SPLIT>;  // used by pair-table K rows only
  static_assert(!Layout::kKeyPairTable || KeyTable::kBytes == Layout::kKeyPairBytes, "the K pair table's shared bytes");
  using Stream = FixedTileStream<Layout::kKeyRow, Layout::kValueRow, Layout::kStages>;

  // The block's shared memory, in the order of PairLayout::kSharedBytes, at fixed offsets from the
  // dynamic shared base: the lanes' addresses then fold into the instructions' offsets (pointers
  // carried in the object were recomputed from the thread index on every tile).
  struct SharedMemory {
    static constexpr size_t kValueTable = size_t(kHeads) * D * sizeof(float);
    static constexpr size_t kKeyTable = kValueTable + Values::kBytes;
    static constexpr size_t kWeights = kKeyTable + Layout::kKeyPairBytes;
    static constexpr size_t kTiles = kWeights + size_t(kTileWarps) * kTileRows * kHeads * sizeof(float);
    __device__ static uint8_t* at(size_t offset) {
      extern __shared__ __align__(16) uint8_t dynamic_shared[];
      return dynamic_shared + offset;
    }
    __device__ static float* queries() { return reinterpret_cast<float*>(at(0)); }         // [kHeads][D]
    __device__ static uint8_t* value_table() { return at(kValueTable); }                   // ValueTable
    __device__ static uint8_t* key_table() { return at(kKeyTable); }                       // KeyPairs
    __device__ static float* weights() { return reinterpret_cast<float*>(at(kWeights)); }  // [warp][16][kHeads]
    __device__ static uint8_t* tiles() { return at(kTiles); }  // the tile stream's stages, then the warps' states
  };

  // Block-wide: the V table and the K pair table from the codecs' codebooks.
  __device__ static void fill_tables(const TurboQuantRows::Codecs& codecs) {
    for (int i = threadIdx.x; i < Values::kEntries * Values::kCopies; i += kTileThreads) {
      const int entry = i / Values::kCopies;
      const float* table = codecs.value.table;
      if constexpr (Values::kPairs)
        reinterpret_cast<uint2*>(SharedMemory::value_table())[i] =
            make_uint2(split_half(table[entry & ((1 << kValueBits) - 1)]), split_half(table[entry >> kValueBits]));
      else
        reinterpret_cast<uint32_t*>(SharedMemory::value_table())[i] = split_half(table[entry]);
    }
    if constexpr (Layout::kKeyPairTable) {
      for (int i = threadIdx.x; i < KeyTable::kEntries * KeyTable::kCopies; i += kTileThreads) {
        const int entry = i / KeyTable::kCopies;
        const float* table = codecs.key.table;
        const uint32_t first = split_half(table[entry & ((1 << kKeyBits) - 1)]),
                       second = split_half(table[entry >> kKeyBits]);
        if constexpr (SPLIT)
          reinterpret_cast<uint2*>(SharedMemory::key_table())[i] =
              make_uint2(highs(first, second), lows(first, second));
        else
          reinterpret_cast<uint32_t*>(SharedMemory::key_table())[i] = highs(first, second);
      }
    }
  }

  // After the queries are in shared memory (scaled, rotated as the K rows are).
  __device__ TensorCoreDecode(const AttentionParams& p, const RowCodec& key)
      : lane_(lane_index()),
        g_(lane_ / 4),
        t_(lane_ % 4),
        row_weight_(warp_index() * kTileRows * kHeads + g_ * kHeads + 2 * t_),
        head_weight_(warp_index() * kTileRows * kHeads + t_ * kHeads + g_),
        key_planes_(key.table),
        soft_cap_(p.soft_cap * kLog2e) {
    load_query_operands(SharedMemory::queries());
    place_lane();
#pragma unroll
    for (int b = 0; b < kBlocks; ++b)
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int e = 0; e < 4; ++e) o_[b][h][e] = 0.0f;
  }

  // One tile of 16 rows at positions tile * 16 ..; rows outside [w.low, w.high) weigh nothing.
  __device__ void attend(const BlockWork& w, int tile, const uint8_t* key_rows, uint8_t* value_rows) {
    // Read first, so that its latency hides behind the scores; in the first and last tiles of a
    // split it is read again once rows outside the context are zeroed.
    bool large_scales =
        has_large_value_scale<Layout::kValueRow, Layout::kValueCodes, D / kValueBlock>(value_rows, lane_);
    float s[2][2];  // S = K Q^T: rows = tokens g (r = 0) and g + 8 (r = 1), columns = heads 2t + e
    scores(reinterpret_cast<const uint32_t*>(key_rows), s);
    if (tile * kTileRows < w.low || tile * kTileRows + kTileRows > w.high)
      large_scales = mask_outside_context(w, tile, value_rows, s);
    weigh(s, large_scales);
    accumulate_values(reinterpret_cast<const uint32_t*>(value_rows));
  }

  // The warp's state of heads 2t + e into `states` ([warp][head][m, l, D outputs]).
  __device__ void store_state(float* states) {
#pragma unroll
    for (int e = 0; e < 2; ++e)
#pragma unroll
      for (int offset = 4; offset < 32; offset *= 2) l_[e] += __shfl_xor_sync(0xffffffffu, l_[e], offset);
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float* state = states + ((threadIdx.x / 32) * kHeads + 2 * t_ + e) * (D + 2);
      if (g_ == 0) state[0] = m_[e] * kLn2, state[1] = l_[e];
#pragma unroll
      for (int b = 0; b < kBlocks; ++b)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          state[2 + 32 * b + 4 * g_ + 2 * h] = o_[b][h][e];
          state[2 + 32 * b + 4 * g_ + 2 * h + 1] = o_[b][h][2 + e];
        }
    }
  }

 private:
  static constexpr bool kAffineKeys = Layout::kAffineKeys;
  static constexpr uint32_t kKeyRow = Layout::kKeyRow, kValueRow = Layout::kValueRow;
  static constexpr int kKeyBlocksPerScale = kKeyBlock / 32, kValueBlocksPerScale = kValueBlock / 32;
  static constexpr int kScoreChains = kKeyBlocksPerScale > 1 ? 2 : 1;
  static constexpr int kValueScales = D / kValueBlock;
  // 16-bit mode: affine K codes enter the MMA biased (1024 + code, fp16-exact).  The bias cancels in
  // fp32 against the bias MMA's bias x scale x sum(Q): roundings of terms ~2^10 times the codes' (2^-24
  // each), i.e. ~2^-14 relative to a block's score, below the fp16 queries' own 2^-11.  (A function:
  // nvcc reports a static member that pair-table instances never read.)
  static __device__ constexpr bool biased_keys() { return kAffineKeys && !SPLIT; }

  // Q^T as the B operand (column g = head g), in log2 units: k-step s = 2b + h holds the lane's
  // coordinates slot_coordinate(h, 0, .) (b0) and slot_coordinate(h, 1, .) (b1) of block b.
  // Affine K: S = sum_b scale_b (Q . codes_b) + zero_b sum_b(Q) (- bias x scale_b sum_b(Q) for biased
  // codes).  The zero and bias terms of 4 blocks are one MMA each over k-slots (zero_t, zero_t)
  // and (scale_t, scale_t) of lane t against sum_t(Q) / 32 split into high and remainder (fp16-exact
  // operands, fp32 products; / 32 keeps the split inside fp16 range whatever the queries); head
  // size 256 takes two such steps (blocks t and t + 4), 64 one whose lanes 2 and 3 hold zeros.
  __device__ void load_query_operands(const float* queries) {
    float own_sum[kOffsetSteps] = {};  // head g's sums over blocks t, t + 4 (affine K: the zeros' and biases' factor)
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      float sum = 0.0f;
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const float* x = queries + g_ * D + lane_key_coordinate<kKeyKind, D>(b, t_);
          const float x0 = x[slot_coordinate<kKeyKind, kKeyBits>(h, r, 0)] * kLog2e;
          const float x1 = x[slot_coordinate<kKeyKind, kKeyBits>(h, r, 1)] * kLog2e;
          if constexpr (SPLIT) {
            split_pair(x0, x1, q_high_[2 * b + h][r], q_low_[2 * b + h][r]);
            sum += x0 + x1;
          } else {  // the sum of the fp16 queries the MMAs use: the bias cancels against it exactly
            q_high_[2 * b + h][r] = half_pair(x0, x1);
            const float2 rounded = __half22float2(*reinterpret_cast<const __half2*>(&q_high_[2 * b + h][r]));
            sum += rounded.x + rounded.y;
          }
        }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);  // head g's block sum on every lane of quad g
      if (b % 4 == t_) own_sum[b / 4] = sum;
    }
#pragma unroll
    for (int j = 0; j < kOffsetSteps; ++j) sum_pair_[j] = split_half(own_sum[j] * (1.0f / 32.0f));
  }

  // The lane's fixed places in a tile.  K: its code words of block 0 of row g (row g + 8 is
  // 2 * kKeyRow words on, block b is kKeyBlockWords words on) and its row's scale fields.  V: the codes
  // 32b + 4g .. + 3 of token row t (row t + token_row(i) is token_row(i) * kValueRow / 4 words on,
  // block b kValueBits words on) and its scale fields.
  // Pair-table K rows: from kEntryShift bits before the lane's codes (the bits below are masked off).
  // Token t's V codes 32b + 4g .. at bit kFieldLead (the bits below, from the bytes before, are masked off).
  __device__ void place_lane() {
    value_lane_bytes_ = Values::kEntryBytes * (lane_ % Values::kCopies);
    key_lane_bytes_ = KeyTable::kEntryBytes * (lane_ % KeyTable::kCopies);
    key_spot_ = spot_of_bit(8 * int(g_ * kKeyRow) + lane_key_coordinate<kKeyKind, D>(0, t_) * kKeyBits -
                            (Layout::kKeyPairTable ? KeyTable::kEntryShift : 0));
    key_scale_bit_ = 8 * int(g_ * kKeyRow + Layout::kKeyCodes);
    value_spot_ = spot_of_bit(8 * int(t_ * kValueRow) + 4 * kValueBits * g_ - Values::kFieldLead);
    value_scale_bit_ = 8 * int(t_ * kValueRow + Layout::kValueCodes);
  }

  // Affine K rows: s <- each row's zero and bias terms of all blocks (two MMAs per 4 blocks); fields
  // <- the (scale, zero) words of each block of rows g, g + 8, read together where aligned.
  __device__ void affine_offsets(const uint32_t* key_words, float (&s)[2][2], uint32_t (&fields)[2][kBlocks]) {
    float offsets[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    float biases[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int j = 0; j < kOffsetSteps; ++j) {
      uint32_t zeros[2], scales[2];  // block t + 4j's (zero, zero) and (scale, scale) of rows g, g + 8
      const bool has_block = kBlocks % 4 == 0 || 4 * j + t_ < kBlocks;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int first = key_scale_bit_ / 32 + r * int(2 * kKeyRow);
        // fields[r][4j + t], read on its own: a lane-dependent index into registers goes to local memory.
        const uint32_t own = has_block ? key_words[first + 4 * j + t_] : 0u;
        zeros[r] = __byte_perm(own, 0, 0x3232);
        scales[r] = __byte_perm(own, 0, 0x1010);
      }
      mma(offsets, zeros[0], zeros[1], scales[0], scales[1], sum_pair_[j], 0u);
      if constexpr (biased_keys()) mma(biases, zeros[0], zeros[1], scales[0], scales[1], 0u, sum_pair_[j]);
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int first = key_scale_bit_ / 32 + r * int(2 * kKeyRow);
      if constexpr (kKeyRow % 16 == 0 && Layout::kKeyCodes % 16 == 0 && kBlocks % 4 == 0) {
#pragma unroll
        for (int q = 0; q < kBlocks / 4; ++q) {
          const uint4 four = *reinterpret_cast<const uint4*>(key_words + first + 4 * q);
          fields[r][4 * q] = four.x, fields[r][4 * q + 1] = four.y, fields[r][4 * q + 2] = four.z,
                        fields[r][4 * q + 3] = four.w;
        }
      } else {
#pragma unroll
        for (int b = 0; b < kBlocks; ++b) fields[r][b] = key_words[first + b];
      }
    }
    constexpr float kKeyCodeBias = kKeyKind == kAffineSigned ? 1152.0f : 1024.0f;
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int e = 0; e < 2; ++e) s[r][e] = fmaf(-32.0f * kKeyCodeBias, biases[2 * r + e], 32.0f * offsets[2 * r + e]);
  }

  // The A operands of rows g (r = 0) and g + 8 (r = 1) in block b: [r][h][register].
  __device__ void key_operands(const uint32_t* key_words, const uint32_t (&runs)[2][kKeyRunWords<kKeyBits, D>], int b,
                               uint32_t (&high)[2][2][2], uint32_t (&low)[2][2][2]) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      if constexpr (Layout::kKeyPairTable) {
        key_pairs_from_table<kKeyBits, D, SPLIT>(runs[r], b, SharedMemory::key_table(), key_lane_bytes_, high[r],
                                                 low[r]);
      } else {
        constexpr int kKeyWords = (kKeyBits + 3) / 4;  // a lane's code words of one block of a K row
        constexpr bool kKeyAligned = kKeyRow % 4 == 0 && kKeyBits % 4 == 0;
        constexpr int kKeyBlockWords =
            (lane_key_coordinate<kKeyKind, D>(1, 0) - lane_key_coordinate<kKeyKind, D>(0, 0)) * kKeyBits / 32;
        uint32_t words[kKeyWords];
        read_words<kKeyWords, kKeyAligned>(key_words, key_spot_, r * int(2 * kKeyRow) + b * kKeyBlockWords, words);
        key_pairs_of<kKeyKind, kKeyBits, biased_keys()>(words, key_planes_, high[r], low[r]);
      }
    }
  }

  // S = K Q^T in log2 units, soft-capped.
  __device__ void scores(const uint32_t* key_words, float (&s)[2][2]) {
    s[0][0] = s[0][1] = s[1][0] = s[1][1] = 0.0f;
    // Blocks that share one K scale (codebook rows: all four) accumulate into kScoreChains
    // independent accumulators, so that their MMAs do not wait on one another.
    float c[kScoreChains][4];
    uint32_t runs[2][kKeyRunWords<kKeyBits, D>];  // pair-table K: rows g, g + 8's code bits
    if constexpr (Layout::kKeyPairTable)
#pragma unroll
      for (int r = 0; r < 2; ++r)
        read_words<kKeyRunWords<kKeyBits, D>, false>(key_words, key_spot_, r * int(2 * kKeyRow), runs[r]);
    uint32_t fields[2][kBlocks];  // affine rows: (scale, zero) of each block
    if constexpr (kAffineKeys) affine_offsets(key_words, s, fields);
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      if (b % kKeyBlocksPerScale == 0)
#pragma unroll
        for (int chain = 0; chain < kScoreChains; ++chain)
#pragma unroll
          for (int e = 0; e < 4; ++e) c[chain][e] = 0.0f;
      uint32_t high[2][2][2], low[2][2][2];  // [token r][h][register]
      key_operands(key_words, runs, b, high, low);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int step = 2 * b + h;
        float(&chain)[4] = c[step % kScoreChains];
        mma(chain, high[0][h][0], high[1][h][0], high[0][h][1], high[1][h][1], q_high_[step][0], q_high_[step][1]);
        if constexpr (SPLIT)
          mma(chain, high[0][h][0], high[1][h][0], high[0][h][1], high[1][h][1], q_low_[step][0], q_low_[step][1]);
        if constexpr (SPLIT && !kAffineKeys)
          mma(chain, low[0][h][0], low[1][h][0], low[0][h][1], low[1][h][1], q_high_[step][0], q_high_[step][1]);
      }
      if ((b + 1) % kKeyBlocksPerScale == 0) {
        const int scale_block = 32 * b / kKeyBlock;
#pragma unroll
        for (int chain = 1; chain < kScoreChains; ++chain)
#pragma unroll
          for (int e = 0; e < 4; ++e) c[0][e] += c[chain][e];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          float scale;
          if constexpr (kAffineKeys)
            scale = __low2float(*reinterpret_cast<const __half2*>(&fields[r][scale_block]));
          else
            scale = half_at_bit(key_words, key_scale_bit_ + r * int(64 * kKeyRow) + 16 * scale_block);
#pragma unroll
          for (int e = 0; e < 2; ++e) s[r][e] = fmaf(scale, c[0][2 * r + e], s[r][e]);
        }
      }
    }
    if (soft_cap_ > 0)
#pragma unroll
      for (int r = 0; r < 2; ++r)
#pragma unroll
        for (int e = 0; e < 2; ++e) s[r][e] = soft_cap_ * tanhf(s[r][e] / soft_cap_);
  }

  // Rows outside the context (in a split's first and last tiles only) may hold any bits (a pool
  // need not be zeroed): their scores become -inf (weight 0), and their V scales are zeroed so
  // that weight x scale is 0 (0 x inf would be NaN) without a test per token and block later, and
  // so that they do not raise the running max (outputs must not depend on them).  Returns whether a
  // remaining V scale is large (has_large_value_scale).
  __device__ bool mask_outside_context(const BlockWork& w, int tile, uint8_t* value_rows, float (&s)[2][2]) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int position = tile * kTileRows + g_ + 8 * r;
      if (position < w.low || position >= w.high) s[r][0] = s[r][1] = -INFINITY;
    }
    const int position = tile * kTileRows + lane_;
    if (lane_ < kTileRows && (position < w.low || position >= w.high)) {
      auto* scales = reinterpret_cast<unsigned short*>(value_rows + lane_ * kValueRow + Layout::kValueCodes);
#pragma unroll
      for (int j = 0; j < kValueScales; ++j) scales[j] = 0;
    }
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // before the stage's next bulk copy
    __syncwarp();
    return has_large_value_scale<kValueRow, Layout::kValueCodes, kValueScales>(value_rows, lane_);
  }

  // The running max raised where the tile needs it, and the tile's weights exp2(s - m) into the
  // warp's weights (P transposed) and the sums l.
  __device__ void weigh(float (&s)[2][2], bool large_scales) {
    float tile_max[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) tile_max[e] = fmaxf(s[0][e], s[1][e]);
    // The lanes' maxima are gathered only where one may raise the running max: m[e] is the same in
    // every lane of a head, so "some lane's max passes m + 2^8" is "the head's does".
    if (__any_sync(0xffffffffu,
                   large_scales || tile_max[0] > m_[0] + kRescaleLog2 || tile_max[1] > m_[1] + kRescaleLog2)) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
#pragma unroll
        for (int offset = 4; offset < 32; offset *= 2)
          tile_max[e] = fmaxf(tile_max[e], __shfl_xor_sync(0xffffffffu, tile_max[e], offset));
        const float raised = fmaxf(m_[e], tile_max[e]);
        const float correction = fast_exp2(m_[e] - raised);
        l_[e] *= correction;
#pragma unroll
        for (int b = 0; b < kBlocks; ++b)
#pragma unroll
          for (int h = 0; h < 2; ++h) o_[b][h][e] *= correction, o_[b][h][2 + e] *= correction;
        m_[e] = raised;
      }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float weight = fast_exp2(s[r][e] - m_[e]);  // 0 for rows outside the context
        l_[e] += weight;
        SharedMemory::weights()[row_weight_ + 8 * r * kHeads + e] = weight;
      }
    __syncwarp();
  }

  // Token i's scale of V block vb in half scale_half(vb) of the returned word (the other half any
  // bits); word-aligned rows read a token's scale fields at once into `words` (at vb == 0).
  __device__ uint32_t value_scale_word(const uint32_t* value_words, int i, int vb,
                                       uint32_t (&words)[4][(kValueScales + 1) / 2]) {
    if constexpr (kValueRow % 4 == 0) {
      if (vb == 0) {
        const uint32_t* at = value_words + value_scale_bit_ / 32 + token_row(i) * int(kValueRow) / 4;
        if constexpr (kValueScales == 4 && kValueRow % 8 == 0 && Layout::kValueCodes % 8 == 0) {
          const uint2 both = *reinterpret_cast<const uint2*>(at);
          words[i][0] = both.x, words[i][1] = both.y;
        } else {
#pragma unroll
          for (int j = 0; j < (kValueScales + 1) / 2; ++j) words[i][j] = at[j];
        }
      }
      return words[i][vb / 2];
    } else {
      const int bit = value_scale_bit_ + token_row(i) * int(8 * kValueRow) + 16 * vb;
      return value_words[bit >> 5] >> (bit & 31);
    }
  }
  static __device__ constexpr int scale_half(int vb) { return kValueRow % 4 == 0 ? vb % 2 : 0; }

  // O^T += V^T P^T per m-tile (b, h) of rows g, g + 8 = coordinates 32b + 4g + 2h (+ 1): the
  // hi/lo parts of one value fill a k-slot pair, so k-step k covers tokens t + 8k (slots 2t, 2t + 1)
  // and t + 4 + 8k (slots 2t + 8, 2t + 9); B holds the weight of head g for that token (times V's
  // block scale) in both slots of the pair, high parts and then remainders.
  __device__ void accumulate_values(const uint32_t* value_words) {
    float head_weight[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) head_weight[i] = SharedMemory::weights()[head_weight_ + token_row(i) * kHeads];
    uint32_t b_high[4], b_low[4];  // per token i: (p, p) as half2, high parts and remainders (SPLIT)
    uint32_t scale_words[4][(kValueScales + 1) / 2];
    uint32_t weight_pairs[4];  // 16-bit mode: the token's weight as (p, p) in fp16
    if constexpr (!SPLIT) {
#pragma unroll
      for (int i = 0; i < 4; ++i) weight_pairs[i] = half_pair(head_weight[i], head_weight[i]);
    }
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      if (b % kValueBlocksPerScale == 0) {
        const int vb = 32 * b / kValueBlock;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const uint32_t word = value_scale_word(value_words, i, vb, scale_words);
          if constexpr (SPLIT) {
            const float scale =
                __half2float(__ushort_as_half(static_cast<unsigned short>(word >> (16 * scale_half(vb)))));
            const float weight = head_weight[i] * scale;
            const float remainder = weight - __half2float(__float2half_rn(weight));
            b_high[i] = half_pair(weight, weight);
            b_low[i] = half_pair(remainder, remainder);
          } else {
            b_high[i] = half_pair_times_half(weight_pairs[i], word, scale_half(vb));
          }
        }
      }
      uint32_t fields[4];  // the lane's tokens' codes 32b + 4g .. + 3
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        uint32_t field[1];
        read_words<1, false>(value_words, value_spot_, token_row(i) * int(kValueRow) / 4 + kValueBits * b, field);
        fields[i] = field[0];
      }
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          const uint2 first = value_registers<kValueBits>(SharedMemory::value_table(), value_lane_bytes_, fields[2 * k],
                                                          h);  // token t + 8k
          const uint2 second = value_registers<kValueBits>(SharedMemory::value_table(), value_lane_bytes_,
                                                           fields[2 * k + 1], h);  // token t + 4 + 8k
          mma(o_[b][h], first.x, first.y, second.x, second.y, b_high[2 * k], b_high[2 * k + 1]);
          if constexpr (SPLIT) mma(o_[b][h], first.x, first.y, second.x, second.y, b_low[2 * k], b_low[2 * k + 1]);
        }
    }
  }

  const int lane_, g_, t_;
  const int row_weight_;                       // index of the lane's row g, head 2t in the warp's weights
  const int head_weight_;                      // index of the lane's token t, head g in the warp's weights
  const KeyPlanes<SPLIT ? 4 : 2> key_planes_;  // 4-bit codebook K (unused by other rows)
  const float soft_cap_;                       // the cap of scores in log2 units
  uint32_t q_high_[2 * kBlocks][2], q_low_[2 * kBlocks][2];
  uint32_t sum_pair_[kOffsetSteps];  // lane t: head g's sums over blocks t + 4j / 32, split (zero where no block)
  uint32_t value_lane_bytes_, key_lane_bytes_;  // where the lane's copy starts in a table entry's copies
  LaneSpot key_spot_, value_spot_;
  int key_scale_bit_, value_scale_bit_;
  float m_[2] = {-1e30f, -1e30f}, l_[2] = {0.0f, 0.0f};  // heads 2t, 2t + 1; a finite start keeps s - m finite
  // O^T accumulators of m-tile (b, h): rows g, g + 8 = coordinates 32b + 4g + 2h (+ 1); columns = heads 2t, 2t + 1.
  float o_[kBlocks][2][4];
};

// Head size 256 keeps 64 O^T accumulators and 32 query registers a lane: two blocks a
// multiprocessor leave it the registers; the others fit four.
template <int D, int K, int V, bool SPLIT>
__global__ void __launch_bounds__(kTileThreads, D <= 128 ? 4 : 2)
    mma_attention_kernel(const AttentionParams p, const __grid_constant__ TurboQuantRows::Codecs codecs, int splits) {
  using Decode = TensorCoreDecode<D, K, V, SPLIT>;
  using Shared = typename Decode::SharedMemory;
  // 16-bit queries are loaded first thing (QueryBits); f32 layers' instances have no registers to
  // spare for them through the set-up (ptxas spills), and prefetch them into L1 instead.
  const QueryBits<D, SPLIT ? 0 : kHeads, kTileThreads> query_bits(p, block_heads<kHeads>(p));
  const BlockWork w = block_work<kHeads>(p);
  if (decode_block_done<D>(p, w, splits)) return;
  if constexpr (SPLIT) prefetch_queries<D>(p, w);
  __shared__ uint64_t tile_barriers[kTileWarps * Decode::Layout::kStages];
  typename Decode::Stream stream(p, w, splits, Shared::tiles(), tile_barriers);
  bool poisoned = w.poisoned;
  stream.start(threadIdx.x % 32, poisoned);  // the first tiles' copies overlap the set-up below
  Decode::fill_tables(codecs);
  if constexpr (SPLIT)
    load_queries<TurboQuantRows, D, kHeads>(p, codecs.key, w, Shared::queries());
  else
    query_bits.template store<TurboQuantRows>(p, codecs.key, w, Shared::queries());

  Decode decode(p, codecs.key);
  stream.for_each_tile(poisoned, [&](int tile, const uint8_t* key_rows, uint8_t* value_rows) {
    decode.attend(w, tile, key_rows, value_rows);
  });
  wait_for_previous_kernel();             // this kernel completes after the write kernel, whatever its tiles
  poisoned = __syncthreads_or(poisoned);  // every warp is done with its tiles: the states may reuse them
  float* states = reinterpret_cast<float*>(Shared::tiles());
  decode.store_state(states);
  __syncthreads();
  finish_block<TurboQuantRows, D, kHeads, kTileWarps>(p, codecs.value, w, splits, states, Shared::queries(), poisoned);
}

// The instance for one format pair and precision, with its shared memory.
template <int D, int K, int V>
TensorCoreKernel instance(bool split) {
  return {split ? &mma_attention_kernel<D, K, V, true> : &mma_attention_kernel<D, K, V, false>,
          PairLayout<D, K, V>::kSharedBytes, kHeads, kTileThreads};
}

// The format pairs with an instance, by their names in tq's table (an alias, int4 for q4_0, takes
// the instance of the format it stores like).  tq5 .. tq8 V rows (one scale) take the CUDA-core
// kernel: fewer instances to build.
constexpr std::array<int, 8> kInstanceKeys = {
    tq::format_index(tq::Role::key, "q4_0"), tq::format_index(tq::Role::key, "uint8"),
    tq::format_index(tq::Role::key, "q8_0"), tq::format_index(tq::Role::key, "q5_0"),
    tq::format_index(tq::Role::key, "int2"), tq::format_index(tq::Role::key, "tq4"),
    tq::format_index(tq::Role::key, "tq3"),  tq::format_index(tq::Role::key, "tq2")};
constexpr std::array<int, 8> kInstanceValues = {
    tq::format_index(tq::Role::value, "q2_0"), tq::format_index(tq::Role::value, "q3_0"),
    tq::format_index(tq::Role::value, "q4_0"), tq::format_index(tq::Role::value, "q5_0"),
    tq::format_index(tq::Role::value, "q8_0"), tq::format_index(tq::Role::value, "tq2"),
    tq::format_index(tq::Role::value, "tq3"),  tq::format_index(tq::Role::value, "tq4")};

template <int D, size_t KEY, size_t... VALUES>
TensorCoreKernel instance_for_value(const tq::Format& value, bool split, std::index_sequence<VALUES...>) {
  TensorCoreKernel found{};
  ((found.kernel == nullptr && value.stores_like(tq::kValueFormats[kInstanceValues[VALUES]])
        ? (found = instance<D, kInstanceKeys[KEY], kInstanceValues[VALUES]>(split), 0)
        : 0),
   ...);
  return found;
}

template <int D, size_t... KEYS>
TensorCoreKernel instance_for(const tq::Format& key, const tq::Format& value, bool split,
                              std::index_sequence<KEYS...>) {
  TensorCoreKernel found{};
  ((found.kernel == nullptr && key.stores_like(tq::kKeyFormats[kInstanceKeys[KEYS]])
        ? (found = instance_for_value<D, KEYS>(value, split, std::make_index_sequence<kInstanceValues.size()>()), 0)
        : 0),
   ...);
  return found;
}

}  // namespace mma_detail

template <int D>
plugin::cuda::OwnDecodeKernel<TurboQuantRows> tensor_core_instance(const tq::Format& key, const tq::Format& value,
                                                                   bool split) {
  return mma_detail::instance_for<D>(key, value, split, std::make_index_sequence<mma_detail::kInstanceKeys.size()>());
}

}  // namespace atb::turboquant::cuda
