// tq verify: what each (K format, V format) pair costs in fidelity and saves in bytes, on a
// synthetic cache of a real model's shape: compression vs f16, K and V MSE, mean and minimum
// cosine, on N(0,1) data and on keys with outlier channels; then TurboQuant-MSE's distortion per
// bit width beside the Lloyd–Max figure.
#include <atb/cli/host_options.hpp>
#include <atb/cli/synthetic_kv.hpp>

#include <tq/byte_accounting.hpp>
#include <tq/codebooks.hpp>
#include <tq/format.hpp>
#include <tq/rotation.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>
#include <tuple>

#include "codec_fidelity.hpp"
#include "format_pairs.hpp"
#include "commands.hpp"

namespace atb::tool {
namespace {

using tq::Format;
using tq::Role;

// The seed's pairs, the other V widths, then TurboQuant at each width.
constexpr std::array<std::array<const char*, 2>, 24> kDefaultPairs = {
    {{"q8_0", "q3_0"},  {"int8", "q3_0"}, {"uint8", "q3_0"}, {"q5_0", "q3_0"}, {"q4_0", "q3_0"}, {"int4", "q3_0"},
     {"uint4", "q3_0"}, {"int2", "q3_0"}, {"uint2", "q3_0"}, {"q8_0", "q8_0"}, {"q8_0", "q5_0"}, {"q8_0", "q4_0"},
     {"q8_0", "q2_0"},  {"tq8", "tq8"},   {"tq6", "tq6"},    {"tq5", "tq5"},   {"tq4", "tq4"},   {"tq4", "tq3"},
     {"tq3", "tq3"},    {"tq2", "tq2"},   {"tqp4", "tq3"},   {"tqp3", "tq3"},  {"f16", "tq3"},   {"f16", "f16"}}};

nlohmann::json stats_json(const FidelityStats& stats) {
  return {{"mse", stats.mse}, {"mean_cosine", stats.mean_cosine}, {"min_cosine", stats.min_cosine}};
}

struct Options {
  CacheShape shape;
  uint64_t data_seed = 0;
  uint64_t rotation_seed = tq::kDefaultRotationSeed;
  std::vector<cli::KvData> datasets;
  bool json = false;
};

// Fidelity of each format once per (role, data set), shared by every pair that uses it.
class FidelityTable {
 public:
  explicit FidelityTable(const Options& options) : options_(options) {}
  Expected<FidelityStats> get(const Format& format, Role role, cli::KvData data) {
    const auto key = std::make_tuple(std::string(format.name), role, data);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    auto stats = measure_fidelity(format, role, data, options_.shape, options_.data_seed, options_.rotation_seed);
    if (stats) cache_.emplace(key, *stats);
    return stats;
  }

 private:
  const Options& options_;
  std::map<std::tuple<std::string, Role, cli::KvData>, FidelityStats> cache_;
};

void print_header(const Options& options) {
  const CacheShape& s = options.shape;
  std::printf(
      "tq verify: head size %d; cache of %d layers x %d KV heads x %d tokens (page %d); rotation seed 0x%016llx\n",
      s.head_size, s.layers, s.kv_heads, s.tokens, s.block_size, (unsigned long long)options.rotation_seed);
}

int run(const std::vector<FormatPair>& pairs, const Options& options) {
  FidelityTable table(options);
  nlohmann::json out;
  out["shape"] = {{"layers", options.shape.layers},
                  {"kv_heads", options.shape.kv_heads},
                  {"head_size", options.shape.head_size},
                  {"block_size", options.shape.block_size},
                  {"tokens", options.shape.tokens}};
  out["rotation_seed"] = options.rotation_seed;
  out["data_seed"] = options.data_seed;
  if (!options.json) print_header(options);
  const int d = options.shape.head_size;
  for (cli::KvData data : options.datasets) {
    nlohmann::json rows = nlohmann::json::array();
    if (!options.json) {
      std::printf("\ndata: %s\n", std::string(cli::kv_data_name(data)).c_str());
      std::printf("%-6s %-6s %9s %7s | %10s %10s %10s | %10s %10s %10s\n", "K", "V", "bytes K+V", "vs f16", "K MSE",
                  "K cos mean", "K cos min", "V MSE", "V cos mean", "V cos min");
    }
    for (const FormatPair& pair : pairs) {
      for (const auto& [format, role] : {std::pair{pair.key, Role::key}, std::pair{pair.value, Role::value}})
        if (std::string problem = tq::check_head_size(format, d); !problem.empty()) {
          std::fprintf(stderr, "tq verify: %s\n", problem.c_str());
          return 1;
        }
      auto k = table.get(pair.key, Role::key, data);
      auto v = table.get(pair.value, Role::value, data);
      if (!k || !v) {
        std::fprintf(stderr, "tq verify: %s\n", (!k ? k.error() : v.error()).message().c_str());
        return 1;
      }
      const size_t k_bytes = tq::row_bytes(pair.key, d), v_bytes = tq::row_bytes(pair.value, d);
      const double ratio = tq::compression_vs_f16(pair.key, pair.value, d);
      rows.push_back({{"k_quant", pair.key.name},
                      {"v_quant", pair.value.name},
                      {"k_bytes_per_token_per_head", k_bytes},
                      {"v_bytes_per_token_per_head", v_bytes},
                      {"compression_vs_f16", ratio},
                      {"k", stats_json(*k)},
                      {"v", stats_json(*v)}});
      if (!options.json)
        std::printf("%-6s %-6s %4zu+%-4zu %6.2fx | %10.6f %10.6f %10.6f | %10.6f %10.6f %10.6f\n",
                    std::string(pair.key.name).c_str(), std::string(pair.value.name).c_str(), k_bytes, v_bytes, ratio,
                    k->mse, k->mean_cosine, k->min_cosine, v->mse, v->mean_cosine, v->min_cosine);
    }
    out["datasets"].push_back({{"data", cli::kv_data_name(data)}, {"pairs", rows}});
  }

  // TurboQuant-MSE per bit width on N(0,1) keys: per-coordinate MSE is the codebook's distortion.
  nlohmann::json distortion = nlohmann::json::array();
  if (!options.json) {
    std::printf("\nTurboQuant-MSE distortion per coordinate, N(0,1) bf16 K, head size %d\n", d);
    std::printf("%-5s %10s %14s %16s %12s\n", "bits", "measured", "sphere LM", "unit-normal LM", "cos mean");
  }
  for (int bits = 1; bits <= 8; ++bits) {
    const Format format = *tq::find_format(Role::key, "tq" + std::to_string(bits));
    auto stats = table.get(format, Role::key, cli::KvData::normal);
    if (!stats) {
      std::fprintf(stderr, "tq verify: %s\n", stats.error().message().c_str());
      return 1;
    }
    const double sphere = tq::sphere_codebook(d, bits).distortion, normal = tq::unit_normal_codebook(bits).distortion;
    distortion.push_back({{"bits", bits},
                          {"measured_mse", stats->mse},
                          {"sphere_lloyd_max", sphere},
                          {"unit_normal_lloyd_max", normal},
                          {"mean_cosine", stats->mean_cosine}});
    if (!options.json)
      std::printf("%-5d %10.6f %14.6f %16.6f %12.6f\n", bits, stats->mse, sphere, normal, stats->mean_cosine);
  }
  out["turboquant_mse_distortion"] = distortion;
  if (options.json) std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace

int verify_command(int argc, const char* const* argv) {
  auto flags = cli::host_flags("(none: verify tests the codecs, not a backend)");
  for (auto& flag : pair_flags()) flags.push_back(flag);
  flags.push_back({"head-size", "N", "head size (default 128)"});
  flags.push_back({"layers", "N", "layers of the synthetic cache (default 28, Qwen3-0.6B)"});
  flags.push_back({"kv-heads", "N", "KV heads per layer (default 4)"});
  flags.push_back({"tokens", "N", "tokens per (layer, KV head) (default 256)"});
  flags.push_back({"page-size", "N", "tokens per page (default 16)"});
  flags.push_back({"data", "SET", "normal, outliers, llm, both (normal and outliers) or all (default both)"});
  flags.push_back({"seed", "N", "seed of the synthetic data (default 0)"});
  auto arguments = cli::Arguments::parse(argc, argv, 2, flags);
  if (!arguments) {
    std::fprintf(stderr, "tq verify: %s\n", arguments.error().message().c_str());
    return 2;
  }
  if (arguments->has("help")) {
    std::printf(
        "usage: tq verify [flags]\n\n"
        "Encodes a synthetic KV cache with each (K format, V format) pair and prints compression vs f16, MSE and\n"
        "cosine similarity of K and of V.  Data sets: N(0,1) rounded to bf16, and keys with %d outlier channels\n"
        "per head 10-20x larger than the rest.  --attention-config may give k_quant, v_quant and rotation_seed.\n\n%s",
        cli::kOutlierChannels, cli::flags_help(flags).c_str());
    return 0;
  }
  auto host = cli::read_host_options(*arguments, "");
  if (!host) {
    std::fprintf(stderr, "tq verify: %s\n", host.error().message().c_str());
    return 2;
  }
  const nlohmann::json config = nlohmann::json::parse(host->config_json, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    std::fprintf(stderr, "tq verify: --attention-config %s: allowed: a JSON object\n", host->config_json.c_str());
    return 2;
  }
  Options options;
  options.json = host->json;
  auto head_size = arguments->integer_or("head-size", 128, 1, tq::kMaxRotationSize);
  auto layers = arguments->integer_or("layers", 28, 1, 1024);
  auto kv_heads = arguments->integer_or("kv-heads", 4, 1, 1024);
  auto tokens = arguments->integer_or("tokens", 256, 1, 1 << 20);
  auto page = arguments->integer_or("page-size", 16, 1, 4096);
  auto seed = arguments->integer_or("seed", 0, 0, std::numeric_limits<long long>::max());
  const std::string data = arguments->value_or("data", "both");
  auto pairs = select_pairs(*arguments, config, kDefaultPairs);
  if (Status error = cli::first_error(head_size, layers, kv_heads, tokens, page, seed, pairs); !error) {
    std::fprintf(stderr, "tq verify: %s\n", error.message().c_str());
    return 2;
  }
  auto datasets = cli::parse_kv_data(data);
  if (!datasets) {
    std::fprintf(stderr, "tq verify: %s\n", datasets.error().message().c_str());
    return 2;
  }
  options.datasets = *datasets;
  if (config.contains("rotation_seed")) {
    if (!config["rotation_seed"].is_number_unsigned()) {
      std::fprintf(stderr, "tq verify: rotation_seed = %s: allowed: an unsigned integer\n",
                   config["rotation_seed"].dump().c_str());
      return 2;
    }
    options.rotation_seed = config["rotation_seed"].get<uint64_t>();
  }
  options.shape = {int(*layers), int(*kv_heads), int(*head_size), int(*page), int(*tokens)};
  options.data_seed = uint64_t(*seed);
  return run(*pairs, options);
}

}  // namespace atb::tool
