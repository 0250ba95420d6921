// What the turboquant backend refuses at create_backend, each with a message naming the key or
// field, the value and what is allowed; and what it accepts as vllm-metal does.
#include <gtest/gtest.h>

#include <functional>

#include "../support/plugins.hpp"
#include "../support/scenario.hpp"

namespace atb::test {
namespace {

struct Case {
  const char* name;
  std::function<void(atb_layer_spec&)> mutate;
  const char* config;
  atb_status status;
  const char* message_part;
};

TEST(TurboquantConfig, RefusalsNameTheKeyTheValueAndTheAllowedValues) {
  LayerShape shape;
  shape.num_query_heads = 4;
  shape.num_kv_heads = 2;
  const auto none = [](atb_layer_spec&) {};
  const std::vector<Case> cases = {
      {"unknown key", none, R"({"k_quant": "q4_0", "kquant": 1})", ATB_ERR_INVALID_ARGUMENT, "'kquant'"},
      {"wrong type", none, R"({"k_quant": 4})", ATB_ERR_INVALID_ARGUMENT, "k_quant"},
      {"unknown K format", none, R"({"k_quant": "q3_k"})", ATB_ERR_INVALID_ARGUMENT, "uint2"},
      {"K-only format for V", none, R"({"v_quant": "tqp4"})", ATB_ERR_INVALID_ARGUMENT, "tqp4"},
      {"V-only format for K", none, R"({"k_quant": "q3_0"})", ATB_ERR_INVALID_ARGUMENT, "q3_0"},
      {"turboquant not a bool", none, R"({"turboquant": "yes"})", ATB_ERR_INVALID_ARGUMENT, "turboquant"},
      {"negative layers", none, R"({"uncompressed_first_layers": -1})", ATB_ERR_INVALID_ARGUMENT,
       "uncompressed_first_layers"},
      {"bad kernel", none, R"({"kernel": "avx512"})", ATB_ERR_INVALID_ARGUMENT, "avx512"},
      {"malformed JSON", none, R"({"k_quant": )", ATB_ERR_INVALID_ARGUMENT, "JSON"},
      {"MLA", [](atb_layer_spec& s) { s.attention_kind = ATB_ATTENTION_MLA; }, "{}", ATB_ERR_UNSUPPORTED, "MLA"},
      {"linear", [](atb_layer_spec& s) { s.attention_kind = ATB_ATTENTION_LINEAR; }, "{}", ATB_ERR_UNSUPPORTED,
       "LINEAR"},
      {"head size not served", [](atb_layer_spec& s) { s.head_size_k = s.head_size_v = 72; }, "{}", ATB_ERR_UNSUPPORTED,
       "72"},
      {"bad dtype", [](atb_layer_spec& s) { s.dtype = 9; }, "{}", ATB_ERR_INVALID_ARGUMENT, "dtype = 9"},
  };
  for (const Case& c : cases) {
    atb_layer_spec spec = shape.layer_spec();
    c.mutate(spec);
    auto backend = create_backend("turboquant", spec, c.config);
    ASSERT_FALSE(backend) << c.name;
    EXPECT_EQ(backend.error().code(), c.status) << c.name << ": " << backend.error().message();
    EXPECT_NE(backend.error().message().find(c.message_part), std::string::npos)
        << c.name << ": " << backend.error().message();
  }
}

TEST(TurboquantConfig, AcceptsTheVllmMetalConfigAndReportsItsBytes) {
  LayerShape shape;  // head size 128
  auto backend =
      create_backend("turboquant", shape.layer_spec(), R"({"turboquant": true, "k_quant": "q8_0", "v_quant": "q3_0"})");
  ASSERT_TRUE(backend);
  const auto spec = backend->kv_cache_spec();
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->k_bytes_per_token_per_head, 144u);
  EXPECT_EQ(spec->v_bytes_per_token_per_head, 56u);
  EXPECT_EQ(spec->page_bytes, uint64_t(shape.block_size) * shape.num_kv_heads * (144 + 56));
  // The defaults are vllm-metal's: q8_0 / q3_0.
  auto defaults = create_backend("turboquant", shape.layer_spec(), "{}");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->kv_cache_spec()->k_bytes_per_token_per_head, 144u);
  EXPECT_EQ(defaults->kv_cache_spec()->v_bytes_per_token_per_head, 56u);
  // Layer-adaptive: the first layer stores the layer's dtype (f32: 512 bytes per row at d=128).
  auto first = create_backend("turboquant", shape.layer_spec(0, 28), R"({"uncompressed_first_layers": 2})");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->kv_cache_spec()->k_bytes_per_token_per_head, 512u);
  auto middle = create_backend("turboquant", shape.layer_spec(5, 28),
                               R"({"uncompressed_first_layers": 2, "k_quant": "tq4", "v_quant": "tq3"})");
  ASSERT_TRUE(middle);
  EXPECT_EQ(middle->kv_cache_spec()->k_bytes_per_token_per_head, 66u);
  EXPECT_EQ(middle->kv_cache_spec()->v_bytes_per_token_per_head, 50u);
}

}  // namespace
}  // namespace atb::test
