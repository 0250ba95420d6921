// How closely a format reproduces a synthetic cache: every (layer, KV head) of the data is encoded
// into pages laid out by the codecs' byte accounting, decoded back and compared.
#pragma once

#include <atb/cli/synthetic_kv.hpp>
#include <atb/status.hpp>

#include <tq/format.hpp>

#include <cstdint>

namespace atb::tool {

struct CacheShape {
  int layers = 28;
  int kv_heads = 4;
  int head_size = 128;
  int block_size = 16;
  int tokens = 256;  // per sequence: one sequence per cache
};

struct FidelityStats {
  double mse = 0;          // mean over coordinates of (x - decoded)^2
  double mean_cosine = 0;  // over vectors
  double min_cosine = 1;
  uint64_t vectors = 0;
};

// `rotation_seed` also seeds the formats' own randomness.  Fails if the format cannot store the
// head size, or if encoding touched a byte outside the rows the page layout gives it.
Expected<FidelityStats> measure_fidelity(const tq::Format& format, tq::Role role, cli::KvData data,
                                         const CacheShape& shape, uint64_t data_seed, uint64_t rotation_seed);

}  // namespace atb::tool
