#include "forward_validation.hpp"

#include <atb/half.hpp>
#include <atb/struct_io.hpp>

#include <cstdint>
#include <limits>
#include <string>

namespace atb::kit {
namespace {

std::string str(int64_t value) { return std::to_string(value); }

std::string where(const char* name, int64_t index) { return std::string(name) + "[" + str(index) + "]"; }

Status check_tensor(const char* name, const atb_tensor* tensor, const int64_t (&expected)[3],
                    const atb_layer_spec& spec, TensorView& view, bool written = false) {
  const std::string field = std::string("forward_args.") + name;
  if (tensor == nullptr) return Status::invalid(field + " is NULL; allowed: a tensor descriptor");
  atb_tensor read = make_versioned<atb_tensor>();
  read.device_type = ATB_DEVICE_CPU;
  if (!read_versioned(tensor, read, ATB_TENSOR_MIN_STRUCT_SIZE))
    return Status::invalid(field + "->struct_size = " + str(int64_t(tensor->struct_size)) +
                           " is too small; allowed: >= " + str(ATB_TENSOR_MIN_STRUCT_SIZE) +
                           " (ATB_TENSOR_MIN_STRUCT_SIZE: the fields up to strides)");
  if (read.dtype != spec.dtype)
    return Status::invalid(field + "->dtype = " + str(read.dtype) + " (" + dtype_name(read.dtype) +
                           "); allowed: the layer's dtype " + str(spec.dtype) + " (" + dtype_name(spec.dtype) + ")");
  if (read.device_type != spec.device_type || read.device_id != spec.device_id)
    return Status::invalid(field + "->device_type = " + str(read.device_type) + ", device_id = " + str(read.device_id) +
                           "; allowed: the layer's device " + str(spec.device_type) + ", id " + str(spec.device_id));
  if (read.ndim != 3)
    return Status::invalid(field + "->ndim = " + str(read.ndim) + "; allowed: 3 ([tokens, heads, head_size])");
  static const char* kDims[3] = {"tokens", "heads", "head_size"};
  for (int d = 0; d < 3; ++d) {
    if (read.shape[d] != expected[d])
      return Status::invalid(field + "->shape[" + str(d) + "] = " + str(read.shape[d]) +
                             "; allowed: " + str(expected[d]) + " (" + kDims[d] + ")");
    if (read.strides[d] < 0)
      return Status::invalid(field + "->strides[" + str(d) + "] = " + str(read.strides[d]) + "; allowed: >= 0");
    if (written && read.strides[d] == 0 && read.shape[d] > 1)
      return Status::invalid(field + "->strides[" + str(d) + "] = 0 over " + str(read.shape[d]) + " " + kDims[d] +
                             "; allowed: > 0 on the output (its elements must not alias)");
  }
  if (read.strides[2] != 1)
    return Status::invalid(field + "->strides[2] = " + str(read.strides[2]) +
                           "; allowed: 1 (each head's elements contiguous)");
  const int64_t element = static_cast<int64_t>(dtype_size(read.dtype));
  if (expected[0] > 0) {
    if (read.data == nullptr) return Status::invalid(field + "->data is NULL");
    if (reinterpret_cast<uintptr_t>(read.data) % element != 0)
      return Status::invalid(field + "->data = " + str(int64_t(reinterpret_cast<uintptr_t>(read.data))) +
                             " is misaligned; allowed: a multiple of " + str(element) + " bytes");
  }
  view.data = static_cast<std::byte*>(read.data);
  view.dtype = read.dtype;
  for (int d = 0; d < 3; ++d) {
    view.shape[d] = read.shape[d];
    view.strides[d] = read.strides[d];
  }
  return Status::ok();
}

// The host's stream: the one its tensors name (all of them live on the layer's device).
void* stream_of(const atb_forward_args& args) {
  for (const atb_tensor* tensor : {args.query, args.key, args.value, args.output}) {
    if (tensor == nullptr) continue;
    atb_tensor read = make_versioned<atb_tensor>();
    if (read_versioned(tensor, read) && read.stream != nullptr) return read.stream;
  }
  return nullptr;
}

}  // namespace

Expected<ForwardBatch> validate_forward(const atb_layer_spec& spec, const atb_kv_cache_spec& cache,
                                        const atb_forward_args* incoming) {
  if (incoming == nullptr) return Status::invalid("forward: args is NULL");
  atb_forward_args args = make_versioned<atb_forward_args>();
  if (!read_versioned(incoming, args, ATB_FORWARD_ARGS_MIN_STRUCT_SIZE))
    return Status::invalid("forward_args.struct_size = " + str(int64_t(incoming->struct_size)) +
                           " is too small; allowed: >= " + str(ATB_FORWARD_ARGS_MIN_STRUCT_SIZE) +
                           " (ATB_FORWARD_ARGS_MIN_STRUCT_SIZE: the fields up to block_table_stride)");
  ForwardBatch batch;
  if (args.num_tokens < 0)
    return Status::invalid("forward_args.num_tokens = " + str(args.num_tokens) + "; allowed: >= 0");
  if (args.num_seqs < 0) return Status::invalid("forward_args.num_seqs = " + str(args.num_seqs) + "; allowed: >= 0");
  const int64_t tokens = args.num_tokens;
  const bool writes = cache.writes_kv != 0;
  if (args.flags & ~uint32_t(ATB_FORWARD_WRITE_KV_ONLY))
    return Status::invalid("forward_args.flags = " + str(args.flags) + "; allowed: 0 or ATB_FORWARD_WRITE_KV_ONLY (1)");
  batch.write_kv_only = (args.flags & ATB_FORWARD_WRITE_KV_ONLY) != 0;
  if (batch.write_kv_only && !writes)
    return Status::invalid(
        "forward_args.flags = ATB_FORWARD_WRITE_KV_ONLY on a layer that shares another's cache "
        "(kv_shared_with_layer) and writes nothing; allowed: 0");
  if (!batch.write_kv_only) {
    ATB_RETURN_IF_ERROR(
        check_tensor("query", args.query, {tokens, spec.num_query_heads, spec.head_size_k}, spec, batch.query));
    ATB_RETURN_IF_ERROR(check_tensor("output", args.output, {tokens, spec.num_query_heads, spec.head_size_v}, spec,
                                     batch.output,
                                     /*written=*/true));
  }
  if (writes) {
    ATB_RETURN_IF_ERROR(check_tensor("key", args.key, {tokens, spec.num_kv_heads, spec.head_size_k}, spec, batch.key));
    ATB_RETURN_IF_ERROR(
        check_tensor("value", args.value, {tokens, spec.num_kv_heads, spec.head_size_v}, spec, batch.value));
  }

  if (args.kv_pages == nullptr) return Status::invalid("forward_args.kv_pages is NULL");
  if (reinterpret_cast<uintptr_t>(args.kv_pages) % cache.page_alignment != 0)
    return Status::invalid("forward_args.kv_pages = " + str(int64_t(reinterpret_cast<uintptr_t>(args.kv_pages))) +
                           " is misaligned; allowed: a multiple of page_alignment (" +
                           str(int64_t(cache.page_alignment)) + ")");
  if (args.page_stride_bytes < cache.page_bytes || args.page_stride_bytes % cache.page_alignment != 0)
    return Status::invalid("forward_args.page_stride_bytes = " + str(int64_t(args.page_stride_bytes)) +
                           "; allowed: >= page_bytes (" + str(int64_t(cache.page_bytes)) +
                           ") and a multiple of page_alignment (" + str(int64_t(cache.page_alignment)) + ")");
  const int64_t max_pages = std::numeric_limits<int64_t>::max() / int64_t(args.page_stride_bytes) / spec.block_size;
  if (args.num_pages < 1 || args.num_pages > max_pages)
    return Status::invalid("forward_args.num_pages = " + str(args.num_pages) + "; allowed: 1 .. " + str(max_pages));
  const int64_t num_slots = args.num_pages * spec.block_size;

  // WRITE_KV_ONLY may come without sequences: only its slots are then checked (against the pool).
  const bool has_sequences = args.num_seqs > 0 || (tokens > 0 && !batch.write_kv_only);
  if (writes && tokens > 0 && args.slot_mapping == nullptr) return Status::invalid("forward_args.slot_mapping is NULL");
  if (has_sequences) {
    if (args.query_start_loc == nullptr) return Status::invalid("forward_args.query_start_loc is NULL");
    if (args.seq_lens == nullptr) return Status::invalid("forward_args.seq_lens is NULL");
    if (args.block_tables == nullptr) return Status::invalid("forward_args.block_tables is NULL");
  }
  if (args.block_table_stride < 1 && args.num_seqs > 0)
    return Status::invalid("forward_args.block_table_stride = " + str(args.block_table_stride) + "; allowed: >= 1");
  if (cache.workspace_bytes > 0 && (args.workspace == nullptr || args.workspace_bytes < cache.workspace_bytes))
    return Status::invalid("forward_args.workspace_bytes = " + str(int64_t(args.workspace_bytes)) +
                           (args.workspace == nullptr ? " with a NULL workspace" : "") +
                           "; allowed: a workspace of >= " + str(int64_t(cache.workspace_bytes)) + " bytes");
  if (cache.workspace_bytes > 0 && reinterpret_cast<uintptr_t>(args.workspace) % cache.workspace_alignment != 0)
    return Status::invalid("forward_args.workspace = " + str(int64_t(reinterpret_cast<uintptr_t>(args.workspace))) +
                           " is misaligned; allowed: a multiple of workspace_alignment (" +
                           str(int64_t(cache.workspace_alignment)) + ")");
  // Device arrays cannot be read here without synchronising the host's stream: on CUDA their
  // contents are range-checked by the kernels instead (see abi.h).
  const bool host_arrays = spec.device_type == ATB_DEVICE_CPU;
  if (host_arrays && writes && !has_sequences) {
    for (int64_t t = 0; t < tokens; ++t)
      if (args.slot_mapping[t] != -1 && (args.slot_mapping[t] < 0 || args.slot_mapping[t] >= num_slots))
        return Status::invalid(where("forward_args.slot_mapping", t) + " = " + str(args.slot_mapping[t]) +
                               " is outside the pool; allowed: -1 (skip) or 0 .. " + str(num_slots - 1));
  }
  if (host_arrays && has_sequences) {
    if (args.query_start_loc[0] != 0)
      return Status::invalid(where("forward_args.query_start_loc", 0) + " = " + str(args.query_start_loc[0]) +
                             "; allowed: 0");
    if (args.query_start_loc[args.num_seqs] != tokens)
      return Status::invalid(where("forward_args.query_start_loc", args.num_seqs) + " = " +
                             str(args.query_start_loc[args.num_seqs]) + "; allowed: num_tokens (" + str(tokens) + ")");
  }
  for (int32_t s = 0; host_arrays && s < args.num_seqs; ++s) {
    if (args.query_start_loc[s + 1] < args.query_start_loc[s])
      return Status::invalid(where("forward_args.query_start_loc", s + 1) + " = " + str(args.query_start_loc[s + 1]) +
                             " is below entry " + str(s) + " (" + str(args.query_start_loc[s]) +
                             "); allowed: non-decreasing offsets");
  }
  for (int32_t s = 0; host_arrays && s < args.num_seqs; ++s) {
    const int32_t begin = args.query_start_loc[s];
    const int32_t end = args.query_start_loc[s + 1];
    const int64_t q_len = end - begin;
    const int64_t seq_len = args.seq_lens[s];
    if (seq_len < q_len)
      return Status::invalid(where("forward_args.seq_lens", s) + " = " + str(seq_len) +
                             "; allowed: >= the sequence's new tokens (" + str(q_len) + ")");
    const int64_t capacity = int64_t(args.block_table_stride) * spec.block_size;
    if (seq_len > capacity)
      return Status::invalid(where("forward_args.seq_lens", s) + " = " + str(seq_len) +
                             " is longer than its block table holds (block_table_stride " +
                             str(args.block_table_stride) + " x block_size " + str(spec.block_size) + " = " +
                             str(capacity) + " tokens)");
    const int32_t* table = args.block_tables + int64_t(s) * args.block_table_stride;
    const int64_t blocks = (seq_len + spec.block_size - 1) / spec.block_size;
    for (int64_t b = 0; b < blocks; ++b) {
      if (table[b] < 0 || table[b] >= args.num_pages)
        return Status::invalid("forward_args.block_tables[" + str(s) + "][" + str(b) + "] = " + str(table[b]) +
                               " is outside the pool; allowed: 0 .. num_pages-1 (" + str(args.num_pages - 1) + ")");
    }
    if (!writes) continue;
    for (int64_t i = 0; i < q_len; ++i) {
      const int64_t t = begin + i;
      const int64_t slot = args.slot_mapping[t];
      if (slot == -1) continue;
      if (slot < 0 || slot >= num_slots)
        return Status::invalid(where("forward_args.slot_mapping", t) + " = " + str(slot) +
                               " is outside the pool; allowed: -1 (skip) or 0 .. " + str(num_slots - 1));
      const int64_t position = seq_len - q_len + i;
      const int64_t expected =
          int64_t(table[position / spec.block_size]) * spec.block_size + position % spec.block_size;
      if (slot != expected)
        return Status::invalid(where("forward_args.slot_mapping", t) + " = " + str(slot) +
                               " disagrees with the block table: sequence " + str(s) + " position " + str(position) +
                               " lives in slot " + str(expected));
    }
  }

  batch.device_type = spec.device_type;
  batch.stream = stream_of(args);
  batch.pages = static_cast<std::byte*>(args.kv_pages);
  batch.num_pages = args.num_pages;
  batch.page_stride_bytes = args.page_stride_bytes;
  batch.num_tokens = args.num_tokens;
  batch.num_seqs = args.num_seqs;
  batch.slot_mapping = args.slot_mapping;
  batch.query_start_loc = args.query_start_loc;
  batch.seq_lens = args.seq_lens;
  batch.block_tables = args.block_tables;
  batch.block_table_stride = args.block_table_stride;
  batch.workspace = args.workspace;
  batch.workspace_bytes = args.workspace_bytes;
  return batch;
}

}  // namespace atb::kit
