// Size-prefixed structs across versions: an older host (smaller structs) and a newer host (larger
// structs) both work with this build's plugins; a reader defaults what the writer did not send.
#include <gtest/gtest.h>

#include <atb/struct_io.hpp>

#include <cstring>

#include "../support/plugins.hpp"
#include "../support/scenario.hpp"

namespace atb {
namespace {

struct Small {
  size_t struct_size;
  int64_t a;
};
struct Large {
  size_t struct_size;
  int64_t a;
  int64_t b;
};

TEST(StructIo, ReaderDefaultsFieldsTheWriterDidNotSend) {
  Small old_writer{sizeof(Small), 7};
  Large read{0, 0, 42};
  ASSERT_TRUE(read_versioned(reinterpret_cast<const Large*>(&old_writer), read));
  EXPECT_EQ(read.a, 7);
  EXPECT_EQ(read.b, 42);
  EXPECT_EQ(read.struct_size, sizeof(Large));
}

TEST(StructIo, WriterNeverWritesPastTheOwnersSize) {
  unsigned char buffer[sizeof(Large) + 8];
  std::memset(buffer, 0xEE, sizeof(buffer));
  auto* old_owner = reinterpret_cast<Large*>(buffer);
  old_owner->struct_size = sizeof(Small);
  ASSERT_TRUE(write_versioned(old_owner, Large{sizeof(Large), 1, 2}));
  EXPECT_EQ(old_owner->a, 1);
  EXPECT_EQ(old_owner->struct_size, sizeof(Small));
  for (size_t i = sizeof(Small); i < sizeof(buffer); ++i) EXPECT_EQ(buffer[i], 0xEE) << i;
}

TEST(StructIo, TooSmallIsRefused) {
  Large tiny{2, 0, 0};
  Large out{};
  EXPECT_FALSE(read_versioned(&tiny, out));
  EXPECT_FALSE(write_versioned(&tiny, out));
}

// An older host's layer spec: only the fields up to num_layers (no sharing, TP or device fields).
TEST(AbiVersioning, OlderHostWithSmallerStructsWorks) {
  test::LayerShape shape;
  shape.num_query_heads = 4;
  shape.num_kv_heads = 2;
  shape.head_size_k = shape.head_size_v = 64;
  atb_layer_spec spec = shape.layer_spec();
  spec.kv_shared_with_layer = 12345;  // garbage past the old size must be ignored
  spec.device_type = 77;
  spec.struct_size = offsetof(atb_layer_spec, kv_shared_with_layer);
  auto backend = test::create_backend("reference", spec, "{}");
  ASSERT_TRUE(backend) << backend.error().message();

  // An older host's kv-cache spec struct ends before workspace_bytes: the plugin must not write it.
  struct OldSpec {
    atb_kv_cache_spec fields;
    uint64_t canary;
  } old{};
  old.fields.struct_size = offsetof(atb_kv_cache_spec, workspace_bytes);
  old.fields.workspace_bytes = 0xDEADBEEF;
  old.canary = 0xC0FFEE;
  const atb_api& api = test::build_plugin("reference")->api();
  atb_error error = make_versioned<atb_error>();
  ASSERT_EQ(api.get_kv_cache_spec(backend->handle(), &old.fields, &error), ATB_OK) << error.message;
  EXPECT_EQ(old.fields.page_bytes, 16u * 2 * (64 + 64) * 4);
  EXPECT_EQ(old.fields.workspace_bytes, 0xDEADBEEFu);
  EXPECT_EQ(old.canary, 0xC0FFEEu);
}

// A newer host's structs carry fields this plugin does not know; it reads what it knows.
TEST(AbiVersioning, NewerHostWithLargerStructsWorks) {
  test::LayerShape shape;
  shape.num_query_heads = 2;
  shape.num_kv_heads = 1;
  shape.head_size_k = shape.head_size_v = 64;
  struct NewerSpec {
    atb_layer_spec known;
    int64_t future_field;
  } newer{};
  newer.known = shape.layer_spec();
  newer.known.struct_size = sizeof(NewerSpec);
  newer.future_field = 99;
  auto backend = test::create_backend("reference", newer.known, "{}");
  ASSERT_TRUE(backend) << backend.error().message();

  struct NewerError {
    atb_error known;
    char more[64];
  } error{};
  error.known.struct_size = sizeof(NewerError);
  atb_layer_spec bad = shape.layer_spec();
  bad.head_size_k = 72;
  atb_backend* handle = nullptr;
  const atb_api& api = test::build_plugin("reference")->api();
  EXPECT_EQ(api.create_backend(&bad, "{}", &handle, &error.known), ATB_ERR_UNSUPPORTED);
  EXPECT_EQ(handle, nullptr);
  EXPECT_NE(std::string(error.known.message).find("head_size_k = 72"), std::string::npos);
}

// A test-only minor: the layer spec and the kv-cache spec of this minor with one field appended, as
// the next minor would append it (after the struct size, never inside padding).
struct FutureLayerSpec {
  size_t struct_size;
  unsigned char current_fields[ATB_LAYER_SPEC_STRUCT_SIZE - sizeof(size_t)];
  int32_t appended;  // default 7
  int32_t reserved;
};
static_assert(offsetof(FutureLayerSpec, appended) == ATB_LAYER_SPEC_STRUCT_SIZE);

struct FutureCacheSpec {
  size_t struct_size;
  unsigned char current_fields[ATB_KV_CACHE_SPEC_STRUCT_SIZE - sizeof(size_t)];
  uint64_t appended;
};
static_assert(offsetof(FutureCacheSpec, appended) == ATB_KV_CACHE_SPEC_STRUCT_SIZE);

// A future plugin reading what a minor-0 host sent as sizeof(its struct): the bytes that were tail
// padding (garbage) are today's reserved field, and the appended field keeps its default.
TEST(AbiSkew, AFutureReaderDefaultsWhatAMinor0HostSentAsSizeof) {
  unsigned char sent[sizeof(FutureLayerSpec)];
  std::memset(sent, 0xAB, sizeof sent);  // padding and whatever follows the host's struct
  const size_t minor0_sizeof = 80;       // 76 bytes of fields, padded
  std::memcpy(sent, &minor0_sizeof, sizeof minor0_sizeof);
  FutureLayerSpec read{};
  read.appended = 7;
  ASSERT_TRUE(read_versioned(reinterpret_cast<const FutureLayerSpec*>(sent), read));
  EXPECT_EQ(read.appended, 7);
}

// A future host's larger layer spec, with the appended field set, reaches this build's plugin,
// which reads what it knows.
TEST(AbiSkew, ThisPluginReadsAFutureHostsLargerStructs) {
  test::LayerShape shape;
  shape.num_query_heads = 2;
  shape.num_kv_heads = 1;
  shape.head_size_k = shape.head_size_v = 64;
  const atb_layer_spec current = shape.layer_spec();
  FutureLayerSpec future{};
  std::memcpy(&future, &current, sizeof current);
  future.struct_size = sizeof future;
  future.appended = -12345;
  future.reserved = 0x5a5a5a5a;
  auto backend = test::create_backend("reference", *reinterpret_cast<const atb_layer_spec*>(&future), "{}");
  ASSERT_TRUE(backend) << backend.error().message();
}

// Output structs in both directions: an older host's kv-cache spec (minor 0's 56 bytes) gets
// exactly those bytes and struct_size stays 56; a future host's larger one gets this minor's bytes,
// struct_size says how many, and its appended field keeps the host's default.
TEST(AbiSkew, OutputStructsReportTheBytesTheyFilled) {
  test::LayerShape shape;
  shape.num_query_heads = 2;
  shape.num_kv_heads = 1;
  shape.head_size_k = shape.head_size_v = 64;
  auto backend = test::create_backend("reference", shape.layer_spec(), "{}");
  ASSERT_TRUE(backend) << backend.error().message();
  const atb_api& api = test::build_plugin("reference")->api();
  atb_error error = make_versioned<atb_error>();

  unsigned char older[sizeof(atb_kv_cache_spec) + 16];
  std::memset(older, 0x66, sizeof older);
  const size_t minor0_size = offsetof(atb_kv_cache_spec, cache_flags);
  std::memcpy(older, &minor0_size, sizeof minor0_size);
  ASSERT_EQ(api.get_kv_cache_spec(backend->handle(), reinterpret_cast<atb_kv_cache_spec*>(older), &error), ATB_OK)
      << error.message;
  size_t reported = 0;
  std::memcpy(&reported, older, sizeof reported);
  EXPECT_EQ(reported, minor0_size);
  for (size_t i = minor0_size; i < sizeof older; ++i) EXPECT_EQ(older[i], 0x66) << "byte " << i;

  FutureCacheSpec future{};
  future.struct_size = sizeof future;
  future.appended = 0xFEEDu;
  ASSERT_EQ(api.get_kv_cache_spec(backend->handle(), reinterpret_cast<atb_kv_cache_spec*>(&future), &error), ATB_OK)
      << error.message;
  EXPECT_EQ(future.struct_size, size_t(ATB_KV_CACHE_SPEC_STRUCT_SIZE));
  EXPECT_EQ(future.appended, 0xFEEDu);
  atb_kv_cache_spec filled;
  std::memcpy(&filled, &future, sizeof filled);
  EXPECT_EQ(filled.workspace_alignment, 256u);
}

TEST(AbiSkew, InputStructsBelowTheirMinimumAreRefused) {
  test::LayerShape shape;
  atb_layer_spec spec = shape.layer_spec();
  spec.struct_size = ATB_LAYER_SPEC_MIN_STRUCT_SIZE - 4;  // num_layers cut off: it has no default
  atb_backend* handle = nullptr;
  atb_error error = make_versioned<atb_error>();
  const atb_api& api = test::build_plugin("reference")->api();
  EXPECT_EQ(api.create_backend(&spec, "{}", &handle, &error), ATB_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(handle, nullptr);
  EXPECT_NE(std::string(error.message).find("layer_spec.struct_size = 52 is too small; allowed: >= 56"),
            std::string::npos)
      << error.message;
  spec.struct_size = ATB_LAYER_SPEC_MIN_STRUCT_SIZE;
  EXPECT_EQ(api.create_backend(&spec, "{}", &handle, &error), ATB_OK) << error.message;
  EXPECT_EQ(api.destroy_backend(handle, &error), ATB_OK);
}

TEST(AbiVersioning, ErrorMessagesAreTruncatedToTheHostsBuffer) {
  struct ShortError {
    size_t struct_size;
    int32_t status;
    char message[16];
    char canary[16];
  } error{};
  error.struct_size = offsetof(ShortError, canary);
  std::memset(error.canary, 0x77, sizeof(error.canary));
  atb_layer_spec bad = make_versioned<atb_layer_spec>();
  bad.attention_kind = ATB_ATTENTION_MLA;
  atb_backend* handle = nullptr;
  const atb_api& api = test::build_plugin("reference")->api();
  EXPECT_EQ(api.create_backend(&bad, nullptr, &handle, reinterpret_cast<atb_error*>(&error)), ATB_ERR_UNSUPPORTED);
  EXPECT_EQ(error.status, ATB_ERR_UNSUPPORTED);
  EXPECT_EQ(std::strlen(error.message), 15u);
  for (char c : error.canary) EXPECT_EQ(c, 0x77);
}

}  // namespace
}  // namespace atb
