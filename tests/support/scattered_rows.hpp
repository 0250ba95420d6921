// Row pointers for kernels that take a list of rows: the rows of a buffer in a random order, as the
// rows of a span of keys lie on pages scattered through a pool, so a kernel that assumed rows one
// after another would read the wrong ones.
#pragma once

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <random>
#include <vector>

namespace atb::test {

// Pointers to the n rows of `buffer` (row_bytes apart), shuffled: row j of the list is
// buffer + order[j] * row_bytes.
template <class Byte>
std::vector<const Byte*> scattered_rows(const std::vector<Byte>& buffer, int n, size_t row_bytes,
                                        std::mt19937_64& rng) {
  std::vector<size_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), size_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<const Byte*> rows;
  for (size_t row : order) rows.push_back(buffer.data() + row * row_bytes);
  return rows;
}

}  // namespace atb::test
