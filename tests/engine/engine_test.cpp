// The small engine: a tiny random checkpoint written by the test (no shared files needed) for loading
// errors and for KV-cache correctness through both plugins; and, when ../shared/models is present, the
// reference figure of PROVENANCE.md reproduced through the reference backend.
#include <gtest/gtest.h>

#include <atb/engine/engine.hpp>
#include <atb/engine/evaluation.hpp>
#include <atb/engine/tokenizer.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "../support/plugins.hpp"
#include "../support/seed.hpp"
#include "../support/temp_file.hpp"

namespace atb::engine {
namespace {

namespace fs = std::filesystem;

struct TinyModel {
  int32_t header[7] = {64, 96, 2, 2, 1, 7, 32};  // dim, hidden, layers, heads, kv heads, vocab, seq_len
};

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("atb_engine_test_" + std::to_string(::getpid()) + "_" + name);
}

// A valid checkpoint of the tiny shape with random weights (RoPE tables computed as llama2.c does).
fs::path write_checkpoint(const TinyModel& model, uint64_t seed, size_t drop_bytes = 0) {
  const int dim = model.header[0], hidden = model.header[1], layers = model.header[2], heads = model.header[3],
            kv = model.header[4], vocab = model.header[5], seq = model.header[6];
  const int hd = dim / heads, kv_dim = kv * hd;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  std::vector<float> data;
  const auto random = [&](size_t count) {
    for (size_t i = 0; i < count; ++i) data.push_back(normal(rng));
  };
  const auto ones = [&](size_t count) { data.insert(data.end(), count, 1.0f); };
  random(size_t(vocab) * dim);
  ones(size_t(layers) * dim);
  random(size_t(layers) * dim * dim);
  random(size_t(layers) * kv_dim * dim * 2);
  random(size_t(layers) * dim * dim);
  ones(size_t(layers) * dim);
  random(size_t(layers) * hidden * dim * 3);
  ones(size_t(dim));
  for (int part = 0; part < 2; ++part)
    for (int p = 0; p < seq; ++p)
      for (int j = 0; j < hd / 2; ++j) {
        const double angle = p / std::pow(10000.0, 2.0 * j / hd);
        data.push_back(float(part == 0 ? std::cos(angle) : std::sin(angle)));
      }
  const fs::path path = temp_path("model_" + std::to_string(seed) + "_" + std::to_string(drop_bytes) + ".bin");
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(model.header), sizeof model.header);
  out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size() * sizeof(float) - drop_bytes));
  return path;
}

test::TempFile write_tokenizer(int tokens) {
  test::TempFile file("tokenizer_" + std::to_string(tokens) + ".bin");
  std::ofstream out(file.path(), std::ios::binary);
  const int32_t max_length = 5;
  out.write(reinterpret_cast<const char*>(&max_length), 4);
  for (int i = 0; i < tokens; ++i) {
    const float score = 0;
    const std::string piece = i < 3 ? std::string(i == 0   ? "<unk>"
                                                  : i == 1 ? "<s>"
                                                           : "</s>")
                                    : std::string(1, char('a' + i - 3));
    const int32_t length = int32_t(piece.size());
    out.write(reinterpret_cast<const char*>(&score), 4);
    out.write(reinterpret_cast<const char*>(&length), 4);
    out.write(piece.data(), length);
  }
  return file;
}

TEST(Checkpoint, TruncatedFilesAreRefusedWithTheirSizes) {
  const auto path = write_checkpoint(TinyModel{}, 1, 4);
  auto loaded = load_checkpoint(path);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("truncated or corrupt"), std::string::npos) << loaded.error().message();
  EXPECT_FALSE(load_checkpoint(temp_path("does_not_exist.bin")));
  fs::remove(path);
}

TEST(Checkpoint, ImpossibleHeadersNameTheField) {
  for (auto [field, index, value] : {std::tuple{"n_heads", 3, 0},
                                     {"dim", 0, -64},
                                     {"n_kv_heads", 4, 5},
                                     {"seq_len", 6, 1 << 30},
                                     {"vocab_size", 5, 0}}) {
    TinyModel model;
    model.header[index] = value;
    const auto path = write_checkpoint(TinyModel{}, 2);
    {
      std::fstream patch(path, std::ios::binary | std::ios::in | std::ios::out);
      patch.write(reinterpret_cast<const char*>(model.header), sizeof model.header);
    }
    auto loaded = load_checkpoint(path);
    ASSERT_FALSE(loaded) << field;
    EXPECT_NE(loaded.error().message().find(field), std::string::npos) << loaded.error().message();
    fs::remove(path);
  }
  // Heads that do not divide the model dimension.
  TinyModel odd;
  odd.header[3] = 3;
  odd.header[4] = 1;
  const auto path = write_checkpoint(TinyModel{}, 3);
  {
    std::fstream patch(path, std::ios::binary | std::ios::in | std::ios::out);
    patch.write(reinterpret_cast<const char*>(odd.header), sizeof odd.header);
  }
  auto loaded = load_checkpoint(path);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("n_heads divides dim"), std::string::npos) << loaded.error().message();
  fs::remove(path);
}

TEST(Tokenizer, AVocabularyOfAnotherSizeDoesNotMatch) {
  const auto file = write_tokenizer(6);
  auto tokenizer = Tokenizer::load(file.string(), 7);
  ASSERT_FALSE(tokenizer);
  EXPECT_NE(tokenizer.error().message().find("do not match"), std::string::npos) << tokenizer.error().message();
  auto matching = Tokenizer::load(write_tokenizer(7).string(), 7);
  ASSERT_TRUE(matching) << matching.error().message();
  EXPECT_EQ(matching->encode("abcd").value(), (std::vector<int>{3, 4, 5, 6}));
  EXPECT_FALSE(matching->encode("abz"));  // 'z' has no token
}

// A character outside the vocabulary is named by its code point and byte offset (not as a byte).
TEST(Tokenizer, NamesACharacterOutsideTheVocabulary) {
  auto tokenizer = Tokenizer::load(write_tokenizer(7).string(), 7);
  ASSERT_TRUE(tokenizer) << tokenizer.error().message();
  const struct {
    std::string text, expected;
  } cases[] = {
      {"ab\xC3\xA9", "character \"\xC3\xA9\" (U+00E9) at byte offset 2"},
      {"a\xE2\x82\xAC", "character \"\xE2\x82\xAC\" (U+20AC) at byte offset 1"},
      {"abc\x07", "character (U+0007) at byte offset 3"},
      {"a\xFF", "byte 0xFF at byte offset 1 (not the start of a UTF-8 character)"},
      {"a\xC3", "byte 0xC3 at byte offset 1 (not the start of a UTF-8 character)"},
  };
  for (const auto& c : cases) {
    auto tokens = tokenizer->encode(c.text);
    ASSERT_FALSE(tokens) << c.expected;
    EXPECT_NE(tokens.error().message().find(c.expected), std::string::npos) << tokens.error().message();
  }
}

// Fewer than two tokens leave nothing to predict: refused, not a mean of 0 / 0.
TEST(Engine, EvaluationRefusesATextWithNothingToPredict) {
  const auto path = write_checkpoint(TinyModel{}, test::test_seed());
  const host::Plugin* plugin = test::build_plugin("reference");
  ASSERT_NE(plugin, nullptr);
  auto checkpoint = load_checkpoint(path);
  ASSERT_TRUE(checkpoint) << checkpoint.error().message();
  auto engine = Engine::create(*checkpoint, *plugin, "{}", 1 << 20, 1);
  ASSERT_TRUE(engine) << engine.error().message();
  for (const std::vector<int>& tokens : {std::vector<int>{}, std::vector<int>{3}}) {
    auto result = evaluate(*engine, tokens, 8, 1);
    ASSERT_FALSE(result) << tokens.size() << " tokens";
    EXPECT_NE(result.error().message().find("at least 2"), std::string::npos) << result.error().message();
  }
  auto two = evaluate(*engine, {3, 4}, 8, 1);
  ASSERT_TRUE(two) << two.error().message();
  EXPECT_EQ(two->predictions, 1u);
  EXPECT_TRUE(std::isfinite(two->nats));
  fs::remove(path);
}

// Decoding token by token through the paged cache gives the logits a single prefill gives.
TEST(Engine, IncrementalDecodeMatchesOnePrefillThroughEveryBackend) {
  const auto path = write_checkpoint(TinyModel{}, test::test_seed());
  for (const char* backend_name : {"reference", "turboquant"}) {
    const host::Plugin* plugin = test::build_plugin(backend_name);
    ASSERT_NE(plugin, nullptr);
    const std::string config =
        std::string(backend_name) == "turboquant" ? R"({"k_quant": "tq4", "v_quant": "tq3"})" : "{}";
    auto checkpoint = load_checkpoint(path);
    ASSERT_TRUE(checkpoint) << checkpoint.error().message();
    auto whole = Engine::create(*checkpoint, *plugin, config, 1 << 20, 2);
    auto stepwise = Engine::create(*checkpoint, *plugin, config, 1 << 20, 1);
    ASSERT_TRUE(whole && stepwise) << backend_name;
    const std::vector<int> tokens = {3, 4, 5, 6, 3, 5, 4, 6, 6, 3, 4, 5, 3, 3, 6, 4, 5, 6, 4, 3};
    auto all = whole->forward({{7, tokens}});
    ASSERT_TRUE(all) << all.error().message();
    for (size_t i = 0; i < tokens.size(); ++i) {
      auto one = stepwise->forward({{9, {tokens[i]}}});
      ASSERT_TRUE(one) << one.error().message();
      for (int v = 0; v < 7; ++v)
        ASSERT_NEAR((*one)[size_t(v)], (*all)[i * 7 + size_t(v)], 1e-4) << backend_name << " position " << i;
    }
    // A context longer than the model's is refused.
    EXPECT_FALSE(stepwise->forward({{9, std::vector<int>(20, 3)}}));
  }
  fs::remove(path);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

TEST(Engine, ReproducesTheProvenanceFigureThroughTheReferenceBackend) {
  if (kSanitized)
    GTEST_SKIP() << "1.9 TFLOP of model maths take >15 min under a sanitizer; the release suite runs this test "
                    "(and the sanitizers cover the same engine code in the tests above)";
  const fs::path models = fs::path(ATB_SHARED_DIR) / "models", data = fs::path(ATB_SHARED_DIR) / "data";
  if (!fs::exists(models / "shakespeare_char_17M.bin") || !fs::exists(data / "shakespeare_dev.txt"))
    GTEST_SKIP() << "needs " << models << "/shakespeare_char_17M.bin and " << data
                 << "/shakespeare_dev.txt (../shared beside the checkout): absent here";
  auto checkpoint = load_checkpoint(models / "shakespeare_char_17M.bin");
  ASSERT_TRUE(checkpoint) << checkpoint.error().message();
  auto tokenizer = Tokenizer::load(models / "tokenizer.bin", checkpoint->config.vocab_size);
  ASSERT_TRUE(tokenizer) << tokenizer.error().message();
  std::ifstream file(data / "shakespeare_dev.txt", std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  auto tokens = tokenizer->encode(text.str());
  ASSERT_TRUE(tokens) << tokens.error().message();
  const host::Plugin* reference = test::build_plugin("reference");
  ASSERT_NE(reference, nullptr);
  auto engine = Engine::create(std::move(*checkpoint), *reference, "{}", 512ull << 20, 2);
  ASSERT_TRUE(engine) << engine.error().message();
  auto result = evaluate(*engine, *tokens, 1024, 4);
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->predictions, 55769u);
  EXPECT_NEAR(result->nats_per_token(), 1.41620, 2e-4);
}

}  // namespace
}  // namespace atb::engine
