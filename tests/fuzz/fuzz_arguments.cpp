// libFuzzer: the tools' command-line parser.  Input: arguments separated by NUL bytes, parsed
// against the shared flags and a command's own (integer, list, number and repeatable flags), then
// every accessor; refusals carry messages.
#include <atb/cli/arguments.hpp>
#include <atb/cli/host_options.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

void expect_message(const atb::Status& status) {
  if (!status.is_ok() && status.message().empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> words{"tq", "bench"};
  std::string current;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      words.push_back(current);
      current.clear();
    } else {
      current.push_back(char(data[i]));
    }
  }
  words.push_back(current);
  std::vector<const char*> argv;
  for (const std::string& word : words) argv.push_back(word.c_str());

  auto flags = atb::cli::host_flags("reference");
  flags.push_back({"contexts", "LIST", "context lengths"});
  flags.push_back({"threads", "N", "threads"});
  flags.push_back({"min-time", "SECONDS", "time"});
  flags.push_back({"verbose", "", "a boolean flag"});
  auto arguments = atb::cli::Arguments::parse(int(argv.size()), argv.data(), 2, flags);
  if (!arguments) {
    expect_message(arguments.error());
    return 0;
  }
  expect_message(atb::cli::status_of(arguments->integer_or("threads", 1, 1, 1024)));
  expect_message(atb::cli::status_of(arguments->integer_list_or("contexts", "1024,4096", 1, 1 << 20)));
  expect_message(atb::cli::status_of(arguments->number_or("min-time", 0.5, 0.0, 60.0)));
  (void)arguments->values("attention-config");
  (void)arguments->value_or("attention-backend", "reference");
  (void)arguments->has("verbose");
  (void)arguments->positional();
  return 0;
}
