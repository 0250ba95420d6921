// tq: the TurboQuant attention-backend tool.  One binary, one subcommand per job.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "commands.hpp"

namespace {

struct Command {
  const char* name;
  int (*run)(int, const char* const*);
  const char* summary;
};

constexpr Command kCommands[] = {
    {"run", &atb::tool::run_command, "the main job: serve a model's shape with turboquant and the reference, compare"},
    {"list", &atb::tool::list_command, "list the attention backends found in the plugin directories"},
    {"fidelity", &atb::tool::fidelity_command,
     "attention-output error of turboquant pairs against the reference backend"},
    {"perplexity", &atb::tool::perplexity_command,
     "nats per character of a llama2.c model on a text, attention via a backend"},
    {"calibrate", &atb::tool::calibrate_command,
     "per-channel K/V maxima of a llama2.c model over a text (turboquant's smoothing_file)"},
    {"generate", &atb::tool::generate_command, "stream text from a llama2.c model, attention via a backend"},
    {"verify", &atb::tool::verify_command, "compression and fidelity of every K/V format pair on a synthetic cache"},
#ifdef ATB_HAVE_BENCHMARK
    {"bench", &atb::tool::bench_command, "decode-attention timings against the reference backend (Google Benchmark)"},
#endif
#ifdef ATB_HAVE_CUDA_TOOLS
    {"cuda-bench", &atb::tool::cuda_bench_command,
     "decode attention and encode on a CUDA device (CUDA events, graph replays)"},
#endif
};

void print_usage(std::FILE* out) {
  std::fprintf(out, "usage: tq COMMAND [--help] [flags]\n\ncommands:\n");
  for (const auto& command : kCommands) std::fprintf(out, "  %-10s %s\n", command.name, command.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& command : kCommands)
    if (std::string_view(argv[1]) == command.name) return command.run(argc, argv);
  std::fprintf(stderr, "tq: unknown command '%s'\n", argv[1]);
  print_usage(stderr);
  return 2;
}
