// Bit packing of quantisation codes, widths 1 to 8.
//
// Layout: code i of a row occupies bits [i*b, (i+1)*b) of a little-endian bit stream, where bit k
// of the stream is bit (k mod 8) of byte k/8 (LSB first).  A row of n codes takes exactly
// ceil(n*b/8) bytes; the unused high bits of the last byte are written as zero, and nothing past
// the row's bytes is touched, so neighbouring tokens never share a byte.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tq {

inline constexpr size_t packed_bytes(int count, int bits) { return (size_t(count) * size_t(bits) + 7) / 8; }

// codes[i] < 2^bits for every i (higher bits are ignored).
void pack_codes(const uint8_t* codes, int count, int bits, uint8_t* out);
void unpack_codes(const uint8_t* in, int count, int bits, uint8_t* codes);

}  // namespace tq
