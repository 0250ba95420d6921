// Bit packing: exact round trips for every width 1-8 and many row lengths, the documented layout,
// and no byte touched past a row.
#include <gtest/gtest.h>

#include <tq/bit_packing.hpp>

#include <random>
#include <vector>

#include "../support/seed.hpp"

namespace tq {
namespace {

TEST(BitPacking, RoundTripsEveryWidthWithoutTouchingNeighbours) {
  const uint64_t seed = atb::test::test_seed();
  std::mt19937_64 rng(seed);
  constexpr size_t kGuard = 16;
  for (int bits = 1; bits <= 8; ++bits) {
    for (int trial = 0; trial < 200; ++trial) {
      const int count = std::uniform_int_distribution<int>(1, 300)(rng);
      std::vector<uint8_t> codes(static_cast<size_t>(count));
      for (auto& code : codes) code = uint8_t(rng() & ((1u << bits) - 1));
      const size_t bytes = packed_bytes(count, bits);
      std::vector<uint8_t> buffer(bytes + 2 * kGuard, 0xA7);
      pack_codes(codes.data(), count, bits, buffer.data() + kGuard);
      for (size_t i = 0; i < kGuard; ++i) {
        ASSERT_EQ(buffer[i], 0xA7) << "wrote before the row, bits " << bits;
        ASSERT_EQ(buffer[kGuard + bytes + i], 0xA7) << "wrote past the row, bits " << bits << " count " << count;
      }
      const int used_bits = (count * bits) % 8;
      if (used_bits != 0) {
        ASSERT_EQ(buffer[kGuard + bytes - 1] >> used_bits, 0) << "padding bits not zero";
      }
      std::vector<uint8_t> decoded(static_cast<size_t>(count), 0xFF);
      unpack_codes(buffer.data() + kGuard, count, bits, decoded.data());
      ASSERT_EQ(decoded, codes) << "bits " << bits << " count " << count << " seed " << seed;
    }
  }
}

TEST(BitPacking, DocumentedLayout) {
  // 3-bit codes 1, 2, 7 -> stream bits 001 010 111 (LSB first) -> byte0 = 0b11010001, byte1 = 0b1.
  const uint8_t codes[3] = {1, 2, 7};
  uint8_t out[2] = {0xFF, 0xFF};
  pack_codes(codes, 3, 3, out);
  EXPECT_EQ(out[0], 0b11010001);
  EXPECT_EQ(out[1], 0b00000001);
  EXPECT_EQ(packed_bytes(128, 3), 48u);
  EXPECT_EQ(packed_bytes(128, 5), 80u);
  EXPECT_EQ(packed_bytes(3, 3), 2u);
}

}  // namespace
}  // namespace tq
