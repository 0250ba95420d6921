#include <atb/cli/decode_workload.hpp>
#include <atb/struct_io.hpp>

#include <algorithm>
#include <random>

namespace atb::cli {

namespace {
constexpr int kFillChunk = 2048;
}  // namespace

void fill_normal(host::HostTensor& tensor, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < tensor.size(0); ++i)
    for (int64_t j = 0; j < tensor.size(1); ++j)
      for (int64_t k = 0; k < tensor.size(2); ++k) tensor.set(i, j, k, normal(rng));
}

Expected<DecodeWorkload> DecodeWorkload::create(const host::Plugin& plugin, const std::string& config_json,
                                                const WorkloadShape& shape, uint64_t seed) {
  const atb_layer_spec spec = host::standard_layer_spec(shape.num_query_heads, shape.num_kv_heads, shape.head_size,
                                                        shape.dtype, shape.block_size);
  auto backend = plugin.create_backend(spec, config_json);
  if (!backend) return backend.error();
  auto cache = backend->kv_cache_spec();
  if (!cache) return cache.error();
  const int64_t pages_per_seq = (int64_t(shape.context) + shape.step_tokens + shape.block_size - 1) / shape.block_size;
  auto pool = host::PagePool::allocate(*cache, pages_per_seq * shape.batch);
  if (!pool) return pool.error();
  return DecodeWorkload(shape, std::move(*backend), *cache, std::move(*pool), seed);
}

DecodeWorkload::DecodeWorkload(const WorkloadShape& shape, host::Backend backend, atb_kv_cache_spec spec,
                               host::PagePool pool, uint64_t seed)
    : shape_(shape),
      backend_(std::move(backend)),
      spec_(spec),
      pool_(std::move(pool)),
      manager_(shape.block_size, pool_.num_pages(), seed),
      seed_(seed) {}

Status DecodeWorkload::run(const host::StepBatch& batch, const host::HostTensor* query, const host::HostTensor& key,
                           const host::HostTensor& value, host::HostTensor* output, bool write_only) {
  atb_forward_args args = host::make_forward_args(pool_, batch, query ? query->descriptor() : nullptr, key.descriptor(),
                                                  value.descriptor(), output ? output->descriptor() : nullptr);
  args.flags = write_only ? ATB_FORWARD_WRITE_KV_ONLY : 0;
  return backend_.forward(args);
}

Status DecodeWorkload::fill() {
  // One chunk of random K/V, written again and again: the values do not matter for speed.
  host::HostTensor key(shape_.dtype, kFillChunk, shape_.num_kv_heads, shape_.head_size);
  host::HostTensor value(shape_.dtype, kFillChunk, shape_.num_kv_heads, shape_.head_size);
  fill_normal(key, seed_ + 1);
  fill_normal(value, seed_ + 2);
  ATB_RETURN_IF_ERROR(fill_with([&](int, int64_t, host::HostTensor& chunk_key, host::HostTensor& chunk_value) {
    std::copy_n(key.bytes(), chunk_key.byte_size(), chunk_key.bytes());
    std::copy_n(value.bytes(), chunk_value.byte_size(), chunk_value.bytes());
  }));
  fill_normal(*decode_key_, seed_ + 4);
  fill_normal(*decode_value_, seed_ + 5);
  return Status::ok();
}

Status DecodeWorkload::fill(KvData data, uint64_t data_seed) {
  const int d = shape_.head_size;
  const auto write = [&](int sequence, int64_t first_token, int64_t row, host::HostTensor& key, host::HostTensor& value,
                         int tokens) {
    for (int h = 0; h < shape_.num_kv_heads; ++h) {
      const GeneratorSlot slot = generator_slot(data, 0, sequence, first_token);
      const auto k = synthetic_kv(data, true, slot.layer, h, slot.first_token, tokens, d, data_seed);
      const auto v = synthetic_kv(data, false, slot.layer, h, slot.first_token, tokens, d, data_seed);
      for (int t = 0; t < tokens; ++t)
        for (int i = 0; i < d; ++i) {
          key.set(row + t, h, i, k[size_t(t) * size_t(d) + size_t(i)]);
          value.set(row + t, h, i, v[size_t(t) * size_t(d) + size_t(i)]);
        }
    }
  };
  ATB_RETURN_IF_ERROR(fill_with([&](int sequence, int64_t first_token, host::HostTensor& key, host::HostTensor& value) {
    write(sequence, first_token, 0, key, value, int(key.size(0)));
  }));
  for (int s = 0; s < shape_.batch; ++s)
    write(s, shape_.context, int64_t(s) * shape_.step_tokens, *decode_key_, *decode_value_, shape_.step_tokens);
  if (data == KvData::llm) divide_queries_by_key_factors(data_seed);
  return Status::ok();
}

void DecodeWorkload::divide_queries_by_key_factors(uint64_t data_seed) {
  const int group = shape_.num_query_heads / shape_.num_kv_heads;
  for (int s = 0; s < shape_.batch; ++s)
    for (int kv_head = 0; kv_head < shape_.num_kv_heads; ++kv_head) {
      const int layer = generator_slot(KvData::llm, 0, s, 0).layer;
      const auto factor = channel_profile(KvData::llm, true, layer, kv_head, shape_.head_size, data_seed).factor;
      for (int64_t t = int64_t(s) * shape_.step_tokens; t < int64_t(s + 1) * shape_.step_tokens; ++t)
        for (int h = kv_head * group; h < (kv_head + 1) * group; ++h)
          for (int i = 0; i < shape_.head_size; ++i)
            decode_query_->set(t, h, i, decode_query_->get(t, h, i) / factor[size_t(i)]);
    }
}

Status DecodeWorkload::fill_with(const ChunkWriter& write_chunk) {
  for (int s = 0; s < shape_.batch; ++s) {
    for (int done = 0; done < shape_.context; done += kFillChunk) {
      const int n = std::min(kFillChunk, shape_.context - done);
      auto batch = manager_.schedule({{s, n}});
      if (!batch) return batch.error();
      host::HostTensor chunk_key(shape_.dtype, n, shape_.num_kv_heads, shape_.head_size);
      host::HostTensor chunk_value(shape_.dtype, n, shape_.num_kv_heads, shape_.head_size);
      write_chunk(s, done, chunk_key, chunk_value);
      ATB_RETURN_IF_ERROR(run(*batch, nullptr, chunk_key, chunk_value, nullptr, true));
    }
  }
  std::vector<host::PagedKvManager::SequenceStep> steps;
  for (int s = 0; s < shape_.batch; ++s) steps.push_back({s, shape_.step_tokens});
  auto decode = manager_.schedule(steps);
  if (!decode) return decode.error();
  decode_batch_ = std::move(*decode);
  const int64_t tokens = int64_t(shape_.batch) * shape_.step_tokens;
  decode_query_.emplace(shape_.dtype, tokens, shape_.num_query_heads, shape_.head_size);
  decode_key_.emplace(shape_.dtype, tokens, shape_.num_kv_heads, shape_.head_size);
  decode_value_.emplace(shape_.dtype, tokens, shape_.num_kv_heads, shape_.head_size);
  decode_output_.emplace(shape_.dtype, tokens, shape_.num_query_heads, shape_.head_size);
  fill_normal(*decode_query_, seed_ + 3);
  return Status::ok();
}

Status DecodeWorkload::decode_step(bool write_only) {
  if (!decode_batch_) return Status::invalid("decode_step: fill() first");
  if (write_only) return run(*decode_batch_, nullptr, *decode_key_, *decode_value_, nullptr, true);
  return run(*decode_batch_, &*decode_query_, *decode_key_, *decode_value_, &*decode_output_, false);
}

uint64_t DecodeWorkload::kv_bytes_per_step() const {
  const uint64_t per_token =
      uint64_t(shape_.num_kv_heads) * (spec_.k_bytes_per_token_per_head + spec_.v_bytes_per_token_per_head);
  return per_token * uint64_t(shape_.context + 1) * uint64_t(shape_.batch);
}

}  // namespace atb::cli
