// Bytes of every format: per row (one token, one KV head), and the layout of a cache page of one
// layer.  The spec a plugin reports, what encode writes and the offsets the CUDA kernels are
// compiled with all come from here (constexpr), so they cannot disagree.
#pragma once

#include <tq/bit_packing.hpp>
#include <tq/format_table.hpp>

#include <cstddef>
#include <string>

namespace tq {

// Coordinates per scale of the per-block formats (vllm-metal's block size).
inline constexpr int kScaleBlock = 32;

// Where the parts of one encoded row sit (offsets in bytes from the row's start).
struct RowLayout {
  int head_size = 0;
  int code_bits = 0;  // bits per packed code (turboquant_prod: the MSE part, bits - 1)
  size_t codes_offset = 0;
  size_t codes_bytes = 0;    // ceil(head_size * code_bits / 8); plain: the elements
  int block_size = 0;        // coordinates sharing one scale: 32, or head_size for one scale per row
  int blocks = 0;            // ceil(head_size / block_size)
  size_t scales_offset = 0;  // fp16 per block: scale (affine_block: scale then zero, 4 bytes)
  size_t scales_bytes = 0;
  size_t sketch_offset = 0;  // turboquant_prod: head_size sign bits of the residual sketch
  size_t sketch_bytes = 0;
  size_t residual_norm_offset = 0;  // turboquant_prod: fp16 norm of the residual
  size_t row_bytes = 0;
};

// An error message when `format` cannot store rows of `head_size`; empty when it can.  Rotated
// formats need 8 <= head_size <= 1024 and a multiple of 8; plain ones any positive size.
std::string check_head_size(const Format& format, int head_size);

// Precondition: check_head_size(format, head_size) is empty.
constexpr RowLayout row_layout(const Format& format, int head_size) {
  RowLayout layout;
  layout.head_size = head_size;
  layout.code_bits = format.scheme == Scheme::turboquant_prod ? format.bits - 1 : format.bits;
  layout.codes_bytes = packed_bytes(head_size, layout.code_bits);
  size_t scale_field = 2;
  switch (format.scheme) {
    case Scheme::affine_block:
      layout.block_size = kScaleBlock;
      scale_field = 4;  // scale and zero
      break;
    case Scheme::lloyd_max_block:
      layout.block_size = kScaleBlock;
      break;
    case Scheme::turboquant_mse:
    case Scheme::turboquant_prod:
      layout.block_size = head_size;
      break;
    case Scheme::plain:
      layout.row_bytes = layout.codes_bytes;
      return layout;
  }
  layout.blocks = (head_size + layout.block_size - 1) / layout.block_size;
  layout.scales_offset = layout.codes_bytes;
  layout.scales_bytes = size_t(layout.blocks) * scale_field;
  layout.row_bytes = layout.scales_offset + layout.scales_bytes;
  if (format.scheme == Scheme::turboquant_prod) {
    layout.sketch_offset = layout.row_bytes;
    layout.sketch_bytes = packed_bytes(head_size, 1);
    layout.residual_norm_offset = layout.sketch_offset + layout.sketch_bytes;
    layout.row_bytes = layout.residual_norm_offset + 2;
  }
  return layout;
}
constexpr size_t row_bytes(const Format& format, int head_size) { return row_layout(format, head_size).row_bytes; }

// One layer's page: the K rows of every (KV head, slot), then the V rows, each region starting on a
// kPageRegionAlignment boundary.  Row (head, slot) of a region is at head * block_size + slot.
inline constexpr size_t kPageRegionAlignment = 64;

struct PageLayout {
  size_t k_row_bytes = 0;
  size_t v_row_bytes = 0;
  int kv_heads = 0;
  int block_size = 0;
  size_t v_region_offset = 0;
  size_t page_bytes = 0;

  size_t k_row_offset(int head, int slot) const {
    return (size_t(head) * size_t(block_size) + size_t(slot)) * k_row_bytes;
  }
  size_t v_row_offset(int head, int slot) const {
    return v_region_offset + (size_t(head) * size_t(block_size) + size_t(slot)) * v_row_bytes;
  }
};

PageLayout page_layout(const Format& key, const Format& value, int head_size_k, int head_size_v, int kv_heads,
                       int block_size);

// Bytes per token per KV head of K and V together, and the ratio to an f16 cache of the same shape.
inline double compression_vs_f16(const Format& key, const Format& value, int head_size) {
  return double(4 * head_size) / double(row_bytes(key, head_size) + row_bytes(value, head_size));
}

}  // namespace tq
