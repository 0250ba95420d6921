// llama2.c's tokenizer.bin, read for a character-level model: every character of a text is one token.
#pragma once

#include <atb/status.hpp>

#include <array>
#include <filesystem>
#include <istream>
#include <string>
#include <vector>

namespace atb::engine {

class Tokenizer {
 public:
  // Fails unless the file holds exactly `vocab_size` tokens (the model's).
  static Expected<Tokenizer> load(const std::filesystem::path& path, int vocab_size);
  // The same from a stream; `name` is what messages call it.
  static Expected<Tokenizer> read(std::istream& in, const std::string& name, int vocab_size);

  // One token per byte of the text; a byte with no token is an error naming it.
  Expected<std::vector<int>> encode(const std::string& text) const;
  const std::string& piece(int token) const { return pieces_[size_t(token)]; }
  int size() const { return int(pieces_.size()); }

 private:
  std::vector<std::string> pieces_;
  std::array<int, 256> byte_to_token_{};
};

}  // namespace atb::engine
