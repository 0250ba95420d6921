#include "scenario.hpp"

#include <atb/half.hpp>
#include <atb/struct_io.hpp>

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace atb::test {

atb_layer_spec LayerShape::layer_spec(int layer_index, int num_layers) const {
  atb_layer_spec spec = host::standard_layer_spec(num_query_heads, num_kv_heads, head_size_k, dtype, block_size);
  spec.head_size_v = head_size_v;
  spec.sliding_window = sliding_window;
  spec.logits_soft_cap = soft_cap;
  spec.scale = scale;
  spec.layer_index = layer_index;
  spec.num_layers = num_layers;
  return spec;
}

OracleShape LayerShape::oracle_shape() const {
  return {num_query_heads,
          num_kv_heads,
          head_size_k,
          head_size_v,
          sliding_window,
          soft_cap,
          scale > 0 ? double(scale) : 1.0 / std::sqrt(double(head_size_k))};
}

std::string LayerShape::describe() const {
  std::ostringstream text;
  text << "heads " << num_query_heads << "/" << num_kv_heads << " d " << head_size_k << "/" << head_size_v << " block "
       << block_size << " window " << sliding_window << " softcap " << soft_cap << " scale " << scale << " dtype "
       << dtype_name(dtype);
  return text.str();
}

Scenario::Scenario(const LayerShape& shape, host::Backend& backend, int64_t num_pages, uint64_t seed,
                   uint64_t page_shuffle_seed)
    : shape_(shape),
      backend_(backend),
      pool_(std::move(*host::PagePool::allocate(*backend.kv_cache_spec(), num_pages))),
      manager_(shape.block_size, num_pages, page_shuffle_seed),
      rng_(seed),
      generator_([](std::mt19937_64& rng, int, int, int) { return std::normal_distribution<float>(0.0f, 1.0f)(rng); }) {
}

Expected<StepOutput> Scenario::step(const std::vector<host::PagedKvManager::SequenceStep>& steps) {
  auto batch = manager_.schedule(steps);
  if (!batch) return batch.error();
  const int32_t tokens = batch->num_tokens;
  host::HostTensor query(shape_.dtype, tokens, shape_.num_query_heads, shape_.head_size_k);
  host::HostTensor key(shape_.dtype, tokens, shape_.num_kv_heads, shape_.head_size_k);
  host::HostTensor value(shape_.dtype, tokens, shape_.num_kv_heads, shape_.head_size_v);
  host::HostTensor output(shape_.dtype, tokens, shape_.num_query_heads, shape_.head_size_v);
  for (int32_t t = 0; t < tokens; ++t) {
    for (int h = 0; h < shape_.num_query_heads; ++h)
      for (int d = 0; d < shape_.head_size_k; ++d) query.set(t, h, d, generator_(rng_, 0, h, d));
    for (int h = 0; h < shape_.num_kv_heads; ++h) {
      for (int d = 0; d < shape_.head_size_k; ++d) key.set(t, h, d, generator_(rng_, 1, h, d));
      for (int d = 0; d < shape_.head_size_v; ++d) value.set(t, h, d, generator_(rng_, 2, h, d));
    }
  }
  atb_forward_args args =
      host::make_forward_args(pool_, *batch, write_kv_only_ ? nullptr : query.descriptor(), key.descriptor(),
                              value.descriptor(), write_kv_only_ ? nullptr : output.descriptor());
  args.flags = write_kv_only_ ? ATB_FORWARD_WRITE_KV_ONLY : 0;
  ATB_RETURN_IF_ERROR(backend_.forward(args));

  for (int32_t s = 0; s < batch->num_seqs; ++s) {
    History& history = histories_[batch->sequence_ids[size_t(s)]];
    for (int32_t t = batch->query_start_loc[size_t(s)]; t < batch->query_start_loc[size_t(s) + 1]; ++t) {
      for (int h = 0; h < shape_.num_kv_heads; ++h) {
        const size_t k_begin = history.keys.size(), v_begin = history.values.size();
        for (int d = 0; d < shape_.head_size_k; ++d) history.keys.push_back(key.get(t, h, d));
        for (int d = 0; d < shape_.head_size_v; ++d) history.values.push_back(value.get(t, h, d));
        if (stored_row_) {
          stored_row_(true, h, history.keys.data() + k_begin);
          stored_row_(false, h, history.values.data() + v_begin);
        }
      }
    }
  }
  return StepOutput{std::move(*batch), std::move(query), std::move(output)};
}

void Scenario::rewrite_history(const StoredRow& stored_row) {
  for (auto& [id, history] : histories_) {
    const size_t rows = history.keys.size() / size_t(shape_.head_size_k);
    for (size_t r = 0; r < rows; ++r) {
      const int kv_head = int(r % size_t(shape_.num_kv_heads));
      stored_row(true, kv_head, history.keys.data() + r * size_t(shape_.head_size_k));
      stored_row(false, kv_head, history.values.data() + r * size_t(shape_.head_size_v));
    }
  }
}

void Scenario::release(int64_t sequence_id) {
  manager_.release(sequence_id);
  histories_.erase(sequence_id);
}

std::vector<double> Scenario::expected(const StepOutput& out, int32_t token) const {
  int32_t s = 0;
  while (out.batch.query_start_loc[size_t(s) + 1] <= token) ++s;
  const int32_t q_len = out.batch.query_start_loc[size_t(s) + 1] - out.batch.query_start_loc[size_t(s)];
  const int64_t position = out.batch.seq_lens[size_t(s)] - q_len + (token - out.batch.query_start_loc[size_t(s)]);
  const History& history = histories_.at(out.batch.sequence_ids[size_t(s)]);
  std::vector<float> query(size_t(shape_.num_query_heads) * shape_.head_size_k);
  for (int h = 0; h < shape_.num_query_heads; ++h)
    for (int d = 0; d < shape_.head_size_k; ++d) query[size_t(h) * shape_.head_size_k + d] = out.query.get(token, h, d);
  return oracle_attention(shape_.oracle_shape(), history.keys, history.values, query.data(), position);
}

Scenario::Comparison Scenario::compare(const StepOutput& out, double atol, double rtol,
                                       const std::vector<int32_t>& tokens) const {
  Comparison result;
  std::vector<int32_t> all;
  const std::vector<int32_t>* list = &tokens;
  if (tokens.empty()) {
    for (int32_t t = 0; t < out.batch.num_tokens; ++t) all.push_back(t);
    list = &all;
  }
  for (int32_t token : *list) {
    const auto want = expected(out, token);
    for (int h = 0; h < shape_.num_query_heads; ++h)
      for (int d = 0; d < shape_.head_size_v; ++d) {
        const double reference = want[size_t(h) * shape_.head_size_v + d];
        const double error = std::abs(double(out.output.get(token, h, d)) - reference);
        result.max_abs_error = std::max(result.max_abs_error, error);
        result.worst_ratio = std::max(result.worst_ratio, error / (atol + rtol * std::abs(reference)));
      }
    ++result.checked_tokens;
  }
  return result;
}

double Scenario::relative_l2(const StepOutput& out) const {
  double error = 0, norm = 0;
  for (int32_t token = 0; token < out.batch.num_tokens; ++token) {
    const std::vector<double> want = expected(out, token);
    for (int h = 0; h < shape_.num_query_heads; ++h)
      for (int d = 0; d < shape_.head_size_v; ++d) {
        const double reference = want[size_t(h) * shape_.head_size_v + d];
        error += std::pow(double(out.output.get(token, h, d)) - reference, 2);
        norm += reference * reference;
      }
  }
  return std::sqrt(error / norm);
}

}  // namespace atb::test
