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
