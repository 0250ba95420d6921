// Size-prefixed struct exchange across the ABI, for both sides.
//
// Every ABI struct begins with `size_t struct_size`.  A reader copies only the bytes the writer
// declared and keeps its own defaults for the rest; a writer of an output struct never writes past
// the size the owner of the struct declared, and reports the bytes it filled in struct_size.  These
// two helpers are the only places that rule lives.  Every ABI struct but atb_error has no tail
// padding (tests/sdk/abi_layout_test.cpp), so sizeof(T) is its ATB_*_STRUCT_SIZE.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

namespace atb {

// Reads *incoming (written by an older, newer or same-version peer) over `defaults`.
// Returns false when incoming->struct_size is below `min_size` (the end of the fields without a
// default; at least struct_size itself).
template <class T>
bool read_versioned(const T* incoming, T& defaults_then_result, size_t min_size = sizeof(size_t)) {
  static_assert(std::is_trivially_copyable_v<T>);
  static_assert(offsetof(T, struct_size) == 0);
  if (incoming == nullptr || incoming->struct_size < std::max(min_size, sizeof(size_t))) return false;
  const size_t n = std::min(incoming->struct_size, sizeof(T));
  std::memcpy(static_cast<void*>(&defaults_then_result), incoming, n);
  defaults_then_result.struct_size = sizeof(T);
  return true;
}

// Writes `value` into the caller-owned *destination, whose struct_size the caller set; fields past
// that size are not written, and destination->struct_size becomes the bytes written:
// min(the caller's size, sizeof(T)).
template <class T>
bool write_versioned(T* destination, const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  static_assert(offsetof(T, struct_size) == 0);
  if (destination == nullptr || destination->struct_size < sizeof(size_t)) return false;
  const size_t declared = destination->struct_size;
  const size_t n = std::min(declared, sizeof(T));
  std::memcpy(reinterpret_cast<char*>(destination) + sizeof(size_t),
              reinterpret_cast<const char*>(&value) + sizeof(size_t), n - sizeof(size_t));
  destination->struct_size = n;
  return true;
}

// A zeroed struct with struct_size set, ready to be handed across the ABI.
template <class T>
T make_versioned() {
  static_assert(std::is_trivially_copyable_v<T>);
  T value;
  std::memset(static_cast<void*>(&value), 0, sizeof(T));
  value.struct_size = sizeof(T);
  return value;
}

}  // namespace atb
