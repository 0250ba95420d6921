// Format names per role, their errors, and the byte accounting that the spec and encode share.
#include <gtest/gtest.h>

#include <tq/byte_accounting.hpp>
#include <tq/format.hpp>
#include <tq/quantizer.hpp>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace tq {
namespace {

Format key(std::string_view name) { return *find_format(Role::key, name); }
Format value(std::string_view name) { return *find_format(Role::value, name); }

TEST(Formats, KeyBytesPerTokenPerHeadMatchVllmMetalAtHeadSize128) {
  const std::map<std::string, size_t> expected = {
      {"q8_0", 144}, {"int8", 144}, {"uint8", 144}, {"q5_0", 96}, {"q4_0", 80},  {"int4", 80}, {"uint4", 80},
      {"int2", 48},  {"uint2", 48}, {"tq1", 18},    {"tq2", 34},  {"tq3", 50},   {"tq4", 66},  {"tq8", 130},
      {"tqp2", 36},  {"tqp3", 52},  {"tqp4", 68},   {"f16", 256}, {"bf16", 256}, {"f32", 512}};
  for (const auto& [name, bytes] : expected) EXPECT_EQ(row_bytes(key(name), 128), bytes) << name;
}

TEST(Formats, ValueBytesPerTokenPerHeadMatchVllmMetalAtHeadSize128) {
  const std::map<std::string, size_t> expected = {{"q2_0", 40},  {"q3_0", 56}, {"q4_0", 72}, {"q5_0", 88},
                                                  {"q8_0", 136}, {"tq3", 50},  {"tq4", 66},  {"f16", 256}};
  for (const auto& [name, bytes] : expected) EXPECT_EQ(row_bytes(value(name), 128), bytes) << name;
}

TEST(Formats, CompressionOfTheSeedPairs) {
  EXPECT_NEAR(compression_vs_f16(key("q8_0"), value("q3_0"), 128), 2.56, 1e-9);
  EXPECT_NEAR(compression_vs_f16(key("q5_0"), value("q3_0"), 128), 512.0 / 152, 1e-9);   // 3.37
  EXPECT_NEAR(compression_vs_f16(key("q4_0"), value("q3_0"), 128), 512.0 / 136, 1e-9);   // 3.76
  EXPECT_NEAR(compression_vs_f16(key("uint2"), value("q3_0"), 128), 512.0 / 104, 1e-9);  // 4.92
}

TEST(Formats, SameNameMeansTheRoleScheme) {
  EXPECT_EQ(key("q4_0").scheme, Scheme::affine_block);
  EXPECT_EQ(value("q4_0").scheme, Scheme::lloyd_max_block);
  EXPECT_TRUE(key("q8_0").signed_codes);
  EXPECT_FALSE(key("uint8").signed_codes);
  EXPECT_EQ(key("tqp4").bits, 4);
}

// The compile-time table is the one the lookups serve, and its row layouts are constant expressions
// (the CUDA kernels are compiled with them).
static_assert(row_bytes(kKeyFormats[format_index(Role::key, "q4_0")], 128) == 80);
static_assert(row_layout(kValueFormats[format_index(Role::value, "q3_0")], 128).scales_offset == 48);
static_assert(kKeyFormats[format_index(Role::key, "int4")].stores_like(kKeyFormats[format_index(Role::key, "q4_0")]));

TEST(Formats, LookupsServeTheConstexprTable) {
  for (Role role : {Role::key, Role::value}) {
    const std::span<const Format> table = formats_for(role);
    ASSERT_EQ(table.size(), role == Role::key ? kKeyFormats.size() : kValueFormats.size());
    for (size_t i = 0; i < table.size(); ++i) {
      EXPECT_EQ(format_index(role, table[i].name), int(i));
      EXPECT_TRUE(find_format(role, table[i].name)->stores_like(table[i])) << table[i].name;
    }
  }
}

// stores_like picks the CUDA kernels' instances for aliases: formats that store alike must write the
// same bytes for the same rows, and formats that do not must differ somewhere.
TEST(Formats, FormatsThatStoreAlikeWriteTheSameBytes) {
  std::mt19937 random(33);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (Role role : {Role::key, Role::value}) {
    const std::span<const Format> table = formats_for(role);
    for (const Format& a : table)
      for (const Format& b : table) {
        if (row_bytes(a, 128) != row_bytes(b, 128)) {
          EXPECT_FALSE(a.stores_like(b)) << a.name << " " << b.name;
          continue;
        }
        auto qa = make_quantizer(a, 128, 7), qb = make_quantizer(b, 128, 7);
        ASSERT_TRUE(qa && qb);
        bool same = true;
        for (int trial = 0; trial < 8 && same; ++trial) {
          std::vector<float> x(128);
          for (float& v : x) v = normal(random) * (trial + 1);
          std::vector<uint8_t> ra(row_bytes(a, 128)), rb(ra.size());
          (*qa)->encode(x.data(), ra.data());
          (*qb)->encode(x.data(), rb.data());
          same = ra == rb;
        }
        EXPECT_EQ(same, a.stores_like(b)) << role_name(role) << " " << a.name << " vs " << b.name;
      }
  }
}

TEST(Formats, UnknownNamesAreErrorsListingTheAllowedOnes) {
  const auto bad = find_format(Role::key, "q3_k");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ATB_ERR_INVALID_ARGUMENT);
  EXPECT_NE(bad.error().message().find("k_quant = \"q3_k\""), std::string::npos) << bad.error().message();
  EXPECT_NE(bad.error().message().find("uint2"), std::string::npos);
  EXPECT_NE(bad.error().message().find("tqp8"), std::string::npos);

  const auto prod_for_v = find_format(Role::value, "tqp4");
  ASSERT_FALSE(prod_for_v);
  EXPECT_NE(prod_for_v.error().message().find("K only"), std::string::npos) << prod_for_v.error().message();
  EXPECT_FALSE(find_format(Role::value, "int4"));
  EXPECT_FALSE(find_format(Role::key, ""));
}

TEST(Formats, HeadSizeLimits) {
  EXPECT_TRUE(check_head_size(key("tq4"), 80).empty());
  EXPECT_TRUE(check_head_size(key("f16"), 7).empty());
  const std::string odd = check_head_size(key("tq4"), 12);
  EXPECT_NE(odd.find("head size 12"), std::string::npos) << odd;
  EXPECT_NE(odd.find("multiples of 8"), std::string::npos) << odd;
  EXPECT_FALSE(check_head_size(value("q3_0"), 2048).empty());
  EXPECT_FALSE(check_head_size(value("f16"), 0).empty());
}

TEST(Formats, PartialScaleBlocksForHeadSizesThatAreNotMultiplesOf32) {
  // 80 = 32 + 32 + 16: three blocks, the last one short.
  const RowLayout layout = row_layout(key("q4_0"), 80);
  EXPECT_EQ(layout.blocks, 3);
  EXPECT_EQ(layout.codes_bytes, 40u);
  EXPECT_EQ(layout.row_bytes, 40u + 3 * 4);
  EXPECT_EQ(row_bytes(value("q3_0"), 80), 30u + 3 * 2);
}

TEST(Formats, PageLayoutPlacesRegionsOnAlignedBoundaries) {
  const PageLayout page = page_layout(key("q4_0"), value("q3_0"), 128, 128, 8, 16);
  EXPECT_EQ(page.k_row_bytes, 80u);
  EXPECT_EQ(page.v_row_bytes, 56u);
  EXPECT_EQ(page.v_region_offset, 8u * 16 * 80);
  EXPECT_EQ(page.page_bytes, 8u * 16 * (80 + 56));
  EXPECT_EQ(page.k_row_offset(7, 15), (7u * 16 + 15) * 80);
  EXPECT_EQ(page.v_row_offset(0, 1), page.v_region_offset + 56);

  const PageLayout odd = page_layout(key("tq3"), value("q3_0"), 80, 80, 1, 3);  // 3 rows of 32 B, of 36 B
  EXPECT_EQ(odd.v_region_offset % kPageRegionAlignment, 0u);
  EXPECT_EQ(odd.v_region_offset, 128u);
  EXPECT_EQ(odd.page_bytes, 128u + 128u);
}

}  // namespace
}  // namespace tq
