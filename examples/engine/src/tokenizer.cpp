#include <atb/engine/tokenizer.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>

namespace atb::engine {

Expected<Tokenizer> Tokenizer::load(const std::filesystem::path& path, int vocab_size) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::invalid("cannot open tokenizer " + path.string());
  return read(file, path.string(), vocab_size);
}

Expected<Tokenizer> Tokenizer::read(std::istream& file, const std::string& name, int vocab_size) {
  int32_t max_length = 0;
  if (!file.read(reinterpret_cast<char*>(&max_length), 4) || max_length < 1 || max_length > 4096)
    return Status::invalid("tokenizer " + name + ": max_token_length " + std::to_string(max_length) +
                           "; allowed: 1 .. 4096");
  Tokenizer tokenizer;
  tokenizer.byte_to_token_.fill(-1);
  while (true) {
    float score;
    int32_t length;
    if (!file.read(reinterpret_cast<char*>(&score), 4)) break;
    if (!file.read(reinterpret_cast<char*>(&length), 4) || length < 0 || length > max_length)
      return Status::invalid("tokenizer " + name + ": token " + std::to_string(tokenizer.pieces_.size()) +
                             " has length " + std::to_string(length) + "; allowed: 0 .. " + std::to_string(max_length));
    std::string piece(size_t(length), '\0');
    if (!file.read(piece.data(), length))
      return Status::invalid("tokenizer " + name + " is truncated in token " +
                             std::to_string(tokenizer.pieces_.size()));
    if (piece.size() == 1 && tokenizer.byte_to_token_[uint8_t(piece[0])] < 0)
      tokenizer.byte_to_token_[uint8_t(piece[0])] = int(tokenizer.pieces_.size());
    tokenizer.pieces_.push_back(std::move(piece));
  }
  if (int(tokenizer.pieces_.size()) != vocab_size)
    return Status::invalid("tokenizer " + name + " has " + std::to_string(tokenizer.pieces_.size()) +
                           " tokens but the model's vocabulary is " + std::to_string(vocab_size) +
                           ": they do not match");
  return tokenizer;
}

namespace {

// The UTF-8 character starting at text[at] for a message: `"é" (U+00E9) at byte offset 6`, the
// character left out where it does not print; a byte that starts no UTF-8 character is named as a byte.
std::string describe_character(const std::string& text, size_t at) {
  const auto byte = [&](size_t i) { return uint8_t(text[i]); };
  const uint8_t lead = byte(at);
  const int length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xe ? 3 : (lead >> 3) == 0x1e ? 4 : 0;
  char hex[16];
  bool valid = length > 0 && at + size_t(length) <= text.size();
  uint32_t code = length == 1 ? lead : length == 2 ? lead & 0x1fu : length == 3 ? lead & 0x0fu : lead & 0x07u;
  for (int k = 1; valid && k < length; ++k) {
    valid = (byte(at + size_t(k)) & 0xc0) == 0x80;
    code = (code << 6) | (byte(at + size_t(k)) & 0x3fu);
  }
  const std::string offset = " at byte offset " + std::to_string(at);
  if (!valid) {
    std::snprintf(hex, sizeof hex, "0x%02X", lead);
    return std::string("byte ") + hex + offset + " (not the start of a UTF-8 character)";
  }
  std::snprintf(hex, sizeof hex, "U+%04X", code);
  const bool prints = code >= 0x20 && code != 0x7f && !(code >= 0x80 && code < 0xa0);
  std::string described = "character ";
  if (prints) described.append("\"").append(text, at, size_t(length)).append("\" ");
  described.append("(").append(hex).append(")").append(offset);
  return described;
}

}  // namespace

Expected<std::vector<int>> Tokenizer::encode(const std::string& text) const {
  std::vector<int> tokens;
  tokens.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const int token = byte_to_token_[uint8_t(text[i])];
    if (token < 0)
      return Status::invalid("text " + describe_character(text, i) +
                             " has no token in this character-level vocabulary");
    tokens.push_back(token);
  }
  return tokens;
}

}  // namespace atb::engine
