// What the reference backend refuses: each bad field gets a status and a message naming it, and
// nothing is written.
#include <gtest/gtest.h>

#include <atb/struct_io.hpp>

#include <cstring>
#include <functional>

#include "../support/plugins.hpp"
#include "../support/scenario.hpp"

namespace atb::test {
namespace {

LayerShape small_shape() {
  LayerShape shape;
  shape.num_query_heads = 4;
  shape.num_kv_heads = 2;
  shape.head_size_k = shape.head_size_v = 64;
  return shape;
}

TEST(ReferenceRefusals, CreateRefusesWhatItCannotServe) {
  const LayerShape shape = small_shape();
  struct Case {
    const char* name;
    std::function<void(atb_layer_spec&)> mutate;
    const char* config;
    atb_status status;
    const char* message_part;
  };
  const std::vector<Case> cases = {
      {"MLA", [](atb_layer_spec& s) { s.attention_kind = ATB_ATTENTION_MLA; }, "{}", ATB_ERR_UNSUPPORTED,
       "attention_kind = 2 (MLA)"},
      {"linear", [](atb_layer_spec& s) { s.attention_kind = ATB_ATTENTION_LINEAR; }, "{}", ATB_ERR_UNSUPPORTED,
       "attention_kind = 3 (LINEAR)"},
      {"bad dtype", [](atb_layer_spec& s) { s.dtype = 9; }, "{}", ATB_ERR_INVALID_ARGUMENT, "layer_spec.dtype = 9"},
      {"head size", [](atb_layer_spec& s) { s.head_size_k = 72; }, "{}", ATB_ERR_UNSUPPORTED,
       "layer_spec.head_size_k = 72"},
      {"gqa ratio", [](atb_layer_spec& s) { s.num_query_heads = 5; }, "{}", ATB_ERR_INVALID_ARGUMENT,
       "layer_spec.num_query_heads = 5"},
      {"zero kv heads", [](atb_layer_spec& s) { s.num_kv_heads = 0; }, "{}", ATB_ERR_INVALID_ARGUMENT,
       "layer_spec.num_kv_heads = 0"},
      {"block size", [](atb_layer_spec& s) { s.block_size = 0; }, "{}", ATB_ERR_INVALID_ARGUMENT,
       "layer_spec.block_size = 0"},
      {"window", [](atb_layer_spec& s) { s.sliding_window = -3; }, "{}", ATB_ERR_INVALID_ARGUMENT,
       "layer_spec.sliding_window = -3"},
      {"layer index",
       [](atb_layer_spec& s) {
         s.layer_index = 4;
         s.num_layers = 4;
       },
       "{}", ATB_ERR_INVALID_ARGUMENT, "layer_spec.layer_index = 4"},
      {"sharing forward", [](atb_layer_spec& s) { s.kv_shared_with_layer = 0; }, "{}", ATB_ERR_INVALID_ARGUMENT,
       "kv_shared_with_layer = 0"},
      {"cuda", [](atb_layer_spec& s) { s.device_type = ATB_DEVICE_CUDA; }, "{}", ATB_ERR_UNSUPPORTED,
       "device_type = 2"},
      {"malformed json", [](atb_layer_spec&) {}, "{\"threads\": ", ATB_ERR_INVALID_ARGUMENT, "malformed JSON"},
      {"json not object", [](atb_layer_spec&) {}, "[1, 2]", ATB_ERR_INVALID_ARGUMENT, "expected a JSON object"},
      {"unknown key", [](atb_layer_spec&) {}, "{\"thread\": 2}", ATB_ERR_INVALID_ARGUMENT, "config key 'thread'"},
      {"wrong type", [](atb_layer_spec&) {}, "{\"threads\": \"two\"}", ATB_ERR_INVALID_ARGUMENT,
       "config key 'threads': \"two\" is not an integer"},
      {"out of range", [](atb_layer_spec&) {}, "{\"threads\": 0}", ATB_ERR_INVALID_ARGUMENT,
       "config key 'threads': 0 is out of range"},
      {"bad choice", [](atb_layer_spec&) {}, "{\"cache_dtype\": \"f8\"}", ATB_ERR_INVALID_ARGUMENT,
       "allowed: auto, f32, f16, bf16"},
      {"duplicate key", [](atb_layer_spec&) {}, "{\"threads\": 1, \"threads\": 2}", ATB_ERR_INVALID_ARGUMENT,
       "key 'threads' is given more than once"},
      {"duplicate key, later", [](atb_layer_spec&) {}, "{\"kernel\": \"scalar\", \"threads\": 1, \"kernel\": \"auto\"}",
       ATB_ERR_INVALID_ARGUMENT, "key 'kernel' is given more than once"},
  };
  for (const auto& c : cases) {
    atb_layer_spec spec = shape.layer_spec(0, 4);
    c.mutate(spec);
    auto backend = create_backend("reference", spec, c.config);
    ASSERT_FALSE(backend) << c.name;
    EXPECT_EQ(backend.error().code(), c.status) << c.name << ": " << backend.error().message();
    EXPECT_NE(backend.error().message().find(c.message_part), std::string::npos)
        << c.name << ": '" << backend.error().message() << "' lacks '" << c.message_part << "'";
  }
}

class ReferenceForwardRefusals : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = create_backend("reference", shape_.layer_spec(), "{}");
    ASSERT_TRUE(created) << created.error().message();
    backend_.emplace(std::move(*created));
    spec_ = *backend_->kv_cache_spec();
    pool_.emplace(std::move(*host::PagePool::allocate(spec_, kPages, 0, 0xA5)));
    host::PagedKvManager manager(shape_.block_size, kPages);
    batch_ = *manager.schedule({{0, 20}, {1, 1}});
    for (auto* tensor : {&query_, &key_, &value_})
      for (size_t i = 0; i < tensor->byte_size(); ++i) tensor->bytes()[i] = std::byte(i * 7 % 251);
    std::memset(output_.bytes(), 0x5A, output_.byte_size());
  }

  atb_forward_args valid_args() {
    return host::make_forward_args(*pool_, batch_, query_.descriptor(), key_.descriptor(), value_.descriptor(),
                                   output_.descriptor());
  }

  // Forward with one field made bad must fail naming `message_part` and write nothing.
  void expect_refused(const char* what, const atb_forward_args& args, const std::string& message_part) {
    const std::vector<std::byte> pages_before(pool_->allocation(), pool_->allocation() + pool_->allocation_bytes());
    const std::vector<std::byte> output_before(output_.bytes(), output_.bytes() + output_.byte_size());
    Status status = backend_->forward(args);
    ASSERT_FALSE(status) << what;
    EXPECT_EQ(status.code(), ATB_ERR_INVALID_ARGUMENT) << what;
    EXPECT_NE(status.message().find(message_part), std::string::npos)
        << what << ": '" << status.message() << "' lacks '" << message_part << "'";
    EXPECT_TRUE(std::equal(pages_before.begin(), pages_before.end(), pool_->allocation())) << what << ": pages changed";
    EXPECT_TRUE(std::equal(output_before.begin(), output_before.end(), output_.bytes())) << what << ": output changed";
  }

  static constexpr int64_t kPages = 8;
  LayerShape shape_ = small_shape();
  std::optional<host::Backend> backend_;
  atb_kv_cache_spec spec_{};
  std::optional<host::PagePool> pool_;
  host::StepBatch batch_;
  host::HostTensor query_{ATB_DTYPE_F32, 21, 4, 64};
  host::HostTensor key_{ATB_DTYPE_F32, 21, 2, 64};
  host::HostTensor value_{ATB_DTYPE_F32, 21, 2, 64};
  host::HostTensor output_{ATB_DTYPE_F32, 21, 4, 64};
};

TEST_F(ReferenceForwardRefusals, ValidArgumentsWork) { EXPECT_TRUE(backend_->forward(valid_args())); }

TEST_F(ReferenceForwardRefusals, EachBadFieldIsNamed) {
  {
    auto args = valid_args();
    args.query = nullptr;
    expect_refused("null query", args, "forward_args.query is NULL");
  }
  {
    auto args = valid_args();
    args.kv_pages = nullptr;
    expect_refused("null pages", args, "forward_args.kv_pages is NULL");
  }
  {
    auto args = valid_args();
    args.slot_mapping = nullptr;
    expect_refused("null slots", args, "forward_args.slot_mapping is NULL");
  }
  {
    auto args = valid_args();
    args.block_tables = nullptr;
    expect_refused("null block tables", args, "forward_args.block_tables is NULL");
  }
  {
    host::HostTensor wide(ATB_DTYPE_F32, 21, 2, 128);
    auto args = valid_args();
    args.key = wide.descriptor();
    expect_refused("head size mismatch", args, "forward_args.key->shape[2] = 128");
  }
  {
    host::HostTensor half(ATB_DTYPE_F16, 21, 4, 64);
    auto args = valid_args();
    args.query = half.descriptor();
    expect_refused("dtype mismatch", args, "forward_args.query->dtype = 2");
  }
  {
    atb_tensor on_gpu = *output_.descriptor();
    on_gpu.device_type = ATB_DEVICE_CUDA;
    auto args = valid_args();
    args.output = &on_gpu;
    expect_refused("device mismatch", args, "forward_args.output->device_type = 2");
  }
  {
    atb_tensor misaligned = *query_.descriptor();
    misaligned.data = query_.bytes() + 1;
    auto args = valid_args();
    args.query = &misaligned;
    expect_refused("misaligned", args, "is misaligned");
  }
  {
    auto slots = batch_.slot_mapping;
    slots[3] = kPages * shape_.block_size;
    auto args = valid_args();
    args.slot_mapping = slots.data();
    expect_refused("slot outside the pool", args, "forward_args.slot_mapping[3] = 128 is outside the pool");
  }
  {
    auto slots = batch_.slot_mapping;
    slots[4] = slots[4] == 0 ? 1 : slots[4] - 1;  // inside the pool, but not the slot of token 4's position
    auto args = valid_args();
    args.slot_mapping = slots.data();
    expect_refused("slot that disagrees with the block table", args,
                   "forward_args.slot_mapping[4] = " + std::to_string(slots[4]) + " disagrees with the block table");
  }
  {
    auto tables = batch_.block_tables;
    tables[0] = int32_t(kPages);
    auto args = valid_args();
    args.block_tables = tables.data();
    expect_refused("block id outside the pool", args, "forward_args.block_tables[0][0] = 8 is outside the pool");
  }
  {
    auto lens = batch_.seq_lens;
    lens[1] = 1000;
    auto args = valid_args();
    args.seq_lens = lens.data();
    expect_refused("sequence longer than its table", args,
                   "forward_args.seq_lens[1] = 1000 is longer than its block table");
  }
  {
    auto starts = batch_.query_start_loc;  // {0, 20, 21}
    starts[1] = 22;
    auto args = valid_args();
    args.query_start_loc = starts.data();
    expect_refused("non-monotone offsets", args, "forward_args.query_start_loc[2] = 21 is below entry 1");
  }
  {
    auto lens = batch_.seq_lens;
    lens[0] = 5;  // fewer than its 20 new tokens
    auto args = valid_args();
    args.seq_lens = lens.data();
    expect_refused("seq_len below q_len", args, "forward_args.seq_lens[0] = 5");
  }
  {
    auto args = valid_args();
    args.page_stride_bytes = spec_.page_bytes - 64;
    expect_refused("stride below page size", args, "forward_args.page_stride_bytes");
  }
  {
    auto args = valid_args();
    args.num_tokens = -1;
    expect_refused("negative tokens", args, "forward_args.num_tokens = -1");
  }
  {
    auto args = valid_args();
    args.struct_size = 4;
    expect_refused("tiny struct", args, "forward_args.struct_size = 4");
  }
  {
    auto args = valid_args();
    args.struct_size = ATB_FORWARD_ARGS_MIN_STRUCT_SIZE - 4;
    expect_refused("struct cut inside block_table_stride", args, "allowed: >= 108");
  }
  {
    atb_tensor aliased = *output_.descriptor();
    aliased.strides[1] = 0;
    auto args = valid_args();
    args.output = &aliased;
    expect_refused("zero output stride", args, "forward_args.output->strides[1] = 0 over 4 heads");
  }
  {
    auto args = valid_args();
    args.flags = 1u << 7;
    expect_refused("unknown flag", args, "forward_args.flags = 128");
  }
}

// Rules of abi.h the host may rely on: zero strides on inputs broadcast, the forward arguments at
// their minimum size work, and WRITE_KV_ONLY needs no sequences.
TEST_F(ReferenceForwardRefusals, WhatTheHeaderAllows) {
  {
    auto args = valid_args();
    args.struct_size = ATB_FORWARD_ARGS_MIN_STRUCT_SIZE;  // workspace and flags take their defaults
    EXPECT_TRUE(backend_->forward(args));
  }
  {
    atb_tensor broadcast = *query_.descriptor();
    broadcast.strides[1] = 0;  // every query head reads head 0's elements
    auto args = valid_args();
    args.query = &broadcast;
    EXPECT_TRUE(backend_->forward(args));
  }
  // The K/V pages WRITE_KV_ONLY writes are the same with and without the sequence arrays.
  auto with_sequences = valid_args();
  with_sequences.flags = ATB_FORWARD_WRITE_KV_ONLY;
  with_sequences.query = with_sequences.output = nullptr;
  ASSERT_TRUE(backend_->forward(with_sequences));
  const std::vector<std::byte> written(pool_->allocation(), pool_->allocation() + pool_->allocation_bytes());
  std::memset(pool_->data(), 0xA5, size_t(kPages) * pool_->stride_bytes());
  auto without = with_sequences;
  without.num_seqs = 0;
  without.query_start_loc = without.seq_lens = nullptr;
  without.block_tables = nullptr;
  ASSERT_TRUE(backend_->forward(without));
  EXPECT_TRUE(std::equal(written.begin(), written.end(), pool_->allocation()));
  auto slots = batch_.slot_mapping;
  slots[2] = kPages * shape_.block_size;
  without.slot_mapping = slots.data();
  expect_refused("slot outside the pool without sequences", without,
                 "forward_args.slot_mapping[2] = 128 is outside the pool");
}

TEST_F(ReferenceForwardRefusals, SpecAccountsForEveryByte) {
  EXPECT_EQ(spec_.k_bytes_per_token_per_head, 64u * 4);
  EXPECT_EQ(spec_.v_bytes_per_token_per_head, 64u * 4);
  EXPECT_EQ(spec_.page_bytes, uint64_t(shape_.block_size) * shape_.num_kv_heads * (64 * 4 + 64 * 4));
  EXPECT_EQ(spec_.block_size, shape_.block_size);
  EXPECT_EQ(spec_.writes_kv, 1);
  EXPECT_EQ(spec_.cache_flags, 0u);
  EXPECT_EQ(spec_.workspace_alignment, 256u);
}

// A 16-bit cache of an f32 layer takes fewer bytes than the dtype: the spec says it is compressed.
TEST(ReferenceCacheFlags, SixteenBitRowsOfAnF32LayerAreCompressed) {
  const LayerShape shape = small_shape();
  for (const char* config :
       {"{\"cache_dtype\": \"f16\"}", "{\"cache_dtype\": \"bf16\"}", "{\"cache_dtype\": \"f32\"}"}) {
    auto backend = create_backend("reference", shape.layer_spec(), config);
    ASSERT_TRUE(backend) << backend.error().message();
    const bool sixteen = std::string(config).find("16") != std::string::npos;
    EXPECT_EQ(backend->kv_cache_spec()->cache_flags, sixteen ? uint32_t(ATB_KV_CACHE_COMPRESSED) : 0u) << config;
  }
}

// The published schema lists the keys create_backend reads, with their types, defaults and ranges.
TEST(ReferenceConfigSchema, ListsEveryKeyWithItsRange) {
  const host::Plugin* plugin = build_plugin("reference");
  ASSERT_NE(plugin, nullptr);
  auto schema = plugin->config_schema();
  ASSERT_TRUE(schema) << schema.error().message();
  EXPECT_NE(schema->find("\"additionalProperties\":false"), std::string::npos) << *schema;
  EXPECT_NE(schema->find("\"cache_dtype\":{\"default\":\"auto\",\"description\""), std::string::npos) << *schema;
  EXPECT_NE(schema->find("\"enum\":[\"auto\",\"f32\",\"f16\",\"bf16\"]"), std::string::npos) << *schema;
  EXPECT_NE(schema->find("\"maximum\":1024,\"minimum\":1,\"type\":\"integer\""), std::string::npos) << *schema;
}

}  // namespace
}  // namespace atb::test
