// libFuzzer: forward of both plugins with the batch drawn from the input: tensor shapes and strides,
// slot mappings, query offsets, sequence lengths, block tables, flags and struct sizes, over memory
// the host really owns.  Every tensor and integer array is its own exact-size heap block (ASan sees
// any access past it) and the pool sits in guard bytes.  A refused forward must say why and leave the
// pool and output as they were; an accepted one may change only the pages of the slots it was handed.
#include <atb/half.hpp>
#include <atb/host/paged_kv.hpp>
#include <atb/host/registry.hpp>
#include <atb/struct_io.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <vector>

namespace {

const atb::host::Registry& registry() {
  static const atb::host::Registry scanned = atb::host::Registry::scan({ATB_FUZZ_PLUGIN_DIR}, false);
  return scanned;
}

// Reads the fuzz input a byte at a time; past the end it reads zeros.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t next() { return at_ < size_ ? data_[at_++] : 0; }
  template <class T, size_t N>
  T pick(const std::array<T, N>& choices) {
    return choices[next() % N];
  }
  int32_t small(int lo, int hi) { return lo + int32_t(next() % uint32_t(hi - lo + 1)); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

constexpr uint8_t kSentinel = 0x5A;

// With ATB_FUZZ_STATS set, how many forwards were accepted and refused, printed at exit: a target
// whose inputs are all refused would test the checks only.
struct Outcomes {
  long accepted = 0, refused = 0;
  ~Outcomes() {
    if (std::getenv("ATB_FUZZ_STATS") != nullptr)
      std::fprintf(stderr, "fuzz_forward_args: %ld forwards accepted, %ld refused\n", accepted, refused);
  }
} outcomes;
constexpr int64_t kPages = 6;

// A tensor the host owns: an exact-size allocation covering every element its shape and strides
// reach, with the descriptor that says so.
struct OwnedTensor {
  std::unique_ptr<uint8_t[]> bytes;
  size_t size = 0;
  atb_tensor descriptor = atb::make_versioned<atb_tensor>();
};

OwnedTensor make_tensor(Bytes& in, int32_t dtype, int64_t tokens, int64_t heads, int64_t head_size) {
  OwnedTensor t;
  t.descriptor.dtype = in.next() % 16 == 0 ? in.pick(std::array<int32_t, 3>{ATB_DTYPE_F32, ATB_DTYPE_F16, 9}) : dtype;
  t.descriptor.device_type = ATB_DEVICE_CPU;
  t.descriptor.ndim = in.next() % 32 == 0 ? 2 : 3;
  t.descriptor.shape[0] = tokens;
  t.descriptor.shape[1] = heads + (in.next() % 32 == 0 ? 1 : 0);
  t.descriptor.shape[2] = head_size;
  // Strides: dense, padded rows, broadcast (0) or a non-unit last stride.
  const int64_t head_stride = head_size + in.pick(std::array<int64_t, 4>{0, 0, 8, 3});
  t.descriptor.strides[2] = in.next() % 32 == 0 ? 2 : 1;
  t.descriptor.strides[1] = in.next() % 16 == 0 ? 0 : head_stride;
  t.descriptor.strides[0] = t.descriptor.strides[1] * t.descriptor.shape[1] + in.pick(std::array<int64_t, 3>{0, 0, 5});
  int64_t last = 0;
  for (int d = 0; d < 3; ++d) last += std::max<int64_t>(t.descriptor.shape[d] - 1, 0) * t.descriptor.strides[d];
  const size_t element = t.descriptor.dtype == 9 ? 4 : atb::dtype_size(t.descriptor.dtype);
  t.size = tokens == 0 ? 1 : size_t(last + 1) * element;
  t.bytes.reset(new uint8_t[t.size]);
  for (size_t i = 0; i < t.size; ++i) t.bytes[i] = uint8_t(in.next() & 0x3F);  // finite, moderate values
  t.descriptor.data = t.bytes.get();
  return t;
}

// An integer array of exactly `count` elements (never a read past it unseen).
template <class T>
std::unique_ptr<T[]> make_array(size_t count) {
  return std::unique_ptr<T[]>(new T[std::max<size_t>(count, 1)]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  Bytes in(data, size);
  const std::array<const char*, 4> configs = {R"({"k_quant":"q8_0","v_quant":"q3_0"})",
                                              R"({"k_quant":"tq4","v_quant":"tq3"})", R"({"k_quant":"f16"})", ""};
  const int choice = in.next() % 5;
  auto plugin = registry().select(choice == 4 ? "reference" : "turboquant");
  if (!plugin) std::abort();  // the build puts both plugins in ATB_FUZZ_PLUGIN_DIR

  const int32_t kv_heads = in.small(1, 2);
  const int32_t query_heads = kv_heads * in.small(1, 3);
  const int32_t head_size = in.pick(std::array{64, 128});
  const int32_t dtype = in.pick(std::array<int32_t, 3>{ATB_DTYPE_F32, ATB_DTYPE_F16, ATB_DTYPE_BF16});
  const int32_t block_size = in.pick(std::array{4, 16, 1});
  atb_layer_spec spec = atb::host::standard_layer_spec(query_heads, kv_heads, head_size, dtype, block_size);
  spec.sliding_window = in.pick(std::array{0, 0, 3});
  auto backend = (*plugin)->create_backend(spec, choice == 4 ? "" : configs[size_t(choice)]);
  if (!backend) std::abort();  // every layer drawn here is one both plugins serve
  auto cache = backend->kv_cache_spec();
  if (!cache) std::abort();
  auto pool = atb::host::PagePool::allocate(*cache, kPages, /*guard_bytes=*/64, kSentinel);
  if (!pool) std::abort();

  // The batch: up to 3 sequences, lengths and offsets drawn freely (often inconsistent on purpose).
  const int32_t num_seqs = in.small(0, 3);
  const int32_t num_tokens = in.small(0, 12);
  const int32_t stride = in.small(1, 4);
  auto slots = make_array<int64_t>(size_t(num_tokens));
  auto starts = make_array<int32_t>(size_t(num_seqs) + 1);
  auto lengths = make_array<int32_t>(size_t(num_seqs));
  auto tables = make_array<int32_t>(size_t(num_seqs) * size_t(stride));
  const int64_t slot_count = kPages * block_size;
  for (int32_t t = 0; t < num_tokens; ++t) slots[t] = int64_t(in.next() % (slot_count + 3)) - 2;
  for (int32_t s = 0; s <= num_seqs; ++s) starts[s] = in.next() % 8 == 0 ? in.small(-1, 14) : 0;
  if (in.next() % 4 != 0) {  // mostly well-formed offsets, to get past the first checks
    for (int32_t s = 0; s <= num_seqs; ++s) starts[s] = num_seqs ? int32_t(int64_t(num_tokens) * s / num_seqs) : 0;
  }
  for (int32_t s = 0; s < num_seqs; ++s) lengths[s] = in.small(-1, stride * block_size + 1);
  for (int32_t i = 0; i < num_seqs * stride; ++i) tables[i] = in.small(-1, int32_t(kPages));

  OwnedTensor query = make_tensor(in, dtype, num_tokens, query_heads, head_size);
  OwnedTensor key = make_tensor(in, dtype, num_tokens, kv_heads, head_size);
  OwnedTensor value = make_tensor(in, dtype, num_tokens, kv_heads, head_size);
  OwnedTensor output = make_tensor(in, dtype, num_tokens, query_heads, head_size);

  atb_forward_args args = atb::make_versioned<atb_forward_args>();
  const bool write_only = in.next() % 8 == 0;
  args.query = write_only && in.next() % 2 ? nullptr : &query.descriptor;
  args.key = &key.descriptor;
  args.value = &value.descriptor;
  args.output = write_only && in.next() % 2 ? nullptr : &output.descriptor;
  args.kv_pages = pool->data();
  args.num_pages = kPages;
  args.page_stride_bytes = pool->stride_bytes();
  args.num_tokens = num_tokens;
  args.num_seqs = num_seqs;
  args.slot_mapping = slots.get();
  args.query_start_loc = starts.get();
  args.seq_lens = lengths.get();
  args.block_tables = tables.get();
  args.block_table_stride = stride;
  args.flags = write_only ? ATB_FORWARD_WRITE_KV_ONLY : (in.next() % 32 == 0 ? 0x10u : 0u);
  if (in.next() % 32 == 0) args.struct_size = ATB_FORWARD_ARGS_MIN_STRUCT_SIZE - 4;
  std::vector<uint8_t> workspace(cache->workspace_bytes + 256);
  if (cache->workspace_bytes != 0) {
    const size_t align = cache->workspace_alignment ? cache->workspace_alignment : 256;
    args.workspace = workspace.data() + (align - reinterpret_cast<uintptr_t>(workspace.data()) % align) % align;
    args.workspace_bytes = cache->workspace_bytes;
  }

  const uint8_t* pool_after = reinterpret_cast<const uint8_t*>(pool->allocation());
  const std::vector<uint8_t> pool_before(pool_after, pool_after + pool->allocation_bytes());
  const std::vector<uint8_t> output_before(output.bytes.get(), output.bytes.get() + output.size);
  const atb::Status status = backend->forward(args);

  if (!status) {
    if (status.message().empty()) std::abort();  // every refusal says why
    if (std::memcmp(pool_after, pool_before.data(), pool_before.size()) != 0) std::abort();
    if (std::memcmp(output.bytes.get(), output_before.data(), output.size) != 0) std::abort();
    ++outcomes.refused;
    return 0;
  }
  ++outcomes.accepted;
  // Accepted: only pages that a written slot names may differ; guards never.
  std::set<int64_t> written;
  for (int32_t t = 0; t < num_tokens; ++t)
    if (slots[t] >= 0) written.insert(slots[t] / block_size);
  const size_t lead = pool->leading_bytes();
  for (size_t i = 0; i < pool_before.size(); ++i) {
    if (pool_after[i] == pool_before[i]) continue;
    const bool in_page = i >= lead && (i - lead) % pool->stride_bytes() < pool->page_bytes() &&
                         (i - lead) / pool->stride_bytes() < uint64_t(kPages);
    if (!in_page || written.count(int64_t((i - lead) / pool->stride_bytes())) == 0) std::abort();
  }
  return 0;
}
