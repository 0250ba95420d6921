// tq bench: Google Benchmark timings of decode attention for the chosen backend and the
// `reference` backend in the same run, with this machine's measured read bandwidth, the
// bandwidth floor (KV bytes / bandwidth) and the ratio to the reference beside each figure.
#include <atb/cli/decode_workload.hpp>
#include <atb/cli/host_options.hpp>
#include <atb/cli/memory_bandwidth.hpp>
#include <atb/cli/variant_label.hpp>
#include <atb/half.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include "commands.hpp"

namespace atb::tool {
namespace {

Expected<int32_t> parse_dtype(const std::string& name) {
  if (name == "f16") return ATB_DTYPE_F16;
  if (name == "bf16") return ATB_DTYPE_BF16;
  if (name == "f32") return ATB_DTYPE_F32;
  return Status::invalid("--dtype " + name + ": allowed: f16, bf16, f32");
}

struct Variant {
  std::string label;  // cli::variant_label: "reference", "turboquant q8_0/q3_0", ...
  const host::Plugin* plugin;
  std::string config;
};

struct Result {
  std::string variant;
  int batch;
  int context;
  double seconds_per_step;
  uint64_t kv_bytes;
};

// Captures every finished run for the summary table, then prints as the console reporter does.
class CapturingReporter : public benchmark::ConsoleReporter {
 public:
  explicit CapturingReporter(std::map<std::string, double>& seconds) : ConsoleReporter(OO_Tabular), seconds_(seconds) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs)
      if (run.run_type == Run::RT_Iteration && !run.error_occurred)
        seconds_[run.run_name.function_name] =
            run.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(run.time_unit);
    ConsoleReporter::ReportRuns(runs);
  }

 private:
  std::map<std::string, double>& seconds_;
};

}  // namespace

int bench_command(int argc, const char* const* argv) {
  auto flags = cli::host_flags("turboquant (when found), always with reference");
  for (auto& flag : flags)
    if (flag.name == "attention-config") {
      flag.repeatable = true;
      flag.help = "backend configuration, a JSON object; repeatable: one variant per config (default: {})";
    }
  flags.push_back({"contexts", "LIST", "context lengths, comma-separated (default 1024,4096,16384,32768)"});
  flags.push_back({"batches", "LIST", "batch sizes, comma-separated (default 1,8)"});
  flags.push_back({"query-heads", "N", "query heads (default 32)"});
  flags.push_back({"kv-heads", "N", "KV heads (default 8)"});
  flags.push_back({"head-size", "N", "head size (default 128)"});
  flags.push_back({"block-size", "N", "tokens per page (default 16)"});
  flags.push_back({"dtype", "NAME", "dtype of the layer and of the reference cache: f16 (default), bf16, f32"});
  flags.push_back({"threads", "N", "threads per backend (default: all cores); passed in each backend's config"});
  flags.push_back({"min-time", "SECONDS", "Google Benchmark minimum time per benchmark (default 0.5)"});
  flags.push_back({"bandwidth-mib", "MIB", "buffer for the read-bandwidth measurement (default 1024)"});
  flags.push_back({"only", "LIST", "which timings: decode, encode, prefill, comma-separated (default all three)"});
  flags.push_back({"encode-tokens", "N", "tokens per encode step, written on one thread (default 512)"});
  flags.push_back({"prefill-chunk", "N", "new tokens of the prefill step (default 512)"});
  flags.push_back({"prefill-context", "N", "cached tokens the prefill chunk attends to (default 8192)"});
  auto arguments = cli::Arguments::parse(argc, argv, 2, flags);
  if (!arguments) {
    std::fprintf(stderr, "tq bench: %s\n", arguments.error().message().c_str());
    return 2;
  }
  if (arguments->has("help")) {
    std::printf(
        "usage: tq bench [flags]\n\nDecode-attention timings (Google Benchmark) of a backend against `reference` "
        "in the same run,\nwith this machine's read bandwidth and the bandwidth floor of each shape.\n\n%s",
        cli::flags_help(flags).c_str());
    return 0;
  }
  auto options = cli::read_host_options(*arguments, "");
  if (!options) {
    std::fprintf(stderr, "tq bench: %s\n", options.error().message().c_str());
    return 2;
  }
  const auto contexts = arguments->integer_list_or("contexts", "1024,4096,16384,32768", 1, 1 << 20);
  const auto batches = arguments->integer_list_or("batches", "1,8", 1, 1 << 20);
  auto dtype = parse_dtype(arguments->value_or("dtype", "f16"));
  auto query_heads = arguments->integer_or("query-heads", 32, 1, 4096);
  auto kv_heads = arguments->integer_or("kv-heads", 8, 1, 4096);
  auto head_size = arguments->integer_or("head-size", 128, 1, 1024);
  auto block_size = arguments->integer_or("block-size", 16, 1, 4096);
  auto threads = arguments->integer_or("threads", 0, 0, 1024);
  auto min_time = arguments->number_or("min-time", 0.5, 0.0, 1000.0);
  auto bandwidth_mib = arguments->integer_or("bandwidth-mib", 1024, 16, 65536);
  auto encode_tokens = arguments->integer_or("encode-tokens", 512, 1, 1 << 16);
  auto prefill_chunk = arguments->integer_or("prefill-chunk", 512, 1, 1 << 16);
  auto prefill_context = arguments->integer_or("prefill-context", 8192, 0, 1 << 22);
  const std::string only = "," + arguments->value_or("only", "decode,encode,prefill") + ",";
  const bool run_decode = only.find(",decode,") != std::string::npos,
             run_encode = only.find(",encode,") != std::string::npos,
             run_prefill = only.find(",prefill,") != std::string::npos;
  if (Status bad = cli::first_error(contexts, batches, dtype, query_heads, kv_heads, head_size, block_size, threads,
                                    min_time, bandwidth_mib, encode_tokens, prefill_chunk, prefill_context);
      !bad) {
    std::fprintf(stderr, "tq bench: %s\n", bad.message().c_str());
    return 2;
  }

  const auto registry = host::Registry::scan(options->plugin_dirs);
  auto reference = registry.select("reference");
  if (options->backend.empty()) options->backend = registry.select("turboquant") ? "turboquant" : "reference";
  auto chosen = registry.select(options->backend);
  if (!reference || !chosen) {
    std::fprintf(stderr, "tq bench: %s\n", (!reference ? reference : chosen).error().message().c_str());
    return 1;
  }
  auto with_threads = [&](const std::string& config) -> Expected<std::string> {
    nlohmann::json json = nlohmann::json::parse(config.empty() ? "{}" : config, nullptr, false);
    if (json.is_discarded() || !json.is_object())
      return Status::invalid("--attention-config: not a JSON object: " + config);
    if (*threads > 0) json["threads"] = *threads;
    return json.dump();
  };
  std::vector<Variant> variants;
  auto reference_config = with_threads("{}");
  variants.push_back({"reference", *reference, *reference_config});
  std::vector<std::string> configs = arguments->values("attention-config");
  if (configs.empty()) configs.push_back("{}");
  for (const std::string& config_json : configs) {
    if (options->backend == "reference" && config_json == "{}") continue;
    auto config = with_threads(config_json);
    if (!config) {
      std::fprintf(stderr, "tq bench: %s\n", config.error().message().c_str());
      return 2;
    }
    variants.push_back({cli::variant_label(options->backend, config_json), *chosen, *config});
  }

  const int bandwidth_threads = *threads > 0 ? int(*threads) : int(std::thread::hardware_concurrency());
  std::fprintf(stderr, "measuring read bandwidth (%lld MiB, %d threads)...\n", *bandwidth_mib, bandwidth_threads);
  const double bandwidth = cli::measure_read_bandwidth_gbps(size_t(*bandwidth_mib) << 20, bandwidth_threads, 5);

  // Workloads are built lazily inside each benchmark (and freed after it) to bound memory.
  std::vector<Result> results;
  for (int batch : run_decode ? *batches : std::vector<int>{}) {
    for (int context : *contexts) {
      for (size_t v = 0; v < variants.size(); ++v) {
        const Variant variant = variants[v];
        cli::WorkloadShape shape{
            int(*query_heads), int(*kv_heads), int(*head_size), int(*block_size), *dtype, batch, context};
        const std::string name =
            "decode/" + variant.label + "/B" + std::to_string(batch) + "/ctx" + std::to_string(context);
        results.push_back({variant.label, batch, context, 0, 0});
        const size_t index = results.size() - 1;
        benchmark::RegisterBenchmark(
            name.c_str(),
            [shape, variant, index, &results](benchmark::State& state) {
              auto workload = cli::DecodeWorkload::create(*variant.plugin, variant.config, shape, 1234);
              if (!workload) {
                state.SkipWithError(workload.error().message().c_str());
                return;
              }
              if (Status filled = workload->fill(); !filled) {
                state.SkipWithError(filled.message().c_str());
                return;
              }
              for (auto _ : state) {
                if (Status stepped = workload->decode_step(); !stepped) {
                  state.SkipWithError(stepped.message().c_str());
                  break;
                }
              }
              const double kv_bytes = double(workload->kv_bytes_per_step());
              results[index].kv_bytes = workload->kv_bytes_per_step();
              state.counters["tokens/s"] =
                  benchmark::Counter(double(shape.batch), benchmark::Counter::kIsIterationInvariantRate);
              state.counters["KV_GB/s"] =
                  benchmark::Counter(kv_bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
            })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(*min_time);
      }
    }
  }

  // Encode: write-only steps of encode_tokens new tokens on one thread.  Prefill: a chunk of new
  // tokens onto a cached context, with attention, on all threads.
  struct StepResult {
    std::string kind, variant, name;
  };
  std::vector<StepResult> step_results;
  const auto register_step = [&](const std::string& kind, const Variant& variant, const std::string& config,
                                 cli::WorkloadShape shape, bool write_only) {
    const std::string name = kind + "/" + variant.label;
    step_results.push_back({kind, variant.label, name});
    benchmark::RegisterBenchmark(name.c_str(),
                                 [shape, variant, config, write_only](benchmark::State& state) {
                                   auto workload = cli::DecodeWorkload::create(*variant.plugin, config, shape, 99);
                                   if (!workload) {
                                     state.SkipWithError(workload.error().message().c_str());
                                     return;
                                   }
                                   if (Status filled = workload->fill(); !filled) {
                                     state.SkipWithError(filled.message().c_str());
                                     return;
                                   }
                                   for (auto _ : state)
                                     if (Status stepped = workload->decode_step(write_only); !stepped) {
                                       state.SkipWithError(stepped.message().c_str());
                                       break;
                                     }
                                 })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(*min_time);
  };
  for (const Variant& variant : variants) {
    cli::WorkloadShape shape{int(*query_heads), int(*kv_heads), int(*head_size), int(*block_size), *dtype, 1, 0};
    if (run_encode) {
      nlohmann::json one_thread = nlohmann::json::parse(variant.config);
      one_thread["threads"] = 1;
      shape.context = 0;
      shape.step_tokens = int(*encode_tokens);
      register_step("encode", variant, one_thread.dump(), shape, true);
    }
    if (run_prefill) {
      shape.context = int(*prefill_context);
      shape.step_tokens = int(*prefill_chunk);
      register_step("prefill", variant, variant.config, shape, false);
    }
  }

  std::vector<std::string> benchmark_argv_storage{"tq-bench"};
  std::vector<char*> benchmark_argv;
  for (auto& arg : benchmark_argv_storage) benchmark_argv.push_back(arg.data());
  int benchmark_argc = int(benchmark_argv.size());
  benchmark::Initialize(&benchmark_argc, benchmark_argv.data());
  std::map<std::string, double> seconds;
  CapturingReporter reporter(seconds);
  // With --json, stdout holds only the JSON document: the tables go to stderr.
  FILE* out = options->json ? stderr : stdout;
  if (options->json) reporter.SetOutputStream(&std::cerr);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  nlohmann::json json_rows = nlohmann::json::array();
  std::fprintf(out, "\nread bandwidth of this machine: %.1f GB/s (%d threads, best of 5 passes over %lld MiB)\n",
               bandwidth, bandwidth_threads, *bandwidth_mib);
  int width = 44;  // row names are printed whole
  for (const Variant& variant : variants) width = std::max(width, int(variant.label.size()));
  std::fprintf(out, "%-*s %5s %7s %10s %10s %9s %10s %8s %9s %9s\n", width, "decode attention, one layer", "batch",
               "context", "ms/step", "tokens/s", "KV MB", "floor ms", "GB/s", "GFLOP/s", "vs ref");
  std::map<std::pair<int, int>, double> reference_seconds;
  for (const auto& result : results)
    if (result.variant == "reference") {
      const std::string name =
          "decode/reference/B" + std::to_string(result.batch) + "/ctx" + std::to_string(result.context);
      if (seconds.count(name)) reference_seconds[{result.batch, result.context}] = seconds[name];
    }
  for (const auto& result : results) {
    const std::string name =
        "decode/" + result.variant + "/B" + std::to_string(result.batch) + "/ctx" + std::to_string(result.context);
    if (!seconds.count(name)) continue;
    const double s = seconds[name];
    const double floor_ms = double(result.kv_bytes) / (bandwidth * 1e9) * 1e3;
    const auto ref = reference_seconds.find({result.batch, result.context});
    const double speedup = ref != reference_seconds.end() ? ref->second / s : 0;
    // Scores and the weighted sum of values: two flops per multiply-add, each over the head size.
    const double flops = 4.0 * double(*head_size) * result.context * double(*query_heads) * result.batch;
    std::fprintf(out, "%-*s %5d %7d %10.3f %10.0f %9.1f %10.3f %8.1f %9.1f %8.2fx\n", width, result.variant.c_str(),
                 result.batch, result.context, s * 1e3, result.batch / s, double(result.kv_bytes) / 1e6, floor_ms,
                 double(result.kv_bytes) / s / 1e9, flops / s / 1e9, speedup);
    json_rows.push_back({{"backend", result.variant},
                         {"batch", result.batch},
                         {"context", result.context},
                         {"ms_per_step", s * 1e3},
                         {"tokens_per_s", result.batch / s},
                         {"kv_bytes", result.kv_bytes},
                         {"bandwidth_floor_ms", floor_ms},
                         {"kv_gb_per_s", double(result.kv_bytes) / s / 1e9},
                         {"gflop_per_s", flops / s / 1e9},
                         {"speedup_vs_reference", speedup}});
  }
  nlohmann::json step_rows = nlohmann::json::array();
  for (const char* kind : {"encode", "prefill"}) {
    const std::string reference_name = std::string(kind) + "/reference";
    const bool is_encode = std::string(kind) == "encode";
    bool header = false;
    for (const auto& result : step_results) {
      if (result.kind != kind || !seconds.count(result.name)) continue;
      if (!header) {
        std::fprintf(out, "\n%-*s %12s %14s %9s %8s\n", width,
                     is_encode ? "encode (write-only step, 1 thread)" : "prefill (chunk onto cached context)",
                     is_encode ? "us/token" : "ms/chunk", is_encode ? "tokens" : "chunk@context",
                     is_encode ? "" : "GFLOP/s", "vs ref");
        header = true;
      }
      const double s = seconds[result.name];
      const double ref = seconds.count(reference_name) ? seconds[reference_name] : 0;
      const std::string size = is_encode ? std::to_string(*encode_tokens)
                                         : std::to_string(*prefill_chunk) + "@" + std::to_string(*prefill_context);
      const double figure = is_encode ? s / double(*encode_tokens) * 1e6 : s * 1e3;
      // New token i of the chunk sees the cached context and tokens 0 .. i: scores and weighted sum over
      // each visible (query, key) pair, two flops per multiply-add over the head size.
      const double chunk = double(*prefill_chunk);
      const double pairs = chunk * double(*prefill_context) + chunk * (chunk + 1) / 2;
      const double gflops = is_encode ? 0 : 4.0 * double(*head_size) * double(*query_heads) * pairs / s / 1e9;
      const std::string gflops_text = is_encode ? "" : std::to_string(int64_t(std::llround(gflops)));
      std::fprintf(out, "%-*s %12.3f %14s %9s %7.2fx\n", width, result.variant.c_str(), figure, size.c_str(),
                   gflops_text.c_str(), ref > 0 ? ref / s : 0);
      nlohmann::json row{{"kind", kind},
                         {"backend", result.variant},
                         {is_encode ? "us_per_token" : "ms_per_chunk", figure},
                         {"speedup_vs_reference", ref > 0 ? ref / s : 0}};
      if (!is_encode) row["gflop_per_s"] = gflops;
      step_rows.push_back(std::move(row));
    }
  }
  if (options->json) {
    nlohmann::json document{{"read_bandwidth_gb_per_s", bandwidth}, {"decode", json_rows}, {"steps", step_rows}};
    std::cout << document.dump(2) << "\n";
  }
  return 0;
}

}  // namespace atb::tool
