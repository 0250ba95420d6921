#include <tq/format.hpp>

#include <array>

namespace tq {
namespace {

constexpr Format affine(std::string_view name, int bits, bool is_signed) {
  return {name, Scheme::affine_block, bits, is_signed, 0};
}
constexpr Format lloyd_max(std::string_view name, int bits) { return {name, Scheme::lloyd_max_block, bits, false, 0}; }
constexpr Format mse(std::string_view name, int bits) { return {name, Scheme::turboquant_mse, bits, false, 0}; }
constexpr Format prod(std::string_view name, int bits) { return {name, Scheme::turboquant_prod, bits, false, 0}; }
constexpr Format plain(std::string_view name, int bits, int32_t dtype) {
  return {name, Scheme::plain, bits, false, dtype};
}

// vllm-metal's K formats: q8_0 and int8 are signed 8-bit; every sub-8-bit one is unsigned (its bit
// packing needs non-negative codes), so int4/uint4/q4_0 and int2/uint2 are the same format.
constexpr std::array kKeyFormats = {affine("q8_0", 8, true),
                                    affine("int8", 8, true),
                                    affine("uint8", 8, false),
                                    affine("q5_0", 5, false),
                                    affine("q4_0", 4, false),
                                    affine("int4", 4, false),
                                    affine("uint4", 4, false),
                                    affine("int2", 2, false),
                                    affine("uint2", 2, false),
                                    mse("tq1", 1),
                                    mse("tq2", 2),
                                    mse("tq3", 3),
                                    mse("tq4", 4),
                                    mse("tq5", 5),
                                    mse("tq6", 6),
                                    mse("tq7", 7),
                                    mse("tq8", 8),
                                    prod("tqp2", 2),
                                    prod("tqp3", 3),
                                    prod("tqp4", 4),
                                    prod("tqp5", 5),
                                    prod("tqp6", 6),
                                    prod("tqp7", 7),
                                    prod("tqp8", 8),
                                    plain("f16", 16, ATB_DTYPE_F16),
                                    plain("bf16", 16, ATB_DTYPE_BF16),
                                    plain("f32", 32, ATB_DTYPE_F32)};

constexpr std::array kValueFormats = {lloyd_max("q2_0", 2),
                                      lloyd_max("q3_0", 3),
                                      lloyd_max("q4_0", 4),
                                      lloyd_max("q5_0", 5),
                                      lloyd_max("q8_0", 8),
                                      mse("tq1", 1),
                                      mse("tq2", 2),
                                      mse("tq3", 3),
                                      mse("tq4", 4),
                                      mse("tq5", 5),
                                      mse("tq6", 6),
                                      mse("tq7", 7),
                                      mse("tq8", 8),
                                      plain("f16", 16, ATB_DTYPE_F16),
                                      plain("bf16", 16, ATB_DTYPE_BF16),
                                      plain("f32", 32, ATB_DTYPE_F32)};

}  // namespace

std::string_view role_name(Role role) { return role == Role::key ? "k_quant" : "v_quant"; }

std::string_view scheme_name(Scheme scheme) {
  switch (scheme) {
    case Scheme::affine_block:
      return "affine per 32";
    case Scheme::lloyd_max_block:
      return "Lloyd-Max per 32";
    case Scheme::turboquant_mse:
      return "TurboQuant-MSE";
    case Scheme::turboquant_prod:
      return "TurboQuant-prod";
    case Scheme::plain:
      return "uncompressed";
  }
  return "unknown";
}

std::span<const Format> formats_for(Role role) {
  if (role == Role::key) return kKeyFormats;
  return kValueFormats;
}

std::string allowed_format_names(Role role) {
  std::string names;
  for (const Format& format : formats_for(role)) {
    if (!names.empty()) names += ", ";
    names += format.name;
  }
  return names;
}

atb::Expected<Format> find_format(Role role, std::string_view name) {
  for (const Format& format : formats_for(role))
    if (format.name == name) return format;
  std::string message = std::string(role_name(role)) + " = \"" + std::string(name) + "\" is not a " +
                        (role == Role::key ? "K" : "V") + " format; allowed: " + allowed_format_names(role);
  if (role == Role::value && name.starts_with("tqp"))
    message += " (TurboQuant-prod sketches inner products with queries, so it exists for K only)";
  return atb::Status::invalid(std::move(message));
}

}  // namespace tq
