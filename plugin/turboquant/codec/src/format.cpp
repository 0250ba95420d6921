#include <tq/format.hpp>

namespace tq {

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
