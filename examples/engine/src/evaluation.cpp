#include <atb/engine/evaluation.hpp>

#include <algorithm>
#include <cmath>
#include <string>

namespace atb::engine {

Expected<Evaluation> evaluate(Engine& engine, const std::vector<int>& tokens, int window, int batch) {
  Evaluation result;
  const int vocab = engine.config().vocab_size;
  const int64_t n = int64_t(tokens.size());
  if (n < 2)  // the first token is only read: nothing would be predicted, and the mean would be 0 / 0
    return Status::invalid("text of " + std::to_string(n) +
                           " token(s): perplexity needs at least 2 (each token is predicted from those before it)");
  int64_t next_id = 1'000'000;  // ids of their own, clear of any a caller uses
  for (int64_t start = 0; start + 1 < n;) {
    std::vector<SequenceInput> inputs;
    std::vector<int64_t> starts;
    for (int b = 0; b < batch && start + 1 < n; ++b, start += window) {
      const int64_t length = std::min<int64_t>(window, n - 1 - start);
      inputs.push_back({next_id++, std::vector<int>(tokens.begin() + start, tokens.begin() + start + length)});
      starts.push_back(start);
    }
    auto logits = engine.forward(inputs);
    if (!logits) return logits.error();
    size_t row = 0;
    for (size_t s = 0; s < inputs.size(); ++s) {
      for (size_t p = 0; p < inputs[s].tokens.size(); ++p, ++row) {
        const float* l = logits->data() + row * size_t(vocab);
        double max = l[0], sum = 0;
        for (int i = 1; i < vocab; ++i) max = std::max(max, double(l[i]));
        for (int i = 0; i < vocab; ++i) sum += std::exp(double(l[i]) - max);
        const int target = tokens[size_t(starts[s]) + p + 1];
        result.nats -= double(l[target]) - max - std::log(sum);
        ++result.predictions;
      }
      engine.release(inputs[s].id);
    }
  }
  return result;
}

}  // namespace atb::engine
