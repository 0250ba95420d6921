// The subcommands of `tq`; each returns the process exit code.
#pragma once

namespace atb::tool {

// Each command parses argv[2..]; argv[0] is the program, argv[1] the command name.
int list_command(int argc, const char* const* argv);
int run_command(int argc, const char* const* argv);
int bench_command(int argc, const char* const* argv);
int cuda_bench_command(int argc, const char* const* argv);
int verify_command(int argc, const char* const* argv);
int fidelity_command(int argc, const char* const* argv);
int perplexity_command(int argc, const char* const* argv);
int calibrate_command(int argc, const char* const* argv);
int generate_command(int argc, const char* const* argv);

}  // namespace atb::tool
