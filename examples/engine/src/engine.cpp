#include <atb/engine/engine.hpp>
#include <atb/engine/kernels.hpp>

#include <algorithm>

namespace atb::engine {

Expected<Engine> Engine::create(Checkpoint checkpoint, const host::Plugin& plugin, const std::string& config,
                                uint64_t kv_memory, int threads) {
  const ModelConfig& c = checkpoint.config;
  std::vector<host::Backend> layers;
  std::vector<atb_kv_cache_spec> specs;
  uint64_t bytes_per_page = 0, bytes_per_token = 0;
  for (int layer = 0; layer < c.n_layers; ++layer) {
    atb_layer_spec spec =
        host::standard_layer_spec(c.n_heads, c.n_kv_heads, c.head_size(), ATB_DTYPE_F32, kEngineBlockSize);
    spec.layer_index = layer;
    spec.num_layers = c.n_layers;
    auto backend = plugin.create_backend(spec, config);
    if (!backend) return backend.error();
    auto cache = backend->kv_cache_spec();
    if (!cache) return cache.error();
    bytes_per_page += cache->page_bytes;
    bytes_per_token += uint64_t(c.n_kv_heads) * (cache->k_bytes_per_token_per_head + cache->v_bytes_per_token_per_head);
    specs.push_back(*cache);
    layers.push_back(std::move(*backend));
  }
  const int64_t pages = int64_t(kv_memory / bytes_per_page);
  if (pages < (c.seq_len + kEngineBlockSize - 1) / kEngineBlockSize)
    return Status::invalid("--kv-memory " + std::to_string(kv_memory) + " bytes holds " + std::to_string(pages) +
                           " pages per layer; one full-length sequence needs " +
                           std::to_string((c.seq_len + kEngineBlockSize - 1) / kEngineBlockSize));
  std::vector<host::PagePool> pools;
  for (const auto& spec : specs) {
    auto pool = host::PagePool::allocate(spec, pages);
    if (!pool) return pool.error();
    pools.push_back(std::move(*pool));
  }
  return Engine(std::move(checkpoint), std::move(layers), std::move(pools), threads, bytes_per_token);
}

Engine::Engine(Checkpoint checkpoint, std::vector<host::Backend> layers, std::vector<host::PagePool> pools, int threads,
               uint64_t kv_bytes_per_token)
    : checkpoint_(std::move(checkpoint)),
      layers_(std::move(layers)),
      pools_(std::move(pools)),
      manager_(kEngineBlockSize, pools_.front().num_pages()),
      threads_(threads),
      kv_bytes_per_token_(kv_bytes_per_token) {}

Expected<std::vector<float>> Engine::forward(const std::vector<SequenceInput>& inputs) {
  const ModelConfig& c = checkpoint_.config;
  const Weights& w = checkpoint_.weights;
  std::vector<host::PagedKvManager::SequenceStep> steps;
  for (const auto& input : inputs) {
    const int64_t length = int64_t(manager_.length(input.id)) + int64_t(input.tokens.size());
    if (length > c.seq_len)
      return Status::invalid("sequence " + std::to_string(input.id) + " would reach " + std::to_string(length) +
                             " tokens; the model's context is " + std::to_string(c.seq_len));
    for (int token : input.tokens)
      if (token < 0 || token >= c.vocab_size)
        return Status::invalid("token " + std::to_string(token) + " is outside the vocabulary (0 .. " +
                               std::to_string(c.vocab_size - 1) + ")");
    steps.push_back({input.id, int32_t(input.tokens.size())});
  }
  auto batch = manager_.schedule(steps);
  if (!batch) return batch.error();
  const int T = batch->num_tokens, D = c.dim, KV = c.kv_dim(), H = c.hidden_dim, hd = c.head_size();
  std::vector<int> positions(static_cast<size_t>(T)), tokens(static_cast<size_t>(T));
  for (size_t s = 0; s < inputs.size(); ++s) {
    const int32_t begin = batch->query_start_loc[s];
    for (size_t i = 0; i < inputs[s].tokens.size(); ++i) {
      tokens[size_t(begin) + i] = inputs[s].tokens[i];
      positions[size_t(begin) + i] = batch->seq_lens[s] - int(inputs[s].tokens.size()) + int(i);
    }
  }
  std::vector<float> x(size_t(T) * D), xb(size_t(T) * D), q(size_t(T) * D), k(size_t(T) * KV), v(size_t(T) * KV),
      attention(size_t(T) * D), h1(size_t(T) * H), h3(size_t(T) * H), delta(size_t(T) * D);
  for (int t = 0; t < T; ++t)
    std::copy_n(w.token_embedding.data() + size_t(tokens[size_t(t)]) * D, D, x.data() + size_t(t) * D);
  const size_t half = size_t(hd / 2);
  for (int l = 0; l < c.n_layers; ++l) {
    const size_t L = size_t(l);
    rmsnorm(x.data(), w.rms_att.data() + L * D, xb.data(), T, D);
    matmul(xb.data(), w.wq.data() + L * D * D, q.data(), T, D, D, threads_);
    matmul(xb.data(), w.wk.data() + L * KV * D, k.data(), T, D, KV, threads_);
    matmul(xb.data(), w.wv.data() + L * KV * D, v.data(), T, D, KV, threads_);
    for (int t = 0; t < T; ++t) {
      const float* cos_row = w.rope_cos.data() + size_t(positions[size_t(t)]) * half;
      const float* sin_row = w.rope_sin.data() + size_t(positions[size_t(t)]) * half;
      rope(q.data() + size_t(t) * D, c.n_heads, hd, cos_row, sin_row);
      rope(k.data() + size_t(t) * KV, c.n_kv_heads, hd, cos_row, sin_row);
    }
    if (kv_observer_) kv_observer_(l, T, k.data(), v.data());
    const atb_tensor tq = host::dense_tensor(q.data(), ATB_DTYPE_F32, T, c.n_heads, hd),
                     tk = host::dense_tensor(k.data(), ATB_DTYPE_F32, T, c.n_kv_heads, hd),
                     tv = host::dense_tensor(v.data(), ATB_DTYPE_F32, T, c.n_kv_heads, hd),
                     to = host::dense_tensor(attention.data(), ATB_DTYPE_F32, T, c.n_heads, hd);
    ATB_RETURN_IF_ERROR(layers_[L].forward(host::make_forward_args(pools_[L], *batch, &tq, &tk, &tv, &to)));
    matmul(attention.data(), w.wo.data() + L * D * D, delta.data(), T, D, D, threads_);
    for (size_t i = 0; i < x.size(); ++i) x[i] += delta[i];
    rmsnorm(x.data(), w.rms_ffn.data() + L * D, xb.data(), T, D);
    matmul(xb.data(), w.w1.data() + L * H * D, h1.data(), T, D, H, threads_);
    matmul(xb.data(), w.w3.data() + L * H * D, h3.data(), T, D, H, threads_);
    swiglu(h1.data(), h3.data(), h1.size());
    matmul(h1.data(), w.w2.data() + L * D * H, delta.data(), T, H, D, threads_);
    for (size_t i = 0; i < x.size(); ++i) x[i] += delta[i];
  }
  rmsnorm(x.data(), w.rms_final.data(), xb.data(), T, D);
  std::vector<float> logits(size_t(T) * size_t(c.vocab_size));
  const std::vector<float>& classifier = c.shared_classifier ? w.token_embedding : w.classifier;
  matmul(xb.data(), classifier.data(), logits.data(), T, D, c.vocab_size, threads_);
  return logits;
}

}  // namespace atb::engine
