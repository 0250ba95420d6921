// The named storage formats of K and V rows.  A format is a name; config strings use these names.
// One name can mean different schemes for K and for V (vllm-metal's `q4_0` is affine for K and
// Lloyd–Max for V), so names are always looked up for a role.
#pragma once

#include <atb/status.hpp>

#include <cstdint>
#include <span>
#include <string>
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
};

std::string_view role_name(Role role);
std::string_view scheme_name(Scheme scheme);

// Every format a role accepts, in a fixed documented order.
std::span<const Format> formats_for(Role role);
// "q8_0, int8, ..." for error messages.
std::string allowed_format_names(Role role);

// The format of that name for that role, or an error naming the value and the allowed names.
atb::Expected<Format> find_format(Role role, std::string_view name);

// Whether the format stores rotated coordinates (everything but `plain`).
inline bool is_rotated(const Format& format) { return format.scheme != Scheme::plain; }

}  // namespace tq
