// Looking formats up by name for a role (tq/format_table.hpp holds the table), with the messages
// that name the allowed values.
#pragma once

#include <atb/status.hpp>
#include <tq/format_table.hpp>

#include <span>
#include <string>
#include <string_view>

namespace tq {

std::string_view role_name(Role role);
std::string_view scheme_name(Scheme scheme);

// Every format a role accepts, in a fixed documented order.
std::span<const Format> formats_for(Role role);
// "q8_0, int8, ..." for error messages.
std::string allowed_format_names(Role role);

// The format of that name for that role, or an error naming the value and the allowed names.
atb::Expected<Format> find_format(Role role, std::string_view name);

}  // namespace tq
