#include <tq/bit_packing.hpp>
#include <tq/byte_accounting.hpp>
#include <tq/rotation.hpp>

namespace tq {
namespace {

size_t align_up(size_t value, size_t alignment) { return (value + alignment - 1) / alignment * alignment; }

}  // namespace

std::string check_head_size(const Format& format, int head_size) {
  if (!is_rotated(format)) {
    if (head_size < 1 || head_size > kMaxRotationSize)
      return "head size " + std::to_string(head_size) + " is not supported by format " + std::string(format.name) +
             "; allowed: 1 .. " + std::to_string(kMaxRotationSize);
    return {};
  }
  if (head_size < 8 || head_size > kMaxRotationSize || head_size % 8 != 0)
    return "head size " + std::to_string(head_size) + " is not supported by format " + std::string(format.name) +
           "; allowed: multiples of 8 from 8 to " + std::to_string(kMaxRotationSize);
  return {};
}

RowLayout row_layout(const Format& format, int head_size) {
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

PageLayout page_layout(const Format& key, const Format& value, int head_size_k, int head_size_v, int kv_heads,
                       int block_size) {
  PageLayout page;
  page.k_row_bytes = row_bytes(key, head_size_k);
  page.v_row_bytes = row_bytes(value, head_size_v);
  page.kv_heads = kv_heads;
  page.block_size = block_size;
  const size_t rows = size_t(kv_heads) * size_t(block_size);
  page.v_region_offset = align_up(rows * page.k_row_bytes, kPageRegionAlignment);
  page.page_bytes = page.v_region_offset + align_up(rows * page.v_row_bytes, kPageRegionAlignment);
  return page;
}

}  // namespace tq
