// The turboquant codec's view of a layer's cache, for the f64 oracle (Scenario::set_stored_row):
// each K/V row encoded then decoded, with the layer's and head's rotation, as the plugin stores it.
#pragma once

#include <tq/quantizer.hpp>
#include <tq/rotation.hpp>

#include <memory>
#include <string>
#include <vector>

#include "scenario.hpp"

namespace atb::test {

// The codec's view of a layer's cache: encode then decode each row, as the plugin stores it.
class DecodedCache {
 public:
  DecodedCache(const LayerShape& shape, const std::string& k_name, const std::string& v_name, int layer,
               int first_global_head, uint64_t seed = tq::kDefaultRotationSeed) {
    key_ = std::move(*tq::make_quantizer(*tq::find_format(tq::Role::key, k_name), shape.head_size_k, seed));
    value_ = std::move(*tq::make_quantizer(*tq::find_format(tq::Role::value, v_name), shape.head_size_v, seed));
    for (int h = 0; h < shape.num_kv_heads; ++h) {
      key_rotations_.emplace_back(shape.head_size_k, seed, layer, first_global_head + h);
      value_rotations_.emplace_back(shape.head_size_v, seed, layer, first_global_head + h);
    }
  }
  Scenario::StoredRow stored_row() {
    return [this](bool is_key, int h, float* row) {
      const tq::Quantizer& q = is_key ? *key_ : *value_;
      const tq::Rotation& r = is_key ? key_rotations_[size_t(h)] : value_rotations_[size_t(h)];
      std::vector<uint8_t> bytes(q.row_bytes());
      std::vector<float> scratch(static_cast<size_t>(q.head_size()));
      tq::encode_vector(q, r, row, bytes.data(), scratch.data());
      tq::decode_vector(q, r, bytes.data(), row);
    };
  }

 private:
  std::unique_ptr<tq::Quantizer> key_, value_;
  std::vector<tq::Rotation> key_rotations_, value_rotations_;
};

}  // namespace atb::test
