// The tools' synthetic K/V: the data sets a --data flag names, and what each set promises.
#include <gtest/gtest.h>

#include <atb/cli/synthetic_kv.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace atb::cli {
namespace {

constexpr int kHeadSize = 128, kTokens = 2048;

// Per channel: mean and root mean square over the tokens.
struct ChannelStats {
  std::vector<double> mean, rms;
};

ChannelStats channel_stats(const std::vector<float>& rows, int head_size) {
  const size_t tokens = rows.size() / size_t(head_size);
  ChannelStats stats{std::vector<double>(size_t(head_size)), std::vector<double>(size_t(head_size))};
  for (size_t t = 0; t < tokens; ++t)
    for (size_t c = 0; c < size_t(head_size); ++c) {
      const double x = rows[t * size_t(head_size) + c];
      stats.mean[c] += x / double(tokens), stats.rms[c] += x * x / double(tokens);
    }
  for (double& r : stats.rms) r = std::sqrt(r);
  return stats;
}

double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + long(values.size() / 2), values.end());
  return values[values.size() / 2];
}

TEST(SyntheticKv, DataNamesParseToTheirSets) {
  EXPECT_EQ(*parse_kv_data("normal"), std::vector<KvData>{KvData::normal});
  EXPECT_EQ(*parse_kv_data("llm"), std::vector<KvData>{KvData::llm});
  EXPECT_EQ(*parse_kv_data("both"), (std::vector<KvData>{KvData::normal, KvData::outliers}));
  EXPECT_EQ(*parse_kv_data("all"), (std::vector<KvData>{KvData::normal, KvData::outliers, KvData::llm}));
  const auto refused = parse_kv_data("LLM");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("--data LLM"), std::string::npos) << refused.error().message();
  EXPECT_NE(refused.error().message().find("normal, outliers, llm"), std::string::npos);
}

TEST(SyntheticKv, AnyRangeOfTokensRegeneratesIdentically) {
  for (KvData data : {KvData::normal, KvData::outliers, KvData::llm})
    for (bool is_key : {true, false}) {
      const auto whole = synthetic_kv(data, is_key, 1, 2, 0, 40, 64, 9);
      const auto part = synthetic_kv(data, is_key, 1, 2, 17, 5, 64, 9);
      EXPECT_TRUE(std::equal(part.begin(), part.end(), whole.begin() + 17 * 64)) << kv_data_name(data);
    }
}

// A layer's sequences share the llm set's channels (as a model's do) but never its tokens; the
// other sets keep a generator layer per sequence.
TEST(SyntheticKv, LlmSequencesShareTheLayersChannelsNotItsTokens) {
  const GeneratorSlot first = generator_slot(KvData::llm, 3, 0, 10), second = generator_slot(KvData::llm, 3, 1, 10);
  EXPECT_EQ(first.layer, second.layer);
  EXPECT_NE(first.first_token, second.first_token);
  const auto a = synthetic_kv(KvData::llm, true, first.layer, 0, first.first_token, 4, 64, 1);
  const auto b = synthetic_kv(KvData::llm, true, second.layer, 0, second.first_token, 4, 64, 1);
  EXPECT_NE(a, b);
  const auto profile = [](GeneratorSlot slot) {
    return channel_profile(KvData::llm, true, slot.layer, 0, 64, 1).factor;
  };
  EXPECT_EQ(profile(first), profile(second));
  EXPECT_NE(generator_slot(KvData::outliers, 3, 0, 10).layer, generator_slot(KvData::outliers, 3, 1, 10).layer);
  EXPECT_NE(generator_slot(KvData::llm, 3, 0, 10).layer, generator_slot(KvData::llm, 4, 0, 10).layer);
}

// The llm set's keys: a few RoPE pairs (both channels alike, in the slow half) far above the
// median channel, and channel means of their own; the normal set has neither.
TEST(SyntheticKv, LlmKeysConcentrateEnergyInSlowRopePairsAndHaveMeans) {
  for (int kv_head = 0; kv_head < 4; ++kv_head) {
    const auto stats = channel_stats(synthetic_kv(KvData::llm, true, 0, kv_head, 0, kTokens, kHeadSize, 3), kHeadSize);
    const double typical = median(stats.rms);
    int outliers = 0;
    for (int c = 0; c < kHeadSize; ++c) {
      if (stats.rms[size_t(c)] < 10 * typical) continue;
      ++outliers;
      EXPECT_GE(c, kHeadSize / 2) << "outlier channel " << c << " is not in the slow half";
      EXPECT_GE(stats.rms[size_t(c ^ 1)], 10 * typical) << "channel " << c << " without its RoPE partner";
    }
    EXPECT_GE(outliers, 2) << "KV head " << kv_head;
    EXPECT_LE(outliers, 2 * kLlmKeyPairs);
    const double largest_mean = std::abs(*std::max_element(
        stats.mean.begin(), stats.mean.end(), [](double a, double b) { return std::abs(a) < std::abs(b); }));
    EXPECT_GT(largest_mean, 1.0) << "channel means are missing";
  }
  const auto normal = channel_stats(synthetic_kv(KvData::normal, true, 0, 0, 0, kTokens, kHeadSize, 3), kHeadSize);
  EXPECT_LT(*std::max_element(normal.rms.begin(), normal.rms.end()), 1.2);
}

TEST(SyntheticKv, LlmValuesHaveAFewLargeChannels) {
  const auto stats = channel_stats(synthetic_kv(KvData::llm, false, 2, 1, 0, kTokens, kHeadSize, 5), kHeadSize);
  const double typical = median(stats.rms);
  const long large = std::count_if(stats.rms.begin(), stats.rms.end(), [&](double r) { return r > 6 * typical; });
  EXPECT_GE(large, 1);
  EXPECT_LE(large, kLlmValueChannels);
}

}  // namespace
}  // namespace atb::cli
