#include <atb/cli/arguments.hpp>

#include <cstdlib>

namespace atb::cli {

Expected<Arguments> Arguments::parse(int argc, const char* const* argv, int first, const std::vector<FlagSpec>& flags) {
  Arguments parsed;
  for (int i = first; i < argc; ++i) {
    std::string_view token = argv[i];
    if (token.rfind("--", 0) != 0) {
      parsed.positional_.emplace_back(token);
      continue;
    }
    std::string_view name = token.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string_view::npos) {
      inline_value = std::string(name.substr(eq + 1));
      name = name.substr(0, eq);
    }
    const FlagSpec* spec = nullptr;
    for (const auto& flag : flags)
      if (flag.name == name) spec = &flag;
    if (spec == nullptr) {
      std::string known;
      for (const auto& flag : flags) known += (known.empty() ? "--" : ", --") + flag.name;
      return Status::invalid("unknown flag --" + std::string(name) + "; known flags: " + known);
    }
    auto& slot = parsed.values_[spec->name];
    if (!slot.empty() && !spec->repeatable && !spec->value_name.empty()) slot.clear();  // the last occurrence wins
    if (spec->value_name.empty()) {
      if (inline_value) return Status::invalid("flag --" + spec->name + " takes no value");
      slot.emplace_back("true");
    } else if (inline_value) {
      slot.push_back(*inline_value);
    } else if (i + 1 < argc) {
      slot.emplace_back(argv[++i]);
    } else {
      return Status::invalid("flag --" + spec->name + " needs a value (" + spec->value_name + ")");
    }
  }
  return parsed;
}

bool Arguments::has(std::string_view name) const { return values_.find(name) != values_.end(); }

std::optional<std::string> Arguments::value(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Arguments::values(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Arguments::value_or(std::string_view name, std::string fallback) const {
  auto found = value(name);
  return found ? *found : std::move(fallback);
}

Expected<long long> Arguments::integer_or(std::string_view name, long long fallback, long long min,
                                          long long max) const {
  auto found = value(name);
  if (!found) return fallback;
  char* end = nullptr;
  const long long parsed = std::strtoll(found->c_str(), &end, 10);
  if (found->empty() || *end != '\0' || parsed < min || parsed > max)
    return Status::invalid("--" + std::string(name) + " " + *found + ": allowed: an integer in [" +
                           std::to_string(min) + ", " + std::to_string(max) + "]");
  return parsed;
}

Expected<std::vector<int>> Arguments::integer_list_or(std::string_view name, std::string fallback, int min,
                                                      int max) const {
  const std::string text = value_or(name, std::move(fallback));
  std::vector<int> values;
  size_t begin = 0;
  while (true) {
    const size_t end = text.find(',', begin);
    const std::string item = text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    char* stop = nullptr;
    const long long parsed = std::strtoll(item.c_str(), &stop, 10);
    if (item.empty() || *stop != '\0' || parsed < min || parsed > max)
      return Status::invalid("--" + std::string(name) + " " + text +
                             ": allowed: a comma-separated list of integers in [" + std::to_string(min) + ", " +
                             std::to_string(max) + "]");
    values.push_back(int(parsed));
    if (end == std::string::npos) return values;
    begin = end + 1;
  }
}

Expected<double> Arguments::number_or(std::string_view name, double fallback, double min, double max) const {
  auto found = value(name);
  if (!found) return fallback;
  char* end = nullptr;
  const double parsed = std::strtod(found->c_str(), &end);
  if (found->empty() || *end != '\0' || !(parsed >= min && parsed <= max))
    return Status::invalid("--" + std::string(name) + " " + *found + ": allowed: a number in [" + std::to_string(min) +
                           ", " + std::to_string(max) + "]");
  return parsed;
}

std::string flags_help(const std::vector<FlagSpec>& flags) {
  std::string text;
  for (const auto& flag : flags) {
    std::string left = "  --" + flag.name + (flag.value_name.empty() ? "" : " " + flag.value_name);
    if (left.size() < 34)
      left.resize(34, ' ');
    else
      left += "  ";
    text += left + flag.help + "\n";
  }
  return text;
}

}  // namespace atb::cli
