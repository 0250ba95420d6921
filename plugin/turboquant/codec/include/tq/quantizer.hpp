// A Quantizer turns one head vector into one row of bytes and back, for one format and head size.
// These are the scalar reference encoders and decoders: every faster path (AVX2, fused attention,
// CUDA) is tested against them.
//
// Rotated formats work on rotated coordinates (the caller applies its layer's and head's Rotation
// first, see encode_vector); plain formats store the vector as it is.
#pragma once

#include <tq/byte_accounting.hpp>
#include <tq/codebooks.hpp>
#include <tq/format.hpp>
#include <tq/rotation.hpp>

#include <atb/status.hpp>

#include <cstdint>
#include <memory>

namespace tq {

class Quantizer {
 public:
  virtual ~Quantizer() = default;

  const Format& format() const { return format_; }
  int head_size() const { return layout_.head_size; }
  const RowLayout& layout() const { return layout_; }
  size_t row_bytes() const { return layout_.row_bytes; }

  // Writes exactly row_bytes() bytes at `row` (every one of them, nothing beyond).
  virtual void encode(const float* x, uint8_t* row) const = 0;
  // Writes head_size() values.
  virtual void decode(const uint8_t* row, float* x) const = 0;

  // What fused kernels need beyond the row layout: the codebook of the codebook formats (nullptr for
  // affine and plain ones), and the QJL matrix S of turboquant_prod (row-major head_size^2, else
  // nullptr).
  virtual const ScalarCodebook* codebook() const { return nullptr; }
  virtual const float* sketch_matrix() const { return nullptr; }

 protected:
  Quantizer(const Format& format, int head_size) : format_(format), layout_(row_layout(format, head_size)) {}

 private:
  Format format_;
  RowLayout layout_;
};

// `seed` feeds the formats with randomness of their own (the QJL sketch of turboquant_prod).
atb::Expected<std::unique_ptr<Quantizer>> make_quantizer(const Format& format, int head_size,
                                                         uint64_t seed = kDefaultRotationSeed);

// Whole-vector convenience around the reference path: rotate (when the format is rotated), encode;
// decode, rotate back.  `scratch` holds head_size floats.
void encode_vector(const Quantizer& quantizer, const Rotation& rotation, const float* x, uint8_t* row, float* scratch);
void decode_vector(const Quantizer& quantizer, const Rotation& rotation, const uint8_t* row, float* x);

}  // namespace tq
