// Command-line parsing shared by the tools: `--name value`, `--name=value` and boolean `--name`.
// Unknown flags are errors that list the flags the command knows.
#pragma once

#include <atb/status.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace atb::cli {

struct FlagSpec {
  std::string name;        // without the leading "--"
  std::string value_name;  // empty for a boolean flag
  std::string help;
  bool repeatable = false;
};

class Arguments {
 public:
  // Parses argv[first..argc) against `flags`.
  static Expected<Arguments> parse(int argc, const char* const* argv, int first, const std::vector<FlagSpec>& flags);

  bool has(std::string_view name) const;
  std::optional<std::string> value(std::string_view name) const;  // the last occurrence
  std::vector<std::string> values(std::string_view name) const;   // every occurrence
  std::string value_or(std::string_view name, std::string fallback) const;
  Expected<long long> integer_or(std::string_view name, long long fallback, long long min, long long max) const;
  // A comma-separated list of integers, each in [min, max] (`fallback` where the flag is absent).
  Expected<std::vector<int>> integer_list_or(std::string_view name, std::string fallback, int min, int max) const;
  Expected<double> number_or(std::string_view name, double fallback, double min, double max) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
  std::vector<std::string> positional_;
};

// The first error among Status and Expected<T> values (OK when there is none): lets a command read
// all its flags, then report the first bad one.
inline Status status_of(const Status& status) { return status; }
template <class T>
Status status_of(const Expected<T>& expected) {
  return expected ? Status::ok() : expected.error();
}
template <class... Items>
Status first_error(const Items&... items) {
  Status result;
  ((result = result.is_ok() ? status_of(items) : result), ...);
  return result;
}

// "  --name VALUE   help" lines for --help output.
std::string flags_help(const std::vector<FlagSpec>& flags);

}  // namespace atb::cli
