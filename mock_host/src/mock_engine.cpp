#include <atb/mock_host/mock_engine.hpp>

#include "mock_engine_device.hpp"

#include <atb/half.hpp>

#include <cstring>
#include <random>
#include <sstream>

namespace atb::mock_host {

atb_layer_spec EngineShape::layer_spec() const {
  atb_layer_spec spec = host::standard_layer_spec(num_query_heads, num_kv_heads, head_size, dtype, block_size);
  spec.layer_index = layer_index;
  spec.num_layers = num_layers;
  spec.device_type = device_type;
  spec.sliding_window = sliding_window;
  spec.logits_soft_cap = soft_cap;
  spec.scale = scale;
  spec.kv_shared_with_layer = kv_shared_with_layer;
  return spec;
}

std::vector<ScriptStep> standard_script() {
  return {
      {{}, {{0, 37}, {1, 70}}},          // prefill of two sequences, crossing pages
      {{}, {{0, 1}, {1, 1}}},            // decode
      {{}, {{0, 23}, {1, 1}, {2, 19}}},  // chunked prefill, decode and a new prefill in one batch
      {{1}, {{3, 40}, {0, 1}, {2, 1}}},  // sequence 1 ends; a new one reuses its pages
  };
}

Expected<MockEngine> MockEngine::create(const host::Plugin& plugin, const EngineShape& shape, const std::string& config,
                                        int64_t num_pages, uint64_t seed, uint8_t page_fill) {
  auto backend = plugin.create_backend(shape.layer_spec(), config);
  if (!backend) return backend.error();
  auto spec = backend->kv_cache_spec();
  if (!spec) return spec.error();
  auto pool = host::PagePool::allocate(*spec, num_pages, kGuardBytes, kCanary);
  if (!pool) return pool.error();
  for (int64_t page = 0; page < pool->num_pages(); ++page)
    std::memset(pool->data() + uint64_t(page) * pool->stride_bytes(), page_fill, pool->page_bytes());
  MockEngine engine(shape, std::move(*backend), *spec, std::move(*pool), seed);
  if (shape.device_type == ATB_DEVICE_CUDA) {
    auto device = DeviceEngine::create(engine.pool_, *spec);
    if (!device) return device.error();
    engine.device_ = std::move(*device);
  }
  return engine;
}

MockEngine::MockEngine(const EngineShape& shape, host::Backend backend, atb_kv_cache_spec spec, host::PagePool pool,
                       uint64_t seed)
    : shape_(shape),
      backend_(std::move(backend)),
      spec_(spec),
      pool_(std::move(pool)),
      manager_(shape.block_size, pool_.num_pages(), shape.page_shuffle_seed.value_or(seed)),
      stream_(seed) {}

Expected<std::unique_ptr<PreparedStep>> MockEngine::prepare(const ScriptStep& script_step) {
  for (int64_t id : script_step.release) manager_.release(id);
  auto batch = manager_.schedule(script_step.tokens);
  if (!batch) return batch.error();
  const int32_t tokens = batch->num_tokens;
  auto prepared = std::make_unique<PreparedStep>(
      std::move(*batch),
      host::HostTensor(shape_.dtype, tokens + 2 * kGuardRows, shape_.num_query_heads, shape_.head_size));
  PreparedStep& step = *prepared;
  step.query.emplace(shape_.dtype, tokens, shape_.num_query_heads, shape_.head_size);
  step.key.emplace(shape_.dtype, tokens, shape_.num_kv_heads, shape_.head_size);
  step.value.emplace(shape_.dtype, tokens, shape_.num_kv_heads, shape_.head_size);
  std::mt19937_64 rng(stream_++);
  std::normal_distribution<float> normal;
  for (auto* tensor : {&*step.query, &*step.key, &*step.value})
    for (int64_t i = 0; i < tensor->size(0); ++i)
      for (int64_t j = 0; j < tensor->size(1); ++j)
        for (int64_t k = 0; k < tensor->size(2); ++k) tensor->set(i, j, k, normal(rng));
  std::memset(step.output.bytes(), kCanary, step.output.byte_size());
  step.output_view = *step.output.descriptor();
  step.output_view.data =
      step.output.bytes() + size_t(kGuardRows) * size_t(step.output_view.strides[0]) * dtype_size(shape_.dtype);
  step.output_view.shape[0] = tokens;
  step.args = host::make_forward_args(pool_, step.batch, step.query->descriptor(), step.key->descriptor(),
                                      step.value->descriptor(), &step.output_view);
  if (device_) ATB_RETURN_IF_ERROR(mirror_on_device(*device_, pool_, step));
  return prepared;
}

Status MockEngine::run(PreparedStep& step) {
  if (!device_) return backend_.forward(step.args);
  return run_on_device(*device_, pool_, step, backend_);
}

Status MockEngine::run_through(host::Backend& other, PreparedStep& step) {
  std::memset(step.output.bytes(), kCanary, step.output.byte_size());
  const atb_tensor* key = step.args.key;
  const atb_tensor* value = step.args.value;
  step.args.key = step.args.value = nullptr;
  const Status status = device_ ? run_on_device(*device_, pool_, step, other) : other.forward(step.args);
  step.args.key = key, step.args.value = value;
  return status;
}

Expected<std::vector<std::byte>> MockEngine::step(const ScriptStep& script_step) {
  auto prepared = prepare(script_step);
  if (!prepared) return prepared.error();
  PreparedStep& step = **prepared;
  ATB_RETURN_IF_ERROR(run(step));
  if (std::string broken = check_guards(&step); !broken.empty()) return Status::internal(broken);
  const auto* begin = static_cast<const std::byte*>(step.output_view.data);
  const size_t bytes = size_t(step.batch.num_tokens) * size_t(step.output_view.strides[0]) * dtype_size(shape_.dtype);
  return std::vector<std::byte>(begin, begin + bytes);
}

Expected<std::vector<std::byte>> MockEngine::run_script(const std::vector<ScriptStep>& script) {
  std::vector<std::byte> all;
  for (const ScriptStep& script_step : script) {
    auto out = step(script_step);
    if (!out) return out.error();
    all.insert(all.end(), out->begin(), out->end());
  }
  return all;
}

std::string MockEngine::check_guards(const PreparedStep* step) const {
  std::ostringstream report;
  // Pool: before page 0, between pages (stride - page_bytes), after the last page.
  const std::byte* base = pool_.allocation();
  const auto guard_broken = [&](uint64_t offset) { return base[offset] != std::byte(kCanary); };
  for (uint64_t offset = 0; offset < pool_.leading_bytes(); ++offset)
    if (guard_broken(offset)) {
      report << "the plugin wrote " << (pool_.leading_bytes() - offset) << " bytes before page 0 of the pool; ";
      break;
    }
  for (int64_t page = 0; page < pool_.num_pages() && report.tellp() == 0; ++page) {
    const uint64_t start = pool_.leading_bytes() + uint64_t(page) * pool_.stride_bytes() + pool_.page_bytes();
    const uint64_t end = std::min<uint64_t>(
        start + (pool_.stride_bytes() - pool_.page_bytes()) + (page + 1 == pool_.num_pages() ? kGuardBytes : 0),
        pool_.allocation_bytes());
    for (uint64_t offset = start; offset < end; ++offset)
      if (guard_broken(offset)) {
        report << "the plugin wrote past page " << page << ": byte " << (offset - start + spec_.page_bytes)
               << " of a page it says is " << spec_.page_bytes << " bytes (spec.page_bytes); ";
        break;
      }
  }
  if (step) {
    const size_t row_bytes = size_t(step->output_view.strides[0]) * dtype_size(shape_.dtype);
    const std::byte* out = step->output.bytes();
    const size_t after = size_t(kGuardRows + step->batch.num_tokens) * row_bytes;
    for (size_t i = 0; i < size_t(kGuardRows) * row_bytes; ++i)
      if (out[i] != std::byte(kCanary) || out[after + i] != std::byte(kCanary)) {
        report << "the plugin wrote outside the output tensor (" << (out[i] != std::byte(kCanary) ? "before" : "after")
               << " its " << step->batch.num_tokens << " rows); ";
        break;
      }
  }
  return report.str();
}

}  // namespace atb::mock_host
