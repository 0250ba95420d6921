#include <atb/engine/tokenizer.hpp>

#include <cstdint>
#include <fstream>

namespace atb::engine {

Expected<Tokenizer> Tokenizer::load(const std::filesystem::path& path, int vocab_size) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::invalid("cannot open tokenizer " + path.string());
  int32_t max_length = 0;
  if (!file.read(reinterpret_cast<char*>(&max_length), 4) || max_length < 1 || max_length > 4096)
    return Status::invalid("tokenizer " + path.string() + ": max_token_length " + std::to_string(max_length) +
                           "; allowed: 1 .. 4096");
  Tokenizer tokenizer;
  tokenizer.byte_to_token_.fill(-1);
  while (true) {
    float score;
    int32_t length;
    if (!file.read(reinterpret_cast<char*>(&score), 4)) break;
    if (!file.read(reinterpret_cast<char*>(&length), 4) || length < 0 || length > max_length)
      return Status::invalid("tokenizer " + path.string() + ": token " + std::to_string(tokenizer.pieces_.size()) +
                             " has length " + std::to_string(length) + "; allowed: 0 .. " + std::to_string(max_length));
    std::string piece(size_t(length), '\0');
    if (!file.read(piece.data(), length))
      return Status::invalid("tokenizer " + path.string() + " is truncated in token " +
                             std::to_string(tokenizer.pieces_.size()));
    if (piece.size() == 1 && tokenizer.byte_to_token_[uint8_t(piece[0])] < 0)
      tokenizer.byte_to_token_[uint8_t(piece[0])] = int(tokenizer.pieces_.size());
    tokenizer.pieces_.push_back(std::move(piece));
  }
  if (int(tokenizer.pieces_.size()) != vocab_size)
    return Status::invalid("tokenizer " + path.string() + " has " + std::to_string(tokenizer.pieces_.size()) +
                           " tokens but the model's vocabulary is " + std::to_string(vocab_size) +
                           ": they do not match");
  return tokenizer;
}

Expected<std::vector<int>> Tokenizer::encode(const std::string& text) const {
  std::vector<int> tokens;
  tokens.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const int token = byte_to_token_[uint8_t(text[i])];
    if (token < 0)
      return Status::invalid("text byte " + std::to_string(i) + " (0x" + std::to_string(uint8_t(text[i])) +
                             ") has no token in this character-level vocabulary");
    tokens.push_back(token);
  }
  return tokens;
}

}  // namespace atb::engine
