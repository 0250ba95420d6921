// Per-row cost of the turboquant plugin's kernels over encoded rows, AVX2 (f32 and integer)
// against the scalar oracle in
// the same run: one GQA group (4 query heads), head size 128, a span of 64 rows (the driver's, four
// 16-row pages) that stays in L1, so these are the compute costs that decode attention pays per
// cached token and KV head.
//
//   build/release/bin/code-kernels-bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include <atb/plugin/paged_attention.hpp>
#include <tq/rotation.hpp>
#include <tq/simd.hpp>

#include "avx2_code_kernels.hpp"
#include "avx2_int8_key_kernel.hpp"
#include "avx2_int8_value_kernel.hpp"
#include "scalar_code_kernels.hpp"

namespace atb::turboquant {
namespace {

constexpr int kHeadSize = 128;
constexpr int kGroup = 4;
constexpr int kTileRows = plugin::kSpanKeys;

std::unique_ptr<tq::Quantizer> quantizer_for(const std::string& name, tq::Role role) {
  return std::move(*tq::make_quantizer(*tq::find_format(role, name), kHeadSize));
}

// kTileRows encoded rows and the kernels' list of them.
struct EncodedTile {
  std::vector<uint8_t> bytes;
  std::vector<const uint8_t*> rows;
};

EncodedTile encoded_tile(const tq::Quantizer& quantizer) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  EncodedTile tile{std::vector<uint8_t>(quantizer.row_bytes() * kTileRows), {}};
  std::vector<float> x(kHeadSize);
  for (int j = 0; j < kTileRows; ++j) {
    for (float& v : x) v = normal(rng);
    quantizer.encode(x.data(), tile.bytes.data() + size_t(j) * quantizer.row_bytes());
    tile.rows.push_back(tile.bytes.data() + size_t(j) * quantizer.row_bytes());
  }
  return tile;
}

std::unique_ptr<KeyKernel> key_kernel(const tq::Quantizer& quantizer, const std::string& kernel) {
  if (kernel == "avx2_int8") return make_avx2_int8_key_kernel(quantizer);
  return kernel == "avx2" ? make_avx2_key_kernel(quantizer) : make_scalar_key_kernel(quantizer);
}

void score(benchmark::State& state, const std::string& format, const std::string& name) {
  const auto quantizer = quantizer_for(format, tq::Role::key);
  const auto kernel = key_kernel(*quantizer, name);
  if (!kernel) return state.SkipWithError(("no kernel for " + format).c_str());
  const EncodedTile tile = encoded_tile(*quantizer);
  const int stride = kHeadSize + kernel->extra_floats();
  std::vector<float> queries(size_t(kGroup) * stride, 0.25f), scores(size_t(kGroup) * kTileRows);
  for (int g = 0; g < kGroup; ++g) kernel->prepare(queries.data() + size_t(g) * stride);
  for (auto _ : state) {
    kernel->score(tile.rows.data(), kTileRows, queries.data(), kGroup, stride, scores.data());
    benchmark::DoNotOptimize(scores.data());
    benchmark::ClobberMemory();
  }
  state.counters["ns/row"] = benchmark::Counter(double(state.iterations()) * kTileRows,
                                                benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

std::unique_ptr<ValueKernel> value_kernel(const tq::Quantizer& quantizer, const std::string& kernel) {
  if (kernel == "avx2_int8") return make_avx2_int8_value_kernel(quantizer);
  return kernel == "avx2" ? make_avx2_value_kernel(quantizer) : make_scalar_value_kernel(quantizer);
}

void accumulate(benchmark::State& state, const std::string& format, const std::string& name) {
  const auto quantizer = quantizer_for(format, tq::Role::value);
  const auto kernel = value_kernel(*quantizer, name);
  if (!kernel) return state.SkipWithError(("no kernel for " + format).c_str());
  const EncodedTile tile = encoded_tile(*quantizer);
  std::vector<float> probs(size_t(kGroup) * kTileRows, 0.01f), acc(size_t(kGroup) * kHeadSize);
  for (auto _ : state) {
    kernel->accumulate(tile.rows.data(), kTileRows, probs.data(), kGroup, acc.data());
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  state.counters["ns/row"] = benchmark::Counter(double(state.iterations()) * kTileRows,
                                                benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// One row's encode as the backend writes it: rotate (for rotated formats), then quantize and pack.
void encode(benchmark::State& state, const std::string& format, tq::Role role, bool avx2) {
  const auto quantizer = quantizer_for(format, role);
  const tq::Rotation rotation(kHeadSize, 1, 0, 0);
  std::unique_ptr<tq::ScopedScalarCodec> scalar = avx2 ? nullptr : std::make_unique<tq::ScopedScalarCodec>();
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal;
  constexpr int kInputs = 64;
  std::vector<float> inputs(size_t(kInputs) * kHeadSize), x(kHeadSize);
  for (float& v : inputs) v = normal(rng);
  std::vector<uint8_t> row(quantizer->row_bytes());
  int i = 0;
  for (auto _ : state) {
    std::copy_n(inputs.data() + size_t(i++ % kInputs) * kHeadSize, kHeadSize, x.data());
    if (tq::is_rotated(quantizer->format())) rotation.rotate(x.data());
    quantizer->encode(x.data(), row.data());
    benchmark::DoNotOptimize(row.data());
    benchmark::ClobberMemory();
  }
}

int register_all() {
  for (const char* format : {"q8_0", "q4_0", "tq4"})
    for (bool avx2 : {false, true})
      benchmark::RegisterBenchmark((std::string("encode/K/") + format + (avx2 ? "/avx2" : "/scalar")).c_str(),
                                   [=](benchmark::State& state) { encode(state, format, tq::Role::key, avx2); });
  for (const char* format : {"q3_0", "tq3"})
    for (bool avx2 : {false, true})
      benchmark::RegisterBenchmark((std::string("encode/V/") + format + (avx2 ? "/avx2" : "/scalar")).c_str(),
                                   [=](benchmark::State& state) { encode(state, format, tq::Role::value, avx2); });
  for (const char* format : {"q8_0", "q4_0", "uint2", "tq4", "tq3", "tq2"})
    for (const char* kernel : {"scalar", "avx2", "avx2_int8"})
      benchmark::RegisterBenchmark((std::string("score/") + format + "/" + kernel).c_str(),
                                   [=](benchmark::State& state) { score(state, format, kernel); });
  for (const char* format : {"q3_0", "q4_0", "tq3", "tq4"})
    for (const char* kernel : {"scalar", "avx2", "avx2_int8"})
      benchmark::RegisterBenchmark((std::string("accumulate/") + format + "/" + kernel).c_str(),
                                   [=](benchmark::State& state) { accumulate(state, format, kernel); });
  return 0;
}
const int registered = register_all();

}  // namespace
}  // namespace atb::turboquant

BENCHMARK_MAIN();
