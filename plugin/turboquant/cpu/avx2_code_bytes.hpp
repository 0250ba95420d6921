// Packed codes to one byte per code, for the integer AVX2 kernels (compiled with -mavx2 only).
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstdint>

namespace atb::turboquant {

// 32 codes of 3 bits (12 bytes, packed LSB-first) to 32 bytes.  Each code is cut from the 16-bit
// window of the two bytes holding it: vpshufb places the window, vpmulhuw by 2^(16-s) shifts it
// right by s, and vpackuswb makes bytes, lanes interleaved: byte t holds code t for t < 8, t + 8 for
// t < 16, t - 8 for t < 24 and t after (lane_split_code).
class ThreeBitGroups {
 public:
  static int lane_split_code(int byte) { return byte < 8 ? byte : byte < 16 ? byte + 8 : byte < 24 ? byte - 8 : byte; }

  // `bytes`: the group's 12 bytes in the low lanes; the other 4 are ignored.
  __m256i codes(__m128i bytes) const {
    const __m256i both = _mm256_broadcastsi128_si256(bytes), mask = _mm256_set1_epi16(7);
    const __m256i a =
        _mm256_and_si256(_mm256_mulhi_epu16(_mm256_shuffle_epi8(both, low_.shuffle), low_.multiplier), mask);
    const __m256i b =
        _mm256_and_si256(_mm256_mulhi_epu16(_mm256_shuffle_epi8(both, high_.shuffle), high_.multiplier), mask);
    return _mm256_packus_epi16(a, b);
  }

  // The group's bytes without reading past its end: the 16 bytes that end with it, moved down, when
  // 4 bytes before it are readable; else a copy.
  static __m128i load_last(const uint8_t* group, bool bytes_before) {
    if (bytes_before) return _mm_srli_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(group - 4)), 4);
    uint64_t low;
    uint32_t high;
    __builtin_memcpy(&low, group, 8);
    __builtin_memcpy(&high, group + 8, 4);
    return _mm_insert_epi32(_mm_cvtsi64_si128(int64_t(low)), int(high), 2);
  }

 private:
  struct Windows {
    __m256i shuffle, multiplier;
  };
  // Windows of codes first .. first+15 of a group, eight per 128-bit lane.
  static Windows windows(int first) {
    alignas(32) uint8_t shuffle[32];
    alignas(32) uint16_t multiplier[16];
    for (int m = 0; m < 16; ++m) {
      int bit = 3 * (first + m), byte = bit / 8, shift = bit % 8;
      if (shift == 0) byte -= 1, shift = 8;  // a multiplier of 2^16 does not exist: take the byte before
      shuffle[2 * m] = byte < 0 ? uint8_t(0x80) : uint8_t(byte);
      shuffle[2 * m + 1] = uint8_t(byte + 1);
      multiplier[m] = uint16_t(1u << (16 - shift));
    }
    return {_mm256_load_si256(reinterpret_cast<const __m256i*>(shuffle)),
            _mm256_load_si256(reinterpret_cast<const __m256i*>(multiplier))};
  }

  Windows low_ = windows(0), high_ = windows(16);
};

}  // namespace atb::turboquant

#endif
