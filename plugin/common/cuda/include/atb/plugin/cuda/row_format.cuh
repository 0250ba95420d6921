// The seam between the shared attention kernels and a plugin's row format.  The kernels of this
// folder are templates over a `Rows` policy, and each plugin instantiates them with its own
// (plain_rows.cuh for `reference`; the TurboQuant plugin's in plugin/turboquant/cuda).  A policy
// provides, as static members:
//   Codec                          trivially copyable description of one K or V row format (a kernel
//                                  parameter)
//   form_of(codec)                 host: the format as a compile-time FORM (row_form), for instances
//                                  that fix it
//   tiled_serves(codec, per_lane)  host: whether the tiled kernels read the rows, a lane taking
//                                  per_lane coordinates of one scale block
//   prefill_serves(codec)          host: the same for the prefill kernel (16 coordinates a lane)
//   kFastPairs                     std::array of (K FORM, V FORM) pairs with a tiled instance of
//                                  their own
//   kPrefillPairs                  the same for the prefill kernel on 16-bit layers (groups of 3 to 8
//                                  query heads): the decoding of a format fixed at compile time is
//                                  a few instructions a value, the run-time one many
//   copy_tables(codecs, k, v)      device, block-wide: the codecs' value tables into shared memory
//   decode<C, FORM>(codec, row, sub, table, x)  device: a lane's C coordinates of a row in shared
//                                  memory (sub: its run) as raw values, returning scale and zero
//   decodes_half<FORM>()           whether decode_half16 serves a form fixed at compile time
//   copy_pair_tables(codecs, k, v, kp, vp)      device, block-wide, after copy_tables' tables are
//                                  visible: what decode_half16 looks up (kPairTableWords words each)
//   decode_half16<FORM>(codec, row, valid, sub, pairs, h)  device: a lane's 16 coordinates as 8 fp16
//                                  pairs of values (the prefill planes of 16-bit layers); false where
//                                  the row's values may pass fp16's range
//   decode_at<C>(codec, table, row, first, x)   device: coordinates first .. first + C - 1 of a row
//                                  in global memory, as values
//   rotate_queries(p, codec, kv_head, x, count, d)          device, block-wide: x <- R x, or nothing
//   rotate_queries_by_block(p, codec, kv_head, x, count, d) the same without warp-register rotation
//   rotate_outputs(p, codec, kv_head, x, count, d)          device, block-wide: x <- R^T x
//   rotate_output_lanes<J>(p, codec, kv_head, v)            device, a warp's registers (d = 32 J)
// Rows whose value tables are absent copy nothing; formats that store rows unrotated rotate nothing.
#pragma once

#include <atb/plugin/cuda/attention_params.hpp>

#include <cstdint>

namespace atb::plugin::cuda {

// A row format fixed at compile time: kind * 16 + code bits; kAnyForm reads the codec at run time.
__host__ __device__ constexpr int row_form(int kind, int bits) { return kind * 16 + bits; }
constexpr int kAnyForm = -1;

// Shared-memory words of one pair table (Rows::copy_pair_tables), K's and V's each.
constexpr int kPairTableWords = 260;

// A row's lane coordinates as raw values x (the row is scale * x + zero over the lane's block).
struct LaneRow {
  float scale = 1.0f, zero = 0.0f;
};

// The K and V codecs of a layer, passed to a kernel by value.
template <class Rows>
struct Codecs {
  typename Rows::Codec key, value;
};

}  // namespace atb::plugin::cuda
