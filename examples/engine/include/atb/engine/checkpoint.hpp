// A llama2.c checkpoint (legacy version 0, little-endian f32), validated before use: the header's sizes
// must be possible and the file exactly as long as they say.
#pragma once

#include <atb/status.hpp>

#include <cstdint>
#include <filesystem>
#include <istream>
#include <string>
#include <vector>

namespace atb::engine {

struct ModelConfig {
  int dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier = true;  // a positive vocab_size in the header
  int head_size() const { return dim / n_heads; }
  int kv_dim() const { return n_kv_heads * head_size(); }
};

struct Weights {
  std::vector<float> token_embedding;     // [vocab, dim]
  std::vector<float> rms_att, rms_ffn;    // [layer, dim]
  std::vector<float> wq, wk, wv, wo;      // [layer, out, in]
  std::vector<float> w1, w2, w3;          // [layer, hidden, dim], [layer, dim, hidden], [layer, hidden, dim]
  std::vector<float> rms_final;           // [dim]
  std::vector<float> rope_cos, rope_sin;  // [seq_len, head_size / 2], as trained
  std::vector<float> classifier;          // [vocab, dim]; empty when shared with the embedding
};

struct Checkpoint {
  ModelConfig config;
  Weights weights;
};

Expected<Checkpoint> load_checkpoint(const std::filesystem::path& path);
// The same from `size` bytes of a stream; `name` is what messages call it.
Expected<Checkpoint> read_checkpoint(std::istream& in, uint64_t size, const std::string& name);

}  // namespace atb::engine
