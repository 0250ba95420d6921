// libFuzzer: llama2.c's tokenizer.bin reader, then encoding a text with what it read.  Input: one
// byte of vocabulary size, two bytes of tokenizer length, the tokenizer, then the text.  Refusals
// carry messages; an encoded text has one token per byte, each inside the vocabulary.
#include <atb/engine/tokenizer.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const int vocab_size = data[0];
  const size_t length = std::min(size - 3, size_t(data[1]) | size_t(data[2]) << 8);
  std::istringstream in(std::string(reinterpret_cast<const char*>(data + 3), length));
  auto tokenizer = atb::engine::Tokenizer::read(in, "fuzz input", vocab_size);
  if (!tokenizer) {
    if (tokenizer.error().message().empty()) std::abort();
    return 0;
  }
  const std::string text(reinterpret_cast<const char*>(data + 3 + length), size - 3 - length);
  auto tokens = tokenizer->encode(text);
  if (!tokens) {
    if (tokens.error().message().empty()) std::abort();
    return 0;
  }
  if (tokens->size() != text.size()) std::abort();
  for (int token : *tokens)
    if (token < 0 || token >= tokenizer->size()) std::abort();
  return 0;
}
