#include <atb/engine/checkpoint.hpp>

#include <cstdint>
#include <cmath>
#include <cstring>
#include <fstream>

namespace atb::engine {
namespace {

Status check_range(const char* field, int64_t value, int64_t low, int64_t high) {
  if (value < low || value > high)
    return Status::invalid(std::string("checkpoint header ") + field + " = " + std::to_string(value) +
                           "; allowed: " + std::to_string(low) + " .. " + std::to_string(high));
  return Status::ok();
}

}  // namespace

Expected<Checkpoint> load_checkpoint(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::invalid("cannot open checkpoint " + path.string());
  std::error_code error;
  const uint64_t size = std::filesystem::file_size(path, error);
  if (error) return Status::invalid("cannot read the size of checkpoint " + path.string() + ": " + error.message());
  return read_checkpoint(file, size, path.string());
}

Expected<Checkpoint> read_checkpoint(std::istream& file, uint64_t actual, const std::string& name) {
  int32_t header[7];
  if (!file.read(reinterpret_cast<char*>(header), sizeof header))
    return Status::invalid("checkpoint " + name + " is shorter than its 28-byte header");
  Checkpoint checkpoint;
  ModelConfig& c = checkpoint.config;
  c.dim = header[0];
  c.hidden_dim = header[1];
  c.n_layers = header[2];
  c.n_heads = header[3];
  c.n_kv_heads = header[4];
  c.shared_classifier = header[5] > 0;
  const int64_t vocab = header[5] < 0 ? -int64_t(header[5]) : header[5];
  c.seq_len = header[6];
  ATB_RETURN_IF_ERROR(check_range("dim", c.dim, 1, 1 << 16));
  ATB_RETURN_IF_ERROR(check_range("hidden_dim", c.hidden_dim, 1, 1 << 18));
  ATB_RETURN_IF_ERROR(check_range("n_layers", c.n_layers, 1, 1024));
  ATB_RETURN_IF_ERROR(check_range("n_heads", c.n_heads, 1, c.dim));
  ATB_RETURN_IF_ERROR(check_range("n_kv_heads", c.n_kv_heads, 1, c.n_heads));
  ATB_RETURN_IF_ERROR(check_range("vocab_size", vocab, 1, 1 << 20));
  ATB_RETURN_IF_ERROR(check_range("seq_len", c.seq_len, 1, 1 << 20));
  c.vocab_size = int(vocab);
  if (c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0 || c.head_size() % 2 != 0)
    return Status::invalid("checkpoint header: dim " + std::to_string(c.dim) + ", n_heads " +
                           std::to_string(c.n_heads) + ", n_kv_heads " + std::to_string(c.n_kv_heads) +
                           "; allowed: n_heads divides dim into an even head size, n_kv_heads divides n_heads");
  const uint64_t L = uint64_t(c.n_layers), D = uint64_t(c.dim), H = uint64_t(c.hidden_dim), KV = uint64_t(c.kv_dim()),
                 V = uint64_t(vocab), half = uint64_t(c.head_size() / 2);
  const uint64_t floats = V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + 3 * L * H * D + D +
                          2 * uint64_t(c.seq_len) * half + (c.shared_classifier ? 0 : V * D);
  const uint64_t expected = sizeof header + floats * sizeof(float);
  if (actual != expected)
    return Status::invalid("checkpoint " + name + " is " + std::to_string(actual) + " bytes; its header (dim " +
                           std::to_string(c.dim) + ", " + std::to_string(c.n_layers) + " layers, vocab " +
                           std::to_string(vocab) + ") says " + std::to_string(expected) + " (truncated or corrupt)");
  Weights& w = checkpoint.weights;
  const auto read = [&](std::vector<float>& into, uint64_t count) {
    into.resize(count);
    return bool(file.read(reinterpret_cast<char*>(into.data()), std::streamsize(count * sizeof(float))));
  };
  const bool ok = read(w.token_embedding, V * D) && read(w.rms_att, L * D) && read(w.wq, L * D * D) &&
                  read(w.wk, L * KV * D) && read(w.wv, L * KV * D) && read(w.wo, L * D * D) && read(w.rms_ffn, L * D) &&
                  read(w.w1, L * H * D) && read(w.w2, L * D * H) && read(w.w3, L * H * D) && read(w.rms_final, D) &&
                  read(w.rope_cos, uint64_t(c.seq_len) * half) && read(w.rope_sin, uint64_t(c.seq_len) * half) &&
                  (c.shared_classifier || read(w.classifier, V * D));
  if (!ok) return Status::invalid("checkpoint " + name + ": read failed before the end of its weights");
  for (const auto* array : {&w.token_embedding, &w.wq, &w.rms_final})
    for (float value : *array)
      if (!std::isfinite(value)) return Status::invalid("checkpoint " + name + " holds a non-finite weight");
  return checkpoint;
}

}  // namespace atb::engine
