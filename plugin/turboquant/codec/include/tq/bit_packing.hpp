// Bit packing of quantisation codes, widths 1 to 8.
//
// Layout: code i of a row occupies bits [i*b, (i+1)*b) of a little-endian bit stream, where bit k
// of the stream is bit (k mod 8) of byte k/8 (LSB first).  A row of n codes takes exactly
// ceil(n*b/8) bytes; the unused high bits of the last byte are written as zero, and nothing past
// the row's bytes is touched, so neighbouring tokens never share a byte.
#pragma once

#include <tq/host_device.hpp>

#include <cstddef>
#include <cstdint>

namespace tq {

inline constexpr size_t packed_bytes(int count, int bits) { return (size_t(count) * size_t(bits) + 7) / 8; }

// codes[i] < 2^bits for every i (higher bits are ignored).
void pack_codes(const uint8_t* codes, int count, int bits, uint8_t* out);
void unpack_codes(const uint8_t* in, int count, int bits, uint8_t* codes);

// Code `index` of a packed row (bits 1..8): it spans at most two bytes, and no byte past the row is
// read.  Host and device (the CUDA kernels' general decode).
TQ_HOST_DEVICE inline unsigned code_at(const uint8_t* codes, int index, int bits) {
  const int bit = index * bits, byte = bit >> 3, shift = bit & 7;
  unsigned word = codes[byte];
  if (shift + bits > 8) word |= unsigned(codes[byte + 1]) << 8;
  return (word >> shift) & ((1u << bits) - 1u);
}

}  // namespace tq
