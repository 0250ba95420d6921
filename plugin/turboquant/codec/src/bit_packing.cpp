#include <tq/bit_packing.hpp>

namespace tq {

void pack_codes(const uint8_t* codes, int count, int bits, uint8_t* out) {
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
