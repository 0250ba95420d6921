// The query heads of a GQA group in runs of 8, 4, 2 and 1, each run's size a compile-time constant
// (std::integral_constant) so that a kernel keeps a run's sums in registers.
#pragma once

#include <type_traits>

namespace atb::turboquant {

// Calls run(std::integral_constant<int, N>{}, first_head) for consecutive runs covering `count` heads.
template <class Run>
void for_head_runs(int count, Run&& run) {
  for (int g = 0; g < count;) {
    const int left = count - g;
    if (left >= 8)
      run(std::integral_constant<int, 8>{}, g), g += 8;
    else if (left >= 4)
      run(std::integral_constant<int, 4>{}, g), g += 4;
    else if (left >= 2)
      run(std::integral_constant<int, 2>{}, g), g += 2;
    else
      run(std::integral_constant<int, 1>{}, g), g += 1;
  }
}

}  // namespace atb::turboquant
