// tq fidelity: attention-output error of the turboquant backend against the reference backend, per
// format pair, context length and data set.  Both backends get the same K/V and queries, through
// the SDK registry; the reference stores f32 and computes exact attention.
#include <atb/cli/decode_workload.hpp>
#include <atb/cli/host_options.hpp>
#include <atb/cli/synthetic_kv.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "format_pairs.hpp"

namespace atb::tool {
namespace {

constexpr std::array<std::array<const char*, 2>, 9> kDefaultPairs = {{{"q8_0", "q3_0"},
                                                                      {"q5_0", "q3_0"},
                                                                      {"q4_0", "q3_0"},
                                                                      {"uint2", "q3_0"},
                                                                      {"tq8", "tq8"},
                                                                      {"tq4", "tq4"},
                                                                      {"tq4", "tq3"},
                                                                      {"tq3", "tq3"},
                                                                      {"tqp4", "tq3"}}};

struct Errors {
  double relative_l2 = 0;  // ||out - ref|| / ||ref|| over every output row
  double min_cosine = 1;   // per (token, query head) output row
};

Errors compare(const host::HostTensor& out, const host::HostTensor& ref) {
  double diff = 0, norm = 0;
  Errors errors;
  for (int64_t t = 0; t < ref.size(0); ++t)
    for (int64_t h = 0; h < ref.size(1); ++h) {
      double dot = 0, nx = 0, ny = 0;
      for (int64_t d = 0; d < ref.size(2); ++d) {
        const double a = out.get(t, h, d), b = ref.get(t, h, d);
        diff += (a - b) * (a - b);
        norm += b * b;
        dot += a * b;
        nx += a * a;
        ny += b * b;
      }
      errors.min_cosine = std::min(errors.min_cosine, nx > 0 && ny > 0 ? dot / std::sqrt(nx * ny) : 1.0);
    }
  errors.relative_l2 = std::sqrt(diff / norm);
  return errors;
}

Expected<host::HostTensor> run_decode(const host::Plugin& plugin, const std::string& config,
                                      const cli::WorkloadShape& shape, cli::KvData data, uint64_t seed) {
  auto workload = cli::DecodeWorkload::create(plugin, config, shape, seed);
  if (!workload) return workload.error();
  ATB_RETURN_IF_ERROR(workload->fill(data, seed));
  ATB_RETURN_IF_ERROR(workload->decode_step());
  const auto& out = workload->output();
  host::HostTensor copy(out.dtype(), out.size(0), out.size(1), out.size(2));
  std::copy_n(out.bytes(), out.byte_size(), copy.bytes());
  return copy;
}

std::vector<int> parse_ints(const std::string& text) {
  std::vector<int> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) values.push_back(std::atoi(item.c_str()));
  return values;
}

}  // namespace

int fidelity_command(int argc, const char* const* argv) {
  auto flags = cli::host_flags("turboquant");
  for (auto& flag : pair_flags()) flags.push_back(flag);
  flags.push_back({"contexts", "LIST", "context lengths, comma-separated (default 1024,8192,32768)"});
  flags.push_back({"data", "SET", "normal, outliers, llm, both (normal and outliers) or all (default both)"});
  flags.push_back({"batch", "N", "sequences, each with its own data (default 2)"});
  flags.push_back({"query-heads", "N", "query heads (default 16)"});
  flags.push_back({"kv-heads", "N", "KV heads (default 8)"});
  flags.push_back({"head-size", "N", "head size (default 128)"});
  flags.push_back({"seed", "N", "seed of data and queries (default 0)"});
  auto arguments = cli::Arguments::parse(argc, argv, 2, flags);
  if (!arguments) {
    std::fprintf(stderr, "tq fidelity: %s\n", arguments.error().message().c_str());
    return 2;
  }
  if (arguments->has("help")) {
    std::printf(
        "usage: tq fidelity [flags]\n\nAttention-output error of a backend (default turboquant) against the reference "
        "backend (f32 cache)\non the same K/V and queries, per K/V format pair, context and data set.\n"
        "--attention-config adds keys to every pair's config (e.g. {\"threads\": 2}).\n\n%s",
        cli::flags_help(flags).c_str());
    return 0;
  }
  auto options = cli::read_host_options(*arguments, "turboquant");
  if (!options) {
    std::fprintf(stderr, "tq fidelity: %s\n", options.error().message().c_str());
    return 2;
  }
  const nlohmann::json base = nlohmann::json::parse(options->config_json, nullptr, false);
  auto batch = arguments->integer_or("batch", 2, 1, 64);
  auto query_heads = arguments->integer_or("query-heads", 16, 1, 1024);
  auto kv_heads = arguments->integer_or("kv-heads", 8, 1, 1024);
  auto head_size = arguments->integer_or("head-size", 128, 1, 1024);
  auto seed = arguments->integer_or("seed", 0, 0, std::numeric_limits<long long>::max());
  auto pairs = select_pairs(*arguments, base.is_object() ? base : nlohmann::json::object(), kDefaultPairs);
  const std::vector<int> contexts = parse_ints(arguments->value_or("contexts", "1024,8192,32768"));
  const std::string data_name = arguments->value_or("data", "both");
  if (Status error = cli::first_error(batch, query_heads, kv_heads, head_size, seed, pairs); !error) {
    std::fprintf(stderr, "tq fidelity: %s\n", error.message().c_str());
    return 2;
  }
  if (base.is_discarded() || !base.is_object()) {
    std::fprintf(stderr, "tq fidelity: --attention-config %s: allowed: a JSON object\n", options->config_json.c_str());
    return 2;
  }
  auto parsed_data = cli::parse_kv_data(data_name);
  if (!parsed_data) {
    std::fprintf(stderr, "tq fidelity: %s\n", parsed_data.error().message().c_str());
    return 2;
  }
  const std::vector<cli::KvData> datasets = *parsed_data;
  if (contexts.empty() || std::any_of(contexts.begin(), contexts.end(), [](int c) { return c < 1; })) {
    std::fprintf(stderr, "tq fidelity: --contexts %s: allowed: positive integers, comma-separated\n",
                 arguments->value_or("contexts", "").c_str());
    return 2;
  }

  const auto registry = host::Registry::scan(options->plugin_dirs);
  auto reference = registry.select("reference");
  auto chosen = registry.select(options->backend);
  if (!reference || !chosen) {
    std::fprintf(stderr, "tq fidelity: %s\n", (!reference ? reference : chosen).error().message().c_str());
    return 1;
  }
  cli::WorkloadShape shape;
  shape.num_query_heads = int(*query_heads);
  shape.num_kv_heads = int(*kv_heads);
  shape.head_size = int(*head_size);
  shape.dtype = ATB_DTYPE_F32;
  shape.batch = int(*batch);

  nlohmann::json rows = nlohmann::json::array();
  if (!options->json)
    std::printf("attention-output error vs reference (f32), %d query / %d KV heads, head size %d, batch %d\n",
                shape.num_query_heads, shape.num_kv_heads, shape.head_size, shape.batch);
  for (cli::KvData data : datasets) {
    if (!options->json) {
      std::printf("\ndata: %s\n%-6s %-6s", std::string(cli::kv_data_name(data)).c_str(), "K", "V");
      for (int context : contexts) std::printf(" | ctx %6d rel.err  min cos", context);
      std::printf("\n");
    }
    std::vector<host::HostTensor> references;
    for (int context : contexts) {
      shape.context = context;
      auto ref = run_decode(**reference, "{}", shape, data, uint64_t(*seed));
      if (!ref) {
        std::fprintf(stderr, "tq fidelity: reference: %s\n", ref.error().message().c_str());
        return 1;
      }
      references.push_back(std::move(*ref));
    }
    for (const FormatPair& pair : *pairs) {
      const nlohmann::json config = with_pair(base, pair.key.name, pair.value.name);
      if (!options->json)
        std::printf("%-6s %-6s", std::string(pair.key.name).c_str(), std::string(pair.value.name).c_str());
      for (size_t c = 0; c < contexts.size(); ++c) {
        shape.context = contexts[c];
        auto out = run_decode(**chosen, config.dump(), shape, data, uint64_t(*seed));
        if (!out) {
          std::fprintf(stderr, "\ntq fidelity: %s %s: %s\n", options->backend.c_str(), config.dump().c_str(),
                       out.error().message().c_str());
          return 1;
        }
        const Errors errors = compare(*out, references[c]);
        rows.push_back({{"data", cli::kv_data_name(data)},
                        {"k_quant", pair.key.name},
                        {"v_quant", pair.value.name},
                        {"context", contexts[c]},
                        {"relative_l2_error", errors.relative_l2},
                        {"min_cosine", errors.min_cosine}});
        if (!options->json) {
          std::printf(" |          %8.5f %8.5f", errors.relative_l2, errors.min_cosine);
          std::fflush(stdout);
        }
      }
      if (!options->json) std::printf("\n");
    }
  }
  if (options->json) std::cout << nlohmann::json{{"rows", rows}}.dump(2) << "\n";
  return 0;
}

}  // namespace atb::tool
