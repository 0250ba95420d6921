#include <atb/half.hpp>
#include <atb/host/paged_kv.hpp>
#include <atb/struct_io.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>

#include <sys/mman.h>

namespace atb::host {
namespace {

uint64_t round_up(uint64_t value, uint64_t multiple) {
  return multiple == 0 ? value : (value + multiple - 1) / multiple * multiple;
}

}  // namespace

void PagePool::Free::operator()(std::byte* p) const { std::free(p); }

Expected<PagePool> PagePool::allocate(const atb_kv_cache_spec& spec, int64_t num_pages, uint64_t guard_bytes,
                                      uint8_t fill) {
  if (num_pages < 1) return Status::invalid("page pool: num_pages = " + std::to_string(num_pages) + "; allowed: >= 1");
  uint64_t alignment = std::max<uint64_t>(spec.page_alignment, 64);
  if ((alignment & (alignment - 1)) != 0)
    return Status::invalid("page pool: page_alignment = " + std::to_string(spec.page_alignment) +
                           " is not a power of two");
  PagePool pool;
  pool.num_pages_ = num_pages;
  pool.page_bytes_ = spec.page_bytes;
  pool.stride_ = round_up(spec.page_bytes + guard_bytes, alignment);
  pool.leading_bytes_ = round_up(guard_bytes, alignment);
  pool.total_bytes_ = pool.leading_bytes_ + pool.stride_ * uint64_t(num_pages) + guard_bytes;
  constexpr uint64_t kHugePage = 2u << 20;
  if (pool.total_bytes_ >= kHugePage) alignment = std::max(alignment, kHugePage);
  void* memory = std::aligned_alloc(alignment, round_up(pool.total_bytes_, alignment));
  if (memory == nullptr)
    return Status(ATB_ERR_OUT_OF_MEMORY, "page pool: cannot allocate " + std::to_string(pool.total_bytes_) + " bytes");
  // Pools are large and read in scattered pages: transparent huge pages spare the TLB.
  madvise(memory, round_up(pool.total_bytes_, alignment), MADV_HUGEPAGE);
  std::memset(memory, fill, pool.total_bytes_);
  pool.base_.reset(static_cast<std::byte*>(memory));
  return pool;
}

int64_t pages_for_budget(const atb_kv_cache_spec& spec, uint64_t budget_bytes) {
  const uint64_t stride = round_up(spec.page_bytes, std::max<uint64_t>(spec.page_alignment, 1));
  return stride == 0 ? 0 : static_cast<int64_t>(budget_bytes / stride);
}

void StepBatch::fill(atb_forward_args& args) const {
  args.num_tokens = num_tokens;
  args.num_seqs = num_seqs;
  args.slot_mapping = slot_mapping.data();
  args.query_start_loc = query_start_loc.data();
  args.seq_lens = seq_lens.data();
  args.block_tables = block_tables.data();
  args.block_table_stride = block_table_stride;
}

PagedKvManager::PagedKvManager(int32_t block_size, int64_t num_pages, uint64_t shuffle_seed) : block_size_(block_size) {
  for (int64_t page = num_pages - 1; page >= 0; --page) free_.push_back(static_cast<int32_t>(page));
  if (shuffle_seed != 0) {
    std::mt19937_64 rng(shuffle_seed);
    std::shuffle(free_.begin(), free_.end(), rng);
  }
}

Expected<StepBatch> PagedKvManager::schedule(const std::vector<SequenceStep>& steps) {
  int64_t pages_needed = 0;
  for (const auto& step : steps) {
    if (step.new_tokens < 0)
      return Status::invalid("schedule: new_tokens = " + std::to_string(step.new_tokens) + "; allowed: >= 0");
    auto it = sequences_.find(step.sequence_id);
    const int64_t length = it == sequences_.end() ? 0 : it->second.length;
    const int64_t have = it == sequences_.end() ? 0 : int64_t(it->second.pages.size());
    const int64_t want = (length + step.new_tokens + block_size_ - 1) / block_size_;
    pages_needed += std::max<int64_t>(0, want - have);
  }
  if (pages_needed > free_pages())
    return Status(ATB_ERR_OUT_OF_MEMORY, "schedule: needs " + std::to_string(pages_needed) + " pages, " +
                                             std::to_string(free_pages()) + " free");
  StepBatch batch;
  size_t widest = 1;
  for (const auto& step : steps) {
    Sequence& sequence = sequences_[step.sequence_id];
    const int32_t start = sequence.length;
    sequence.length += step.new_tokens;
    while (int64_t(sequence.pages.size()) * block_size_ < sequence.length) {
      sequence.pages.push_back(free_.back());
      free_.pop_back();
    }
    for (int32_t i = 0; i < step.new_tokens; ++i) {
      const int32_t position = start + i;
      batch.slot_mapping.push_back(int64_t(sequence.pages[position / block_size_]) * block_size_ +
                                   position % block_size_);
    }
    batch.num_tokens += step.new_tokens;
    batch.query_start_loc.push_back(batch.num_tokens);
    batch.seq_lens.push_back(sequence.length);
    batch.sequence_ids.push_back(step.sequence_id);
    widest = std::max(widest, sequence.pages.size());
  }
  batch.num_seqs = static_cast<int32_t>(steps.size());
  batch.block_table_stride = static_cast<int32_t>(widest);
  batch.block_tables.assign(widest * steps.size(), 0);
  for (size_t s = 0; s < steps.size(); ++s) {
    const auto& pages = sequences_[steps[s].sequence_id].pages;
    std::copy(pages.begin(), pages.end(), batch.block_tables.begin() + int64_t(s * widest));
  }
  return batch;
}

void PagedKvManager::release(int64_t sequence_id) {
  auto it = sequences_.find(sequence_id);
  if (it == sequences_.end()) return;
  for (auto page = it->second.pages.rbegin(); page != it->second.pages.rend(); ++page) free_.push_back(*page);
  sequences_.erase(it);
}

int32_t PagedKvManager::length(int64_t sequence_id) const {
  auto it = sequences_.find(sequence_id);
  return it == sequences_.end() ? 0 : it->second.length;
}

atb_tensor dense_tensor(void* data, int32_t dtype, int64_t d0, int64_t d1, int64_t d2, int32_t device_type,
                        void* stream) {
  atb_tensor tensor = make_versioned<atb_tensor>();
  tensor.data = data;
  tensor.dtype = dtype;
  tensor.device_type = device_type;
  tensor.stream = stream;
  tensor.ndim = 3;
  tensor.shape[0] = d0;
  tensor.shape[1] = d1;
  tensor.shape[2] = d2;
  tensor.strides[0] = d1 * d2;
  tensor.strides[1] = d2;
  tensor.strides[2] = 1;
  return tensor;
}

HostTensor::HostTensor(int32_t dtype, int64_t d0, int64_t d1, int64_t d2)
    : storage_(size_t(d0 * d1 * d2) * dtype_size(dtype)),
      descriptor_(dense_tensor(storage_.data(), dtype, d0, d1, d2)) {}

int64_t HostTensor::index(int64_t i, int64_t j, int64_t k) const {
  return i * descriptor_.strides[0] + j * descriptor_.strides[1] + k;
}

float HostTensor::get(int64_t i, int64_t j, int64_t k) const {
  return load_as_f32(storage_.data(), descriptor_.dtype, index(i, j, k));
}

void HostTensor::set(int64_t i, int64_t j, int64_t k, float value) {
  store_from_f32(storage_.data(), descriptor_.dtype, index(i, j, k), value);
}

atb_layer_spec standard_layer_spec(int num_query_heads, int num_kv_heads, int head_size, int32_t dtype,
                                   int block_size) {
  atb_layer_spec spec = make_versioned<atb_layer_spec>();
  spec.attention_kind = ATB_ATTENTION_STANDARD;
  spec.num_query_heads = num_query_heads;
  spec.num_kv_heads = num_kv_heads;
  spec.head_size_k = spec.head_size_v = head_size;
  spec.dtype = dtype;
  spec.block_size = block_size;
  spec.layer_index = 0;
  spec.num_layers = 1;
  spec.kv_shared_with_layer = -1;
  spec.device_type = ATB_DEVICE_CPU;
  return spec;
}

atb_forward_args make_forward_args(const PagePool& pool, const StepBatch& batch, const atb_tensor* query,
                                   const atb_tensor* key, const atb_tensor* value, const atb_tensor* output) {
  atb_forward_args args = make_versioned<atb_forward_args>();
  args.query = query;
  args.key = key;
  args.value = value;
  args.output = output;
  args.kv_pages = pool.data();
  args.num_pages = pool.num_pages();
  args.page_stride_bytes = pool.stride_bytes();
  batch.fill(args);
  return args;
}

}  // namespace atb::host
