// A soak: sequences arrive, grow through chunked prefill and decode in mixed batches, end, and free
// pages that later sequences reuse, on three layers forwarded from three threads at once (two
// turboquant layers and a reference one, each with its own pool).  Every step, the pages of the
// sequences outside the batch must not change; every 4th step the outputs are checked against the
// f64 oracle over each layer's cache as stored (turboquant: its codec's decode).  Bounded by steps and
// by time: ATB_SOAK_SECONDS (default 10) per layer; the figures are printed.  Two of the layers run
// two worker threads each, so ThreadSanitizer (.ci/run) sees the plugins' pools under load too.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../support/decoded_cache.hpp"
#include "../support/oracle_bounds.hpp"
#include "../support/plugins.hpp"
#include "../support/scenario.hpp"

namespace atb::test {
namespace {

struct SoakLayer {
  std::string backend, config, k_quant, v_quant;  // formats: turboquant only
  int32_t dtype;
};

struct SoakFigures {
  int64_t steps = 0, tokens = 0, sequences = 0, pages_freed = 0, checked_tokens = 0;
  double worst_ratio = 0;
  std::string failure;
};

double soak_seconds() {
  const char* text = std::getenv("ATB_SOAK_SECONDS");
  return text ? std::max(0.1, std::atof(text)) : 10.0;
}

// The pages of the batch's sequences (what a forward may write); every other page must keep its bytes.
std::set<int32_t> pages_of(const host::StepBatch& batch, int32_t block_size) {
  std::set<int32_t> pages;
  for (int32_t s = 0; s < batch.num_seqs; ++s)
    for (int32_t b = 0; b < (batch.seq_lens[size_t(s)] + block_size - 1) / block_size; ++b)
      pages.insert(batch.block_tables[size_t(s) * batch.block_table_stride + b]);
  return pages;
}

SoakFigures soak_layer(const SoakLayer& layer, uint64_t seed, double seconds) {
  SoakFigures figures;
  LayerShape shape;
  shape.num_query_heads = 8;
  shape.num_kv_heads = 2;
  shape.head_size_k = shape.head_size_v = 128;
  shape.block_size = 16;
  shape.dtype = layer.dtype;
  auto backend = create_backend(layer.backend, shape.layer_spec(), layer.config);
  if (!backend) return {.failure = backend.error().message()};
  constexpr int64_t kPages = 160;
  Scenario scenario(shape, *backend, kPages, seed, seed + 1);
  std::optional<DecodedCache> decoded;
  if (layer.backend == "turboquant") {
    decoded.emplace(shape, layer.k_quant, layer.v_quant, 0, 0);
    scenario.set_stored_row(decoded->stored_row());
  }
  std::mt19937_64& rng = scenario.rng();
  std::map<int64_t, int32_t> lengths;  // active sequences
  int64_t next_id = 0;
  const Bound bound = bound_for(shape.dtype);
  const host::PagePool& pool = scenario.pool();
  const auto pages_needed = [&](int32_t tokens) { return (tokens + shape.block_size - 1) / shape.block_size; };
  const auto start = std::chrono::steady_clock::now();
  for (int step = 0; step < 2000; ++step) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds) break;
    // Sequences end (their pages go back to the free list), the rest decode or take a chunk.
    std::vector<host::PagedKvManager::SequenceStep> steps;
    int64_t pages_in_use = 0;
    for (auto it = lengths.begin(); it != lengths.end();) {
      if (std::bernoulli_distribution(0.12)(rng)) {
        figures.pages_freed += pages_needed(it->second);
        scenario.release(it->first);
        it = lengths.erase(it);
        continue;
      }
      const int32_t grow =
          std::bernoulli_distribution(0.7)(rng) ? 1 : std::uniform_int_distribution<int32_t>(2, 40)(rng);
      steps.push_back({it->first, grow});
      pages_in_use += pages_needed(it->second + grow);
      ++it;
    }
    // New sequences while their prompts fit in the pool.
    for (int arrivals = std::uniform_int_distribution<int>(0, 2)(rng); arrivals > 0; --arrivals) {
      const int32_t prompt = std::uniform_int_distribution<int32_t>(1, 300)(rng);
      if (pages_in_use + pages_needed(prompt) > kPages) break;
      pages_in_use += pages_needed(prompt);
      steps.push_back({next_id++, prompt});
      ++figures.sequences;
    }
    // Steps that would not fit the pool wait for a later step.
    while (pages_in_use > kPages && !steps.empty()) {
      const auto& last = steps.back();
      const int32_t held = lengths.count(last.sequence_id) ? lengths[last.sequence_id] : 0;
      pages_in_use -= pages_needed(held + last.new_tokens) - pages_needed(held);
      if (held == 0) --figures.sequences;
      steps.pop_back();
    }
    if (steps.empty()) continue;
    std::shuffle(steps.begin(), steps.end(), rng);

    const std::vector<std::byte> before(pool.data(), pool.data() + pool.num_pages() * pool.stride_bytes());
    auto out = scenario.step(steps);
    if (!out) {
      figures.failure = "step " + std::to_string(step) + ": " + out.error().message();
      return figures;
    }
    for (const auto& s : steps) lengths[s.sequence_id] += s.new_tokens;
    const std::set<int32_t> written = pages_of(out->batch, shape.block_size);
    for (int64_t page = 0; page < pool.num_pages(); ++page) {
      const size_t offset = size_t(page) * pool.stride_bytes();
      if (!written.count(int32_t(page)) &&
          std::memcmp(before.data() + offset, pool.data() + offset, pool.page_bytes()) != 0) {
        figures.failure = "step " + std::to_string(step) + " changed page " + std::to_string(page) +
                          ", which holds no sequence of its batch";
        return figures;
      }
    }
    ++figures.steps;
    figures.tokens += out->batch.num_tokens;
    if (step % 4 == 0) {
      const auto comparison = scenario.compare(*out, bound.atol, bound.rtol);
      figures.worst_ratio = std::max(figures.worst_ratio, comparison.worst_ratio);
      figures.checked_tokens += comparison.checked_tokens;
    }
  }
  return figures;
}

TEST(Soak, SequencesChurnThroughThePoolsOfThreeLayersAtOnce) {
  const uint64_t seed = test_seed();
  const double seconds = soak_seconds();
  // The exact kernels (`avx2`, `scalar`), so that the f64 oracle's bounds hold.
  const std::vector<SoakLayer> layers = {
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3","kernel":"avx2","threads":1})", "tq4", "tq3", ATB_DTYPE_F32},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q3_0","kernel":"avx2","threads":2})", "q8_0", "q3_0",
       ATB_DTYPE_F16},
      {"reference", R"({"threads":2})", "", "", ATB_DTYPE_BF16}};
  std::vector<SoakFigures> figures(layers.size());
  std::vector<std::thread> threads;
  for (size_t l = 0; l < layers.size(); ++l)
    threads.emplace_back([&, l] { figures[l] = soak_layer(layers[l], seed + l, seconds); });
  for (auto& thread : threads) thread.join();
  for (size_t l = 0; l < layers.size(); ++l) {
    const SoakFigures& f = figures[l];
    std::printf(
        "soak %s %s: %lld steps, %lld tokens, %lld sequences, %lld pages freed for reuse, %lld tokens "
        "checked, worst error %.3f of the bound\n",
        layers[l].backend.c_str(), layers[l].config.c_str(), (long long)f.steps, (long long)f.tokens,
        (long long)f.sequences, (long long)f.pages_freed, (long long)f.checked_tokens, f.worst_ratio);
    EXPECT_TRUE(f.failure.empty()) << layers[l].config << ": " << f.failure;
    EXPECT_GE(f.steps, 3) << layers[l].config;  // a few even under ThreadSanitizer's slowdown
    EXPECT_GT(f.pages_freed, 0) << layers[l].config << ": no page was freed, so none was reused";
    EXPECT_LE(f.worst_ratio, 1.0) << layers[l].config << " (seed " << seed + l << ")";
  }
}

}  // namespace
}  // namespace atb::test
