// The channel-maxima file of tq calibrate and the turboquant plugin's smoothing_file: what is written
// reads back, shards read their global KV heads, and a bad file is refused naming the field.
#include <gtest/gtest.h>

#include <tq/channel_maxima.hpp>

#include <cmath>
#include <random>
#include <string>

namespace tq {
namespace {

ChannelMaxima random_maxima(int layers, int kv_heads, int head_size, uint64_t seed) {
  ChannelMaxima maxima(layers, kv_heads, head_size);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(head_size));
  for (int l = 0; l < layers; ++l)
    for (int h = 0; h < kv_heads; ++h)
      for (int sample = 0; sample < 4; ++sample)
        for (Role role : {Role::key, Role::value}) {
          for (float& v : x) v = normal(rng) * float(1 + l);
          maxima.observe(role, l, h, x.data());
        }
  return maxima;
}

TEST(ChannelMaxima, WhatIsWrittenReadsBackExactly) {
  const ChannelMaxima written = random_maxima(3, 4, 64, 7);
  auto read = parse_channel_maxima(channel_maxima_json(written, "test"), "test.json");
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(read->layers, 3);
  EXPECT_EQ(read->kv_heads, 4);
  EXPECT_EQ(read->head_size, 64);
  EXPECT_EQ(read->key, written.key);
  EXPECT_EQ(read->value, written.value);
}

// The means of what was observed travel in key_mean / value_mean; a file without them still reads,
// and asking it for means names what is missing.
TEST(ChannelMaxima, MeansAreWrittenAndReadBack) {
  ChannelMaxima written = random_maxima(2, 4, 32, 9);
  const std::string without = channel_maxima_json(written, "test");
  written.finish_means();
  ASSERT_EQ(written.key_mean.size(), written.key.size());
  auto read = parse_channel_maxima(channel_maxima_json(written, "test"), "test.json");
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(read->key_mean, written.key_mean);
  EXPECT_EQ(read->value_mean, written.value_mean);
  auto means = layer_means(*read, "m.json", Role::value, 1, 2, 2, 32);
  ASSERT_TRUE(means) << means.error().message();
  EXPECT_EQ(means->front(), written.value_mean[(size_t(1) * 4 + 2) * 32]);
  auto old = parse_channel_maxima(without, "old.json");
  ASSERT_TRUE(old) << old.error().message();
  EXPECT_TRUE(old->key_mean.empty());
  auto missing = layer_means(*old, "old.json", Role::key, 0, 0, 4, 32);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("old.json has no key_mean"), std::string::npos) << missing.error().message();
  EXPECT_NE(missing.error().message().find("allowed with it: k_centering = false"), std::string::npos);
}

TEST(ChannelMaxima, MeansAreOfTheFiniteRows) {
  ChannelMaxima maxima(1, 1, 2);
  const float a[2] = {1, -4}, b[2] = {3, 8}, bad[2] = {100, NAN};
  maxima.observe(Role::key, 0, 0, a);
  maxima.observe(Role::key, 0, 0, bad);
  maxima.observe(Role::key, 0, 0, b);
  maxima.finish_means();
  EXPECT_EQ(maxima.key_mean, (std::vector<float>{2, 2})) << "the row with a NaN is left out of the means";
  EXPECT_EQ(maxima.key[0], 100.0f) << "its finite values still widen the maxima";
  EXPECT_EQ(maxima.value_mean, (std::vector<float>{0, 0})) << "nothing observed: zero means";
}

TEST(ChannelMaxima, ObserveKeepsTheLargestFiniteMagnitude) {
  ChannelMaxima maxima(1, 1, 4);
  const float first[4] = {1, -5, NAN, 0}, second[4] = {-2, 3, INFINITY, -0.5f};
  maxima.observe(Role::key, 0, 0, first);
  maxima.observe(Role::key, 0, 0, second);
  EXPECT_EQ(std::vector<float>(maxima.key.begin(), maxima.key.end()), (std::vector<float>{2, 5, 0, 0.5f}));
  EXPECT_EQ(maxima.value, std::vector<float>(4, 0.0f));
}

TEST(ChannelMaxima, ShardsReadTheirGlobalKvHeads) {
  const ChannelMaxima maxima = random_maxima(2, 8, 32, 11);
  for (int first : {0, 4}) {
    auto shard = layer_maxima(maxima, "m.json", Role::value, 1, first, 4, 32);
    ASSERT_TRUE(shard) << shard.error().message();
    const float* expected = maxima.row(Role::value, 1, first);
    EXPECT_EQ(*shard, std::vector<float>(expected, expected + 4 * 32));
  }
  const struct {
    int layer, first, heads, head_size;
    std::string message;
  } refused[] = {{2, 0, 8, 32, "holds 2 layers; this layer's cache is layer 2"},
                 {0, 6, 4, 32, "holds 8 KV heads; this layer needs global heads 6 .. 9"},
                 {0, 0, 8, 64, "has head_size 32; this layer's is 64"}};
  for (const auto& c : refused) {
    auto shard = layer_maxima(maxima, "m.json", Role::key, c.layer, c.first, c.heads, c.head_size);
    ASSERT_FALSE(shard);
    EXPECT_NE(shard.error().message().find(c.message), std::string::npos) << shard.error().message();
  }
}

TEST(ChannelMaxima, BadFilesAreRefusedNamingTheField) {
  const std::string good = channel_maxima_json(random_maxima(1, 1, 2, 3), "test");
  const auto edited = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? text : text.replace(at, from.size(), to);
  };
  const struct {
    std::string text, message;
  } cases[] = {
      {"not json", "not a JSON object"},
      {"[1, 2]", "not a JSON object"},
      {edited("\"atb-channel-maxima\"", "\"other\""), "format = \"other\"; allowed: \"atb-channel-maxima\""},
      {edited("\"version\":1", "\"version\":2"), "version = 2; allowed: 1"},
      {edited("\"layers\":1", "\"layers\":0"), "layers = 0; allowed: an integer from 1 to"},
      {edited("\"head_size\":2", "\"head_size\":3"), "key[0][0] = "},
      {edited("\"kv_heads\":1", "\"kv_heads\":2"), "key[0] = "},
      {edited("\"key\":[[[", "\"key\":[[[-1,"), "key[0][0] = "},
      {edited("\"value\":[[[", "\"value\":[[[\"x\","), "value[0][0] = "},
  };
  for (const auto& c : cases) {
    auto read = parse_channel_maxima(c.text, "bad.json");
    ASSERT_FALSE(read) << c.text;
    EXPECT_EQ(read.error().code(), ATB_ERR_INVALID_ARGUMENT);
    EXPECT_NE(read.error().message().find("smoothing_file bad.json: "), std::string::npos) << read.error().message();
    EXPECT_NE(read.error().message().find(c.message), std::string::npos) << read.error().message();
  }
  auto missing = read_channel_maxima("/nonexistent/maxima.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("cannot be read"), std::string::npos);
}

}  // namespace
}  // namespace tq
