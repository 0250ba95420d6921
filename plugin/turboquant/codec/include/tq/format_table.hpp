// The named storage formats of K and V rows: the one table that the codec, the byte accounting,
// the page layout and the CPU and CUDA kernels all read (constexpr, and C++17 so that nvcc compiles
// it: CUDA kernels pick their instances from it at compile time).  Config strings use these names.
// One name can mean different schemes for K and for V (vllm-metal's `q4_0` is affine for K and
// Lloyd–Max for V), so names are always looked up for a role.
#pragma once

#include <atb/abi.h>

#include <array>
#include <cstdint>
#include <string_view>

namespace tq {

enum class Role { key, value };

enum class Scheme {
  affine_block,     // K: WHT, blocks of 32, fp16 scale + fp16 zero per block, uniform codes
  lloyd_max_block,  // V: WHT, blocks of 32, one fp16 scale per block, unit-normal Lloyd–Max codes
  turboquant_mse,   // WHT, one fp16 scale per vector, Lloyd–Max codes of the sphere coordinate
  turboquant_prod,  // K: turboquant_mse at bits-1 plus a 1-bit QJL sketch of the residual
  plain,            // stored uncompressed, no rotation
};

struct Format {
  std::string_view name;
  Scheme scheme;
  int bits;             // code width per coordinate (plain: bits of the element type)
  bool signed_codes;    // affine only: codes in [-(2^(bits-1)-1), 2^(bits-1)-1]
  int32_t plain_dtype;  // plain only: ATB_DTYPE_*

  // The same bytes for the same values: aliases (int4, uint4 and q4_0 for K) store alike.
  constexpr bool stores_like(const Format& other) const {
    return scheme == other.scheme && bits == other.bits && signed_codes == other.signed_codes &&
           plain_dtype == other.plain_dtype;
  }
};

namespace formats {

constexpr Format affine(std::string_view name, int bits, bool is_signed) {
  return {name, Scheme::affine_block, bits, is_signed, 0};
}
constexpr Format lloyd_max(std::string_view name, int bits) { return {name, Scheme::lloyd_max_block, bits, false, 0}; }
constexpr Format mse(std::string_view name, int bits) { return {name, Scheme::turboquant_mse, bits, false, 0}; }
constexpr Format prod(std::string_view name, int bits) { return {name, Scheme::turboquant_prod, bits, false, 0}; }
constexpr Format plain(std::string_view name, int bits, int32_t dtype) {
  return {name, Scheme::plain, bits, false, dtype};
}

}  // namespace formats

// vllm-metal's K formats: q8_0 and int8 are signed 8-bit; every sub-8-bit one is unsigned (its bit
// packing needs non-negative codes), so int4/uint4/q4_0 and int2/uint2 are the same format.
inline constexpr std::array kKeyFormats = {formats::affine("q8_0", 8, true),
                                           formats::affine("int8", 8, true),
                                           formats::affine("uint8", 8, false),
                                           formats::affine("q5_0", 5, false),
                                           formats::affine("q4_0", 4, false),
                                           formats::affine("int4", 4, false),
                                           formats::affine("uint4", 4, false),
                                           formats::affine("int2", 2, false),
                                           formats::affine("uint2", 2, false),
                                           formats::mse("tq1", 1),
                                           formats::mse("tq2", 2),
                                           formats::mse("tq3", 3),
                                           formats::mse("tq4", 4),
                                           formats::mse("tq5", 5),
                                           formats::mse("tq6", 6),
                                           formats::mse("tq7", 7),
                                           formats::mse("tq8", 8),
                                           formats::prod("tqp2", 2),
                                           formats::prod("tqp3", 3),
                                           formats::prod("tqp4", 4),
                                           formats::prod("tqp5", 5),
                                           formats::prod("tqp6", 6),
                                           formats::prod("tqp7", 7),
                                           formats::prod("tqp8", 8),
                                           formats::plain("f16", 16, ATB_DTYPE_F16),
                                           formats::plain("bf16", 16, ATB_DTYPE_BF16),
                                           formats::plain("f32", 32, ATB_DTYPE_F32)};

inline constexpr std::array kValueFormats = {formats::lloyd_max("q2_0", 2),
                                             formats::lloyd_max("q3_0", 3),
                                             formats::lloyd_max("q4_0", 4),
                                             formats::lloyd_max("q5_0", 5),
                                             formats::lloyd_max("q8_0", 8),
                                             formats::mse("tq1", 1),
                                             formats::mse("tq2", 2),
                                             formats::mse("tq3", 3),
                                             formats::mse("tq4", 4),
                                             formats::mse("tq5", 5),
                                             formats::mse("tq6", 6),
                                             formats::mse("tq7", 7),
                                             formats::mse("tq8", 8),
                                             formats::plain("f16", 16, ATB_DTYPE_F16),
                                             formats::plain("bf16", 16, ATB_DTYPE_BF16),
                                             formats::plain("f32", 32, ATB_DTYPE_F32)};

// The index in its role's table of the format of that name, at compile time (a name not in the
// table does not compile).
constexpr int format_index(Role role, std::string_view name) {
  const auto search = [name](const auto& table) {
    for (size_t i = 0; i < table.size(); ++i)
      if (table[i].name == name) return int(i);
    throw "no format of that name for that role";
  };
  return role == Role::key ? search(kKeyFormats) : search(kValueFormats);
}

// Whether the format stores rotated coordinates (everything but `plain`).
constexpr bool is_rotated(const Format& format) { return format.scheme != Scheme::plain; }

}  // namespace tq
