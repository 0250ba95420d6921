// The perplexity protocol of shared/models/PROVENANCE.md: windows of `window` input tokens at offsets
// 0, W, 2W, ...; position p of a window predicts the token at window start + p + 1, so every token but
// the first is predicted exactly once.  Windows run `batch` at a time as sequences of the engine.
#pragma once

#include <atb/engine/engine.hpp>

namespace atb::engine {

struct Evaluation {
  double nats = 0;  // summed negative log-likelihood
  uint64_t predictions = 0;
  double nats_per_token() const { return predictions ? nats / double(predictions) : 0; }
};

Expected<Evaluation> evaluate(Engine& engine, const std::vector<int>& tokens, int window, int batch);

}  // namespace atb::engine
