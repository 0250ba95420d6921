// tq run: the main job.  Serves a model's shape through every layer with the chosen backend
// configurations and the `reference` backend on the same inputs (prefill, then decode steps), and
// prints what the compressed cache buys: bytes per token, tokens that fit in a memory budget,
// attention-output error against the reference, and time per decode step.
#include <atb/cli/host_options.hpp>
#include <atb/cli/synthetic_kv.hpp>
#include <atb/cli/variant_label.hpp>
#include <atb/host/paged_kv.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <unistd.h>

#include "commands.hpp"

namespace atb::tool {
namespace {

struct ModelShape {
  const char* name;
  int layers, query_heads, kv_heads, head_size;
  float soft_cap;
};

constexpr ModelShape kModelShapes[] = {{"qwen3-0.6b", 28, 16, 8, 128, 0}, {"qwen3-8b", 36, 32, 8, 128, 0},
                                       {"llama-3-8b", 32, 32, 8, 128, 0}, {"llama-3.2-1b", 16, 32, 8, 64, 0},
                                       {"mistral-7b", 32, 32, 8, 128, 0}, {"gemma-2-2b", 26, 8, 4, 256, 50}};

// One configuration served through every layer: its backends, pools and measurements.
struct Variant {
  std::string label;
  const host::Plugin* plugin;
  std::string config;
  std::vector<host::Backend> layers;
  std::vector<host::PagePool> pools;
  uint64_t page_bytes_per_layer = 0;  // summed over layers
  uint64_t bytes_per_token = 0;       // K + V, every layer and KV head
  double decode_seconds = 0;          // summed over decode steps
  double error_sq = 0, reference_sq = 0;
  double cosine_sum = 0;  // per output row (token, query head)
  uint64_t rows = 0;
};

class Progress {
 public:
  explicit Progress(int total) : total_(total), start_(std::chrono::steady_clock::now()), tty_(isatty(2)) {}
  void advance(const char* phase) {
    ++done_;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (!tty_ || elapsed < 1.0) return;  // a bar only for what takes more than a second
    const int width = 30, filled = width * done_ / total_;
    std::fprintf(stderr, "\r[%.*s%*s] %3d%% %-8s %5.1fs", filled, "==============================", width - filled, "",
                 100 * done_ / total_, phase, elapsed);
    if (done_ == total_) std::fprintf(stderr, "\n");
  }

 private:
  int total_, done_ = 0;
  std::chrono::steady_clock::time_point start_;
  bool tty_;
};

void fill(host::HostTensor& tensor, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < tensor.size(0); ++i)
    for (int64_t j = 0; j < tensor.size(1); ++j)
      for (int64_t k = 0; k < tensor.size(2); ++k) tensor.set(i, j, k, normal(rng));
}

// K/V of the step's new tokens for one layer from the synthetic data set (positions per sequence).
void fill_kv(host::HostTensor& key, host::HostTensor& value, const host::StepBatch& batch, int layer, cli::KvData data,
             uint64_t seed) {
  const int d = int(key.size(2));
  for (int32_t s = 0; s < batch.num_seqs; ++s) {
    const int32_t begin = batch.query_start_loc[size_t(s)], end = batch.query_start_loc[size_t(s) + 1];
    const int64_t first_position = batch.seq_lens[size_t(s)] - (end - begin);
    for (int h = 0; h < key.size(1); ++h) {
      const auto slot = cli::generator_slot(data, layer, int(batch.sequence_ids[size_t(s)]), first_position);
      const auto k = cli::synthetic_kv(data, true, slot.layer, h, slot.first_token, end - begin, d, seed);
      const auto v = cli::synthetic_kv(data, false, slot.layer, h, slot.first_token, end - begin, d, seed);
      for (int32_t t = begin; t < end; ++t)
        for (int i = 0; i < d; ++i) {
          key.set(t, h, i, k[size_t(t - begin) * size_t(d) + size_t(i)]);
          value.set(t, h, i, v[size_t(t - begin) * size_t(d) + size_t(i)]);
        }
    }
  }
}

std::string format_bytes(double bytes) {
  char text[32];
  if (bytes >= 1e9)
    std::snprintf(text, sizeof text, "%.2f GB", bytes / 1e9);
  else if (bytes >= 1e6)
    std::snprintf(text, sizeof text, "%.1f MB", bytes / 1e6);
  else if (bytes >= 1e3)
    std::snprintf(text, sizeof text, "%.1f KB", bytes / 1e3);
  else
    std::snprintf(text, sizeof text, "%.0f B", bytes);
  return text;
}

Expected<uint64_t> parse_memory(const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  const std::string unit = end ? end : "";
  double scale = 0;
  if (unit == "GiB" || unit == "G" || unit == "GB")
    scale = unit == "GB" ? 1e9 : double(1ull << 30);
  else if (unit == "MiB" || unit == "M" || unit == "MB")
    scale = unit == "MB" ? 1e6 : double(1ull << 20);
  else if (unit.empty())
    scale = 1;
  if (!(value > 0) || scale == 0)
    return Status::invalid("--kv-memory " + text + ": allowed: a positive size such as 8GiB, 512MiB or 4GB");
  return uint64_t(value * scale);
}

}  // namespace

int run_command(int argc, const char* const* argv) {
  auto flags = cli::host_flags("turboquant");
  for (auto& flag : flags)
    if (flag.name == "attention-config") {
      flag.repeatable = true;
      flag.help =
          "backend configuration, a JSON object; repeatable (default: {\"k_quant\":\"q8_0\",\"v_quant\":\"q3_0\"} and "
          "{\"k_quant\":\"tq4\",\"v_quant\":\"tq3\"})";
    }
  std::string shapes;
  for (const auto& shape : kModelShapes) shapes += std::string(shapes.empty() ? "" : ", ") + shape.name;
  flags.push_back({"model-shape", "NAME", "model shape: " + shapes + " (default qwen3-0.6b)"});
  flags.push_back({"context", "N", "prompt tokens per sequence (default 1024)"});
  flags.push_back({"batch", "N", "sequences served together (default 2)"});
  flags.push_back({"decode-steps", "N", "decode steps after the prefill (default 16)"});
  flags.push_back({"kv-memory", "SIZE", "KV-cache memory budget for the capacity column (default 8GiB)"});
  flags.push_back(
      {"data", "SET", "normal, outliers (K with outlier channels) or llm (LLM-like K and V; default normal)"});
  flags.push_back({"seed", "N", "seed of inputs (default 0)"});
  auto arguments = cli::Arguments::parse(argc, argv, 2, flags);
  if (!arguments) {
    std::fprintf(stderr, "tq run: %s\n", arguments.error().message().c_str());
    return 2;
  }
  if (arguments->has("help")) {
    std::printf(
        "usage: tq run [flags]\n\nServes a model's shape (prefill, then decode steps, every layer) with each backend\n"
        "configuration and with the reference backend on the same inputs, then prints bytes per token, tokens that\n"
        "fit in --kv-memory, attention-output error against the reference and time per decode step.\n\n%s",
        cli::flags_help(flags).c_str());
    return 0;
  }
  auto options = cli::read_host_options(*arguments, "turboquant");
  auto context = arguments->integer_or("context", 1024, 1, 1 << 20);
  auto batch = arguments->integer_or("batch", 2, 1, 256);
  auto steps = arguments->integer_or("decode-steps", 16, 1, 1 << 16);
  auto seed = arguments->integer_or("seed", 0, 0, std::numeric_limits<long long>::max());
  auto memory = parse_memory(arguments->value_or("kv-memory", "8GiB"));
  const std::string shape_name = arguments->value_or("model-shape", "qwen3-0.6b");
  const std::string data_name = arguments->value_or("data", "normal");
  if (Status error = cli::first_error(options, context, batch, steps, seed, memory); !error) {
    std::fprintf(stderr, "tq run: %s\n", error.message().c_str());
    return 2;
  }
  const ModelShape* model = nullptr;
  for (const auto& shape : kModelShapes)
    if (shape_name == shape.name) model = &shape;
  const auto datasets = cli::parse_kv_data(data_name);
  if (!model || !datasets || datasets->size() != 1) {
    std::fprintf(stderr, "tq run: --model-shape %s --data %s: allowed: %s; normal, outliers, llm\n", shape_name.c_str(),
                 data_name.c_str(), shapes.c_str());
    return 2;
  }
  const cli::KvData data = datasets->front();

  const auto registry = host::Registry::scan(options->plugin_dirs);
  auto reference = registry.select("reference");
  auto chosen = registry.select(options->backend);
  if (!reference || !chosen) {
    std::fprintf(stderr, "tq run: %s\n", (!reference ? reference : chosen).error().message().c_str());
    return 1;
  }
  std::vector<std::string> configs = arguments->values("attention-config");
  if (configs.empty() && options->backend == "turboquant")
    configs = {R"({"k_quant":"q8_0","v_quant":"q3_0"})", R"({"k_quant":"tq4","v_quant":"tq3"})"};
  if (configs.empty()) configs = {"{}"};

  std::vector<Variant> variants;
  variants.push_back({"reference (f16 cache)", *reference, R"({"cache_dtype":"f16"})", {}, {}, 0, 0, 0, 0, 0});
  for (const auto& config : configs)
    variants.push_back({cli::variant_label(options->backend, config), *chosen, config, {}, {}, 0, 0, 0, 0, 0});

  const int block_size = 16;
  const int64_t pages = int64_t(*batch) * ((*context + *steps + block_size - 1) / block_size);
  for (Variant& variant : variants)
    for (int layer = 0; layer < model->layers; ++layer) {
      atb_layer_spec spec =
          host::standard_layer_spec(model->query_heads, model->kv_heads, model->head_size, ATB_DTYPE_F32, block_size);
      spec.layer_index = layer;
      spec.num_layers = model->layers;
      spec.logits_soft_cap = model->soft_cap;
      auto backend = variant.plugin->create_backend(spec, variant.config);
      if (!backend) {
        std::fprintf(stderr, "tq run: %s %s: %s\n", variant.label.c_str(), variant.config.c_str(),
                     backend.error().message().c_str());
        return 1;
      }
      const auto cache = *backend->kv_cache_spec();
      auto pool = host::PagePool::allocate(cache, pages);
      if (!pool) {
        std::fprintf(stderr, "tq run: %s\n", pool.error().message().c_str());
        return 1;
      }
      variant.page_bytes_per_layer += cache.page_bytes;
      variant.bytes_per_token +=
          uint64_t(model->kv_heads) * (cache.k_bytes_per_token_per_head + cache.v_bytes_per_token_per_head);
      variant.layers.push_back(std::move(*backend));
      variant.pools.push_back(std::move(*pool));
    }

  // The same page schedule for every layer and backend; inputs generated once per (step, layer).
  host::PagedKvManager manager(block_size, pages, 7);
  const int prefill_chunk = 512;
  std::vector<std::vector<host::PagedKvManager::SequenceStep>> schedule;
  for (int done = 0; done < *context; done += prefill_chunk) {
    std::vector<host::PagedKvManager::SequenceStep> step;
    for (int s = 0; s < *batch; ++s) step.push_back({s, int32_t(std::min<long long>(prefill_chunk, *context - done))});
    schedule.push_back(step);
  }
  const size_t prefill_steps = schedule.size();
  for (int i = 0; i < *steps; ++i) {
    std::vector<host::PagedKvManager::SequenceStep> step;
    for (int s = 0; s < *batch; ++s) step.push_back({s, 1});
    schedule.push_back(step);
  }
  if (!options->json)
    std::printf(
        "tq run: %s shape (%d layers, %d query / %d KV heads, head size %d), batch %lld x %lld prompt tokens, "
        "%lld decode steps\n",
        model->name, model->layers, model->query_heads, model->kv_heads, model->head_size, *batch, *context, *steps);
  Progress progress(int(schedule.size()) * model->layers);
  std::mt19937_64 rng(uint64_t(*seed) ^ 0x51a7e5);
  for (size_t step_index = 0; step_index < schedule.size(); ++step_index) {
    auto step = manager.schedule(schedule[step_index]);
    if (!step) {
      std::fprintf(stderr, "tq run: %s\n", step.error().message().c_str());
      return 1;
    }
    const bool decoding = step_index >= prefill_steps;
    const int32_t tokens = step->num_tokens;
    for (int layer = 0; layer < model->layers; ++layer) {
      host::HostTensor query(ATB_DTYPE_F32, tokens, model->query_heads, model->head_size);
      host::HostTensor key(ATB_DTYPE_F32, tokens, model->kv_heads, model->head_size);
      host::HostTensor value(ATB_DTYPE_F32, tokens, model->kv_heads, model->head_size);
      fill(query, rng);
      fill_kv(key, value, *step, layer, data, uint64_t(*seed));
      host::HostTensor reference_out(ATB_DTYPE_F32, tokens, model->query_heads, model->head_size);
      for (size_t v = 0; v < variants.size(); ++v) {
        Variant& variant = variants[v];
        host::HostTensor out(ATB_DTYPE_F32, tokens, model->query_heads, model->head_size);
        const auto start = std::chrono::steady_clock::now();
        const Status status = variant.layers[size_t(layer)].forward(
            host::make_forward_args(variant.pools[size_t(layer)], *step, query.descriptor(), key.descriptor(),
                                    value.descriptor(), out.descriptor()));
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (!status) {
          std::fprintf(stderr, "\ntq run: %s layer %d: %s\n", variant.label.c_str(), layer, status.message().c_str());
          return 1;
        }
        if (decoding) variant.decode_seconds += seconds;
        if (v == 0) {
          std::copy_n(out.bytes(), out.byte_size(), reference_out.bytes());
          continue;
        }
        const float* a = reinterpret_cast<const float*>(out.bytes());
        const float* b = reinterpret_cast<const float*>(reference_out.bytes());
        for (size_t row = 0; row < out.byte_size() / sizeof(float) / size_t(model->head_size); ++row) {
          double dot = 0, norm_a = 0, norm_b = 0;
          for (size_t i = row * size_t(model->head_size); i < (row + 1) * size_t(model->head_size); ++i) {
            variant.error_sq += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
            variant.reference_sq += double(b[i]) * b[i];
            dot += double(a[i]) * b[i];
            norm_a += double(a[i]) * a[i];
            norm_b += double(b[i]) * b[i];
          }
          variant.cosine_sum += norm_a > 0 && norm_b > 0 ? dot / std::sqrt(norm_a * norm_b) : 1.0;
          ++variant.rows;
        }
      }
      progress.advance(decoding ? "decode" : "prefill");
    }
  }

  nlohmann::json rows = nlohmann::json::array();
  const Variant& baseline = variants[0];
  const double baseline_step = baseline.decode_seconds / double(*steps);
  int width = 44;  // row names are printed whole
  for (const Variant& variant : variants) width = std::max(width, int(variant.label.size()));
  if (!options->json) {
    std::printf("\n%-*s %11s %7s %11s %10s %10s %15s %7s\n", width, "backend", "bytes/token", "vs f16", "tokens fit",
                "out error", "out cos", "ms/decode step", "speed");
  }
  for (const Variant& variant : variants) {
    const double per_step = variant.decode_seconds / double(*steps);
    const uint64_t fit = *memory / variant.page_bytes_per_layer * block_size;
    const double error = variant.reference_sq > 0 ? std::sqrt(variant.error_sq / variant.reference_sq) : 0;
    const double cosine = variant.rows ? variant.cosine_sum / double(variant.rows) : 1.0;
    rows.push_back({{"backend", variant.label},
                    {"bytes_per_token", variant.bytes_per_token},
                    {"mean_output_cosine", cosine},
                    {"compression_vs_f16", double(baseline.bytes_per_token) / double(variant.bytes_per_token)},
                    {"tokens_in_budget", fit},
                    {"relative_output_error", error},
                    {"ms_per_decode_step", per_step * 1e3},
                    {"speedup_vs_reference", baseline_step / per_step}});
    if (!options->json)
      std::printf("%-*s %11s %6.2fx %11llu %10s %10s %15.2f %6.2fx\n", width, variant.label.c_str(),
                  format_bytes(double(variant.bytes_per_token)).c_str(),
                  double(baseline.bytes_per_token) / double(variant.bytes_per_token), (unsigned long long)fit,
                  &variant == &baseline ? "-" : std::to_string(error).substr(0, 7).c_str(),
                  &variant == &baseline ? "-" : std::to_string(cosine).substr(0, 7).c_str(), per_step * 1e3,
                  baseline_step / per_step);
  }
  if (!options->json)
    std::printf(
        "\nbytes/token: K+V of one token over all %d layers; tokens fit: in %s of KV cache; output error: "
        "||out - reference|| / ||reference|| over every layer and step, out cos: mean cosine of output rows\n"
        "(reference: f16 cache, exact attention); ms/decode step: all layers, batch %lld\n",
        model->layers, arguments->value_or("kv-memory", "8GiB").c_str(), *batch);
  else
    std::cout << nlohmann::json{{"model_shape", model->name}, {"rows", rows}}.dump(2) << "\n";
  return 0;
}

}  // namespace atb::tool
