// Row names of the tools' tables: short enough to print whole, and saying every key of the config.
#include <gtest/gtest.h>

#include <atb/cli/variant_label.hpp>

namespace atb::cli {
namespace {

TEST(VariantLabel, NamesTheFormatPairFirstAndEveryOtherKey) {
  EXPECT_EQ(variant_label("turboquant", R"({"k_quant":"q8_0","v_quant":"q3_0"})"), "turboquant q8_0/q3_0");
  EXPECT_EQ(variant_label("turboquant", R"({"v_quant":"tq3","kernel":"avx2","k_quant":"tq4","threads":2})"),
            "turboquant tq4/tq3 kernel=avx2 threads=2");
  EXPECT_EQ(variant_label("turboquant", R"({"k_quant":"tq4"})"), "turboquant k_quant=tq4");
  EXPECT_EQ(variant_label("reference", "{}"), "reference");
  EXPECT_EQ(variant_label("reference", ""), "reference");
  EXPECT_EQ(variant_label("reference", R"({"cache_dtype":"f16"})"), "reference cache_dtype=f16");
}

TEST(VariantLabel, ShowsAConfigThatIsNoObjectAsGiven) {
  EXPECT_EQ(variant_label("turboquant", "[1,2]"), "turboquant [1,2]");
  EXPECT_EQ(variant_label("turboquant", "{not json"), "turboquant {not json");
}

}  // namespace
}  // namespace atb::cli
