#include <tq/bit_packing.hpp>
#include <tq/simd.hpp>

#include "simd_kernels.hpp"

#include <bit>
#include <cstring>

namespace tq {

namespace {

// Whole groups of 8 codes fill exactly `bits` bytes: assembled in one 64-bit word each (little
// endian, so its first `bits` bytes are the stream's).
static_assert(std::endian::native == std::endian::little, "the packed layout is written as little-endian words");
template <int Bits>
int pack_groups(const uint8_t* codes, int count, uint8_t* out) {
  constexpr uint64_t kMask = (1u << Bits) - 1;
  int i = 0;
  for (; i + 8 <= count; i += 8) {
    uint64_t word = 0;
    for (int t = 0; t < 8; ++t) word |= (codes[i + t] & kMask) << (t * Bits);
    std::memcpy(out + size_t(i / 8) * Bits, &word, Bits);
  }
  return i;
}

int pack_groups_of_8(const uint8_t* codes, int count, int bits, uint8_t* out) {
  switch (bits) {
    case 1:
      return pack_groups<1>(codes, count, out);
    case 2:
      return pack_groups<2>(codes, count, out);
    case 3:
      return pack_groups<3>(codes, count, out);
    case 4:
      return pack_groups<4>(codes, count, out);
    case 5:
      return pack_groups<5>(codes, count, out);
    case 6:
      return pack_groups<6>(codes, count, out);
    case 7:
      return pack_groups<7>(codes, count, out);
    case 8:
      return pack_groups<8>(codes, count, out);
    default:
      return 0;
  }
}

}  // namespace

void pack_codes(const uint8_t* codes, int count, int bits, uint8_t* out) {
  // Whole groups first (16 codes at a time in AVX2, then 8 at a time), the tail bit by bit; each
  // stage starts where the one before stopped, always at a byte (a multiple of 8 codes).
  auto skip_packed = [&](int done) {
    codes += done;
    out += size_t(done / 8) * size_t(bits);
    count -= done;
  };
  if (simd_enabled()) skip_packed(avx2::pack_codes(codes, count, bits, out));
  skip_packed(pack_groups_of_8(codes, count, bits, out));
  const uint32_t mask = (1u << bits) - 1;
  uint64_t buffer = 0;  // pending bits, LSB first
  int pending = 0;
  size_t written = 0;
  for (int i = 0; i < count; ++i) {
    buffer |= uint64_t(codes[i] & mask) << pending;
    pending += bits;
    while (pending >= 8) {
      out[written++] = uint8_t(buffer);
      buffer >>= 8;
      pending -= 8;
    }
  }
  if (pending > 0) out[written] = uint8_t(buffer);
}

void unpack_codes(const uint8_t* in, int count, int bits, uint8_t* codes) {
  const uint32_t mask = (1u << bits) - 1;
  uint64_t buffer = 0;
  int available = 0;
  size_t read = 0;
  for (int i = 0; i < count; ++i) {
    while (available < bits) {
      buffer |= uint64_t(in[read++]) << available;
      available += 8;
    }
    codes[i] = uint8_t(buffer & mask);
    buffer >>= bits;
    available -= bits;
  }
}

}  // namespace tq
