// The CUDA path of both plugins against their CPU path (the oracle) on the same random inputs:
// a mixed prefill of several sequences then a decode step, through the registry like any host.
// Pages written on the GPU are compared byte for byte with the CPU's, outputs by relative error.
// Skips, saying so, where no CUDA device is usable.
#include <gtest/gtest.h>

#include <atb/half.hpp>
#include <atb/host/cuda_memory.hpp>
#include <atb/host/paged_kv.hpp>
#include <atb/struct_io.hpp>
#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>

#include <tq/channel_maxima.hpp>

#include <fstream>

#include "../support/plugins.hpp"
#include "../support/seed.hpp"
#include "../support/temp_file.hpp"

namespace atb {
namespace {

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

using host::cuda::DeviceMemory;

// A device copy of `values` (the SDK's RAII allocation; empty, with a failure recorded, when CUDA
// refuses).
template <class T>
DeviceMemory device_copy(const std::vector<T>& values, const host::cuda::Stream& stream) {
  auto memory = DeviceMemory::copy_of(values, stream);
  if (memory) return std::move(*memory);
  ADD_FAILURE() << memory.error().message();
  return {};
}

// The bytes of `memory`, once the stream's work is done.
std::vector<uint8_t> device_bytes(const DeviceMemory& memory, const host::cuda::Stream& stream) {
  std::vector<uint8_t> bytes(memory.bytes());
  if (Status read = memory.download(bytes.data(), bytes.size(), stream); !read) ADD_FAILURE() << read.message();
  if (Status done = stream.synchronize(); !done) ADD_FAILURE() << done.message();
  return bytes;
}

struct Case {
  std::string backend, config;
  int head_size, query_heads, kv_heads;
  int sliding_window = 0;
  float soft_cap = 0;
  int block_size = 16;            // multiples of 16 take the tiled kernel, others the simple one
  int32_t dtype = ATB_DTYPE_F32;  // of the inputs, outputs and (reference) cache
  float value_spread = 1.0f;      // standard deviation of the V inputs (queries: 1)
  float key_spread = 1.0f;        // of the K inputs
  double bound = 0;               // the relative L2 bound where not the dtype's (see the cases that set it)
  int longest_prompt = 300;       // prompt lengths are drawn from 1 .. this
};

size_t element_bytes(int32_t dtype) { return dtype == ATB_DTYPE_F32 ? 4 : 2; }

// The CPU plugin is the oracle: turboquant's exact f32 kernels, not the integer ones `auto` picks.
std::string oracle_config(const Case& c) {
  if (c.backend != "turboquant") return c.config;
  nlohmann::json config = nlohmann::json::parse(c.config.empty() ? "{}" : c.config);
  config["kernel"] = "avx2";
  return config.dump();
}

// Host floats stored as `dtype` (bf16 and f16 rounded to nearest even).
std::vector<uint8_t> stored_as(const std::vector<float>& values, int32_t dtype) {
  std::vector<uint8_t> bytes(values.size() * element_bytes(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == ATB_DTYPE_F32) {
      std::memcpy(bytes.data() + 4 * i, &values[i], 4);
    } else {
      const uint16_t bits = dtype == ATB_DTYPE_F16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
      std::memcpy(bytes.data() + 2 * i, &bits, 2);
    }
  }
  return bytes;
}

std::vector<float> read_as_floats(const std::vector<uint8_t>& bytes, int32_t dtype) {
  std::vector<float> values(bytes.size() / element_bytes(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == ATB_DTYPE_F32) {
      std::memcpy(&values[i], bytes.data() + 4 * i, 4);
    } else {
      uint16_t bits;
      std::memcpy(&bits, bytes.data() + 2 * i, 2);
      values[i] = dtype == ATB_DTYPE_F16 ? f16_to_f32(bits) : bf16_to_f32(bits);
    }
  }
  return values;
}

// One forward's host arrays.
struct Step {
  int32_t tokens = 0;
  std::vector<float> query, key, value;
  std::vector<int64_t> slots;
  std::vector<int32_t> starts, lens;
};

void run_case(const Case& c, std::mt19937_64& rng) {
  const int kBlock = c.block_size;
  const int d = c.head_size;
  std::uniform_int_distribution<int> length(1, c.longest_prompt);
  const int seqs = 3;
  std::vector<int> prompt(seqs);
  for (int& p : prompt) p = length(rng);
  if (c.longest_prompt > 300) prompt[0] = c.longest_prompt;  // the long cases' splits, whatever the draw
  int pages_needed = 0;
  for (int p : prompt) pages_needed += (p + 1 + kBlock - 1) / kBlock;
  const int num_pages = pages_needed + 3, stride = (c.longest_prompt + 1 + kBlock - 1) / kBlock;
  std::vector<int32_t> page_ids(static_cast<size_t>(num_pages));
  std::iota(page_ids.begin(), page_ids.end(), 0);
  std::shuffle(page_ids.begin(), page_ids.end(), rng);
  std::vector<int32_t> tables(size_t(seqs) * stride, 0);
  for (int s = 0, next = 0; s < seqs; ++s)
    for (int b = 0; b < (prompt[s] + 1 + kBlock - 1) / kBlock; ++b)
      tables[size_t(s) * stride + b] = page_ids[size_t(next++)];

  std::normal_distribution<float> normal;
  auto make_step = [&](bool decode) {
    Step step;
    step.starts.push_back(0);
    for (int s = 0; s < seqs; ++s) {
      const int new_tokens = decode ? 1 : prompt[s];
      const int total = decode ? prompt[s] + 1 : prompt[s];
      for (int i = 0; i < new_tokens; ++i) {
        const int position = total - new_tokens + i;
        step.slots.push_back(int64_t(tables[size_t(s) * stride + position / kBlock]) * kBlock + position % kBlock);
      }
      step.tokens += new_tokens;
      step.starts.push_back(step.tokens);
      step.lens.push_back(total);
    }
    auto fill = [&](std::vector<float>& v, int heads, float spread) {
      v.resize(size_t(step.tokens) * heads * d);
      for (float& x : v) x = spread * normal(rng);
    };
    fill(step.query, c.query_heads, 1.0f);
    fill(step.key, c.kv_heads, c.key_spread);
    fill(step.value, c.kv_heads, c.value_spread);
    return step;
  };
  const Step steps[2] = {make_step(false), make_step(true)};

  atb_layer_spec spec = make_versioned<atb_layer_spec>();
  spec.attention_kind = ATB_ATTENTION_STANDARD;
  spec.device_type = ATB_DEVICE_CPU;
  spec.num_query_heads = c.query_heads;
  spec.num_kv_heads = c.kv_heads;
  spec.head_size_k = spec.head_size_v = d;
  spec.dtype = c.dtype;
  spec.block_size = kBlock;
  spec.sliding_window = c.sliding_window;
  spec.logits_soft_cap = c.soft_cap;
  spec.layer_index = 1;
  spec.num_layers = 4;
  spec.kv_shared_with_layer = -1;
  auto cpu = test::create_backend(c.backend, spec, oracle_config(c));
  ASSERT_TRUE(cpu) << cpu.error().message();
  spec.device_type = ATB_DEVICE_CUDA;
  auto gpu = test::create_backend(c.backend, spec, c.config);
  ASSERT_TRUE(gpu) << gpu.error().message();
  const auto cache = *cpu->kv_cache_spec();
  const auto gpu_cache = *gpu->kv_cache_spec();
  ASSERT_EQ(cache.page_bytes, gpu_cache.page_bytes);

  const uint64_t page_stride =
      (cache.page_bytes + cache.page_alignment - 1) / cache.page_alignment * cache.page_alignment;
  const size_t pool_bytes = size_t(num_pages) * page_stride;
  std::vector<uint8_t> host_storage(pool_bytes + cache.page_alignment, 0xab);
  uint8_t* const host_pool =
      host_storage.data() +
      (cache.page_alignment - reinterpret_cast<uintptr_t>(host_storage.data()) % cache.page_alignment) %
          cache.page_alignment;
  std::vector<uint8_t> poison(pool_bytes, 0xab);
  auto made_stream = host::cuda::Stream::create();
  ASSERT_TRUE(made_stream) << made_stream.error().message();
  const host::cuda::Stream& host_stream = *made_stream;
  const auto stream = static_cast<cudaStream_t>(host_stream.handle());
  const DeviceMemory device_pool = device_copy(poison, host_stream);
  // The host may lend the workspace to others between forwards: it holds garbage, never zeros.
  const std::vector<uint8_t> garbage(gpu_cache.workspace_bytes, 0xab);
  DeviceMemory workspace = device_copy(garbage, host_stream);
  const DeviceMemory device_tables = device_copy(tables, host_stream);

  const std::string what = c.backend + " " + c.config + " d=" + std::to_string(d) + " heads " +
                           std::to_string(c.query_heads) + "/" + std::to_string(c.kv_heads) + " window " +
                           std::to_string(c.sliding_window) + " cap " + std::to_string(int(c.soft_cap)) + " page " +
                           std::to_string(kBlock) +
                           (c.dtype == ATB_DTYPE_F32   ? " f32"
                            : c.dtype == ATB_DTYPE_F16 ? " f16"
                                                       : " bf16") +
                           (c.value_spread != 1.0f ? " V x" + std::to_string(int(c.value_spread)) : "") +
                           (c.key_spread != 1.0f ? " K x" + std::to_string(int(c.key_spread)) : "") +
                           (c.longest_prompt != 300 ? " prompts <= " + std::to_string(c.longest_prompt) : "");
  for (const Step& step : steps) {
    std::vector<uint8_t> query = stored_as(step.query, c.dtype), key = stored_as(step.key, c.dtype);
    std::vector<uint8_t> value = stored_as(step.value, c.dtype);
    std::vector<uint8_t> cpu_out = stored_as(std::vector<float>(step.query.size(), NAN), c.dtype);
    atb_tensor q = host::dense_tensor(query.data(), c.dtype, step.tokens, c.query_heads, d);
    atb_tensor k = host::dense_tensor(key.data(), c.dtype, step.tokens, c.kv_heads, d);
    atb_tensor v = host::dense_tensor(value.data(), c.dtype, step.tokens, c.kv_heads, d);
    atb_tensor o = host::dense_tensor(cpu_out.data(), c.dtype, step.tokens, c.query_heads, d);
    atb_forward_args args = make_versioned<atb_forward_args>();
    args.query = &q, args.key = &k, args.value = &v, args.output = &o;
    args.kv_pages = host_pool;
    args.num_pages = num_pages;
    args.page_stride_bytes = page_stride;
    args.num_tokens = step.tokens;
    args.num_seqs = seqs;
    args.slot_mapping = step.slots.data();
    args.query_start_loc = step.starts.data();
    args.seq_lens = step.lens.data();
    args.block_tables = tables.data();
    args.block_table_stride = stride;
    std::vector<uint8_t> cpu_workspace(cache.workspace_bytes);
    args.workspace = cpu_workspace.data();
    args.workspace_bytes = cpu_workspace.size();
    if (Status done = cpu->forward(args); !done) FAIL() << what << ": " << done.message();

    const std::vector<uint8_t> poisoned_out = stored_as(std::vector<float>(step.query.size(), NAN), c.dtype);
    const DeviceMemory dq = device_copy(query, host_stream), dk = device_copy(key, host_stream);
    const DeviceMemory dv = device_copy(value, host_stream);
    DeviceMemory dout = device_copy(poisoned_out, host_stream);
    const DeviceMemory dslots = device_copy(step.slots, host_stream);
    const DeviceMemory dstarts = device_copy(step.starts, host_stream), dlens = device_copy(step.lens, host_stream);
    atb_tensor gq = host::dense_tensor(dq.data(), c.dtype, step.tokens, c.query_heads, d, ATB_DEVICE_CUDA, stream);
    atb_tensor gk = host::dense_tensor(dk.data(), c.dtype, step.tokens, c.kv_heads, d, ATB_DEVICE_CUDA, stream);
    atb_tensor gv = host::dense_tensor(dv.data(), c.dtype, step.tokens, c.kv_heads, d, ATB_DEVICE_CUDA, stream);
    atb_tensor go = host::dense_tensor(dout.data(), c.dtype, step.tokens, c.query_heads, d, ATB_DEVICE_CUDA, stream);
    args.query = &gq, args.key = &gk, args.value = &gv, args.output = &go;
    args.kv_pages = device_pool.data();
    args.slot_mapping = dslots.as<const int64_t>();
    args.query_start_loc = dstarts.as<const int32_t>();
    args.seq_lens = dlens.as<const int32_t>();
    args.block_tables = device_tables.as<const int32_t>();
    args.workspace = workspace.data();
    args.workspace_bytes = workspace.bytes();
    if (Status done = gpu->forward(args); !done) FAIL() << what << ": " << done.message();
    CUDA_OK(cudaStreamSynchronize(stream));

    const std::vector<uint8_t> gpu_bytes = device_bytes(dout, host_stream);
    if (step.tokens == seqs) {  // the decode step again, captured in a CUDA graph and replayed
      ASSERT_TRUE(dout.upload(poisoned_out.data(), poisoned_out.size(), host_stream));
      cudaGraph_t graph = nullptr;
      CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      const Status captured = gpu->forward(args);
      CUDA_OK(cudaStreamEndCapture(stream, &graph));
      ASSERT_TRUE(captured) << what << ": forward under graph capture: " << captured.message();
      cudaGraphExec_t exec = nullptr;
      CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
      CUDA_OK(cudaGraphLaunch(exec, stream));
      CUDA_OK(cudaStreamSynchronize(stream));
      cudaGraphExecDestroy(exec);
      cudaGraphDestroy(graph);
      EXPECT_EQ(device_bytes(dout, host_stream), gpu_bytes)
          << what << ": the graph replay differs from the eager forward";

      // A layer reading these pages without writing (KV sharing, the same rotation): its attention
      // kernel runs with no write kernel ahead of it (no early start), on a workspace of garbage.
      atb_layer_spec shared_spec = spec;
      shared_spec.layer_index = spec.layer_index + 1;
      shared_spec.kv_shared_with_layer = spec.layer_index;
      auto sharer = test::create_backend(c.backend, shared_spec, c.config);
      ASSERT_TRUE(sharer) << sharer.error().message();
      ASSERT_TRUE(workspace.upload(garbage.data(), garbage.size(), host_stream));
      ASSERT_TRUE(dout.upload(poisoned_out.data(), poisoned_out.size(), host_stream));
      atb_forward_args shared_args = args;
      shared_args.key = shared_args.value = nullptr;
      if (Status done = sharer->forward(shared_args); !done) FAIL() << what << ": KV-sharing layer: " << done.message();
      CUDA_OK(cudaStreamSynchronize(stream));
      EXPECT_EQ(device_bytes(dout, host_stream), gpu_bytes)
          << what << ": a KV-sharing layer's outputs differ from its owner's";
    }
    const std::vector<float> gpu_out = read_as_floats(gpu_bytes, c.dtype),
                             cpu_values = read_as_floats(cpu_out, c.dtype);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < cpu_values.size(); ++i) {
      ASSERT_TRUE(std::isfinite(gpu_out[i]))
          << what << (step.tokens == seqs ? " decode" : " prefill") << ": output " << i << " not written or not finite";
      diff += (gpu_out[i] - cpu_values[i]) * double(gpu_out[i] - cpu_values[i]);
      norm += double(cpu_values[i]) * cpu_values[i];
    }
    const double relative = std::sqrt(diff / norm);
    // f32 outputs: arithmetic order only.  bf16 (and f16) outputs: both sides round a value that differs
    // by arithmetic order and, in the tensor-core kernel, by its fp16 queries, K codebook values and
    // weights (2^-11 relative each), so they differ by one bf16 step (2^-8 relative) where it sits
    // near a rounding boundary.
    const double bound = c.bound > 0 ? c.bound : c.dtype == ATB_DTYPE_F32 ? 1e-4 : 2e-3;
    EXPECT_LT(relative, bound) << what << ": GPU vs CPU relative L2 error of the outputs";
    std::printf("%-70s %-7s relative L2 error %.2e (bound %.0e)\n", what.c_str(),
                step.tokens == seqs ? "decode" : "prefill", relative, bound);

    const std::vector<uint8_t> gpu_pool = device_bytes(device_pool, host_stream);
    size_t differing = 0;
    for (size_t i = 0; i < pool_bytes; ++i) differing += gpu_pool[i] != host_pool[i];
    EXPECT_EQ(differing, 0u) << what << ": page bytes written differently by the GPU";

    if (step.tokens == seqs) {  // a block table naming a page outside the pool: that sequence's outputs are NaN
      std::vector<int32_t> bad_tables = tables;
      const size_t newest_page = size_t(step.lens[0] - 1) / kBlock;  // read whatever the window
      bad_tables[newest_page] = num_pages + 7;
      const DeviceMemory device_bad_tables = device_copy(bad_tables, host_stream);
      ASSERT_TRUE(dout.upload(poisoned_out.data(), poisoned_out.size(), host_stream));
      args.block_tables = device_bad_tables.as<const int32_t>();  // the write step rewrites the same slots
      if (Status done = gpu->forward(args); !done) FAIL() << what << ": " << done.message();
      CUDA_OK(cudaStreamSynchronize(stream));
      const std::vector<float> flagged = read_as_floats(device_bytes(dout, host_stream), c.dtype);
      const size_t per_token = size_t(c.query_heads) * d;
      for (size_t i = 0; i < flagged.size(); ++i) {
        const bool first_sequence = i < per_token;  // decode: token s belongs to sequence s
        if (first_sequence != std::isnan(flagged[i])) {
          ADD_FAILURE() << what << ": output " << i << " = " << flagged[i] << " with sequence 0's table naming page "
                        << bad_tables[newest_page] << " of " << num_pages;
          break;
        }
      }
    }
  }
}

TEST(CudaAttention, MatchesTheCpuPathForEveryFormatPair) {
  if (!host::cuda::device_present())
    GTEST_SKIP() << "no CUDA device on this machine: the CUDA path is compiled but cannot run here";
  std::mt19937_64 rng(test::test_seed());
  const std::vector<Case> cases = {
      {"reference", "{}", 128, 32, 8},
      {"reference", "{}", 64, 8, 8, 40, 0},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q3_0"})", 128, 32, 8},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q3_0"})", 128, 16, 8},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3"})", 128, 32, 8},
      {"turboquant", R"({"k_quant":"q5_0","v_quant":"q4_0"})", 64, 16, 2, 0, 30.0f},
      {"turboquant", R"({"k_quant":"uint2","v_quant":"q2_0"})", 256, 8, 4},
      {"turboquant", R"({"k_quant":"int8","v_quant":"q8_0"})", 128, 12, 2, 100, 0},
      {"turboquant", R"({"k_quant":"int4","v_quant":"q5_0"})", 128, 4, 4},
      {"turboquant", R"({"k_quant":"tq8","v_quant":"tq2"})", 64, 8, 1},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"f16"})", 128, 16, 4},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q3_0"})", 128, 32, 8, 0, 0, 8},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3"})", 256, 8, 2, 50, 0, 32},
      {"turboquant", R"({"k_quant":"uint8","v_quant":"q5_0"})", 64, 32, 4, 0, 50.0f},
      {"turboquant", R"({"k_quant":"tq1","v_quant":"q2_0"})", 128, 6, 2},
      {"reference", "{}", 256, 4, 4, 0, 0, 16},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q3_0"})", 128, 32, 2},  // group 16: two blocks a KV head
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"tq3"})", 128, 8, 1, 64, 20.0f},
      {"reference", "{}", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3"})", 128, 32, 8, 0, 0, 32, ATB_DTYPE_BF16},
      // The tensor-core kernel's other K/V instances (affine 4/5/8-bit unsigned, 8-bit signed, 4-bit
      // codebook K; V blocks of 32 or 128), groups 1 to 8, a page size that is not a power of two.
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"tq3"})", 128, 8, 8},
      {"turboquant", R"({"k_quant":"int8","v_quant":"q3_0"})", 128, 24, 4, 70, 0},
      {"turboquant", R"({"k_quant":"int8","v_quant":"tq3"})", 128, 12, 4, 0, 15.0f},
      {"turboquant", R"({"k_quant":"q5_0","v_quant":"q3_0"})", 128, 20, 4},
      {"turboquant", R"({"k_quant":"q5_0","v_quant":"tq3"})", 128, 28, 4, 33, 0},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"q3_0"})", 128, 16, 4, 0, 40.0f, 48},
      // bf16 queries and outputs take the 16-bit-operand instances: every K kind, both V blocks.
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q3_0"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q3_0"})", 128, 16, 8, 50, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"int8","v_quant":"tq3"})", 128, 12, 4, 0, 15.0f, 32, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"q5_0","v_quant":"q3_0"})", 128, 20, 4, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"q3_0"})", 128, 16, 4, 0, 0, 48, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"tq3"})", 128, 8, 8, 0, 0, 16, ATB_DTYPE_BF16},
      // The prefill kernel's instances with the format fixed at compile time (Rows::kPrefillPairs) at
      // groups of 5-8 (8 heads a block); groups of 3-4 take them in the cases above.
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3"})", 128, 16, 2, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q3_0"})", 128, 24, 4, 0, 20.0f, 16, ATB_DTYPE_BF16},
      {"reference", "{}", 128, 40, 8, 70, 0, 32, ATB_DTYPE_BF16},
      // f16 layers: the 16-bit instances with f16 queries, outputs and (reference) cache.
      {"reference", "{}", 128, 32, 8, 0, 0, 16, ATB_DTYPE_F16},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_F16},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q3_0"})", 128, 16, 2, 40, 0, 32, ATB_DTYPE_F16},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"tq3"})", 128, 32, 8, 0, 20.0f, 16, ATB_DTYPE_F16},
      {"turboquant", R"({"k_quant":"tq2","v_quant":"tq2"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_F16},
      // Chunks of up to 4600 tokens in one forward: long causal contexts within one prefill.
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q3_0"})", 128, 16, 4, 0, 0, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0,
       4600},
      {"reference", "{}", 128, 8, 8, 0, 0, 16, ATB_DTYPE_F16, 1.0f, 1.0f, 0, 4600},
      // The tensor-core decode kernel of plain 16-bit rows (queries of the cache's type): head sizes 64,
      // 128 and 256, groups of 1 to 16, windows, soft caps, pages of 16 to 48 rows, contexts split
      // over several blocks.  (Keys of ~2e4 in a bf16 layer are left out: the prefill kernel's fp16
      // queries then err by 2e-2.)
      {"reference", "{}", 128, 32, 2, 0, 30.0f, 16, ATB_DTYPE_BF16},
      {"reference", "{}", 128, 16, 16, 50, 0, 48, ATB_DTYPE_F16, 1.0f, 1.0f, 0, 2600},
      {"reference", "{}", 128, 24, 8, 0, 0, 32, ATB_DTYPE_BF16, 1.0f, 1.0f, 0, 4600},
      {"reference", "{}", 128, 8, 1, 700, 20.0f, 16, ATB_DTYPE_F16, 1.0f, 1.0f, 0, 2600},
      {"reference", "{}", 64, 16, 4, 0, 25.0f, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0, 2600},
      {"reference", "{}", 64, 32, 2, 90, 0, 32, ATB_DTYPE_F16},
      {"reference", "{}", 256, 16, 4, 0, 20.0f, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0, 2600},
      {"reference", "{}", 256, 8, 8, 60, 0, 32, ATB_DTYPE_F16},
      // 2- and 4-bit V codes (pair tables of 16 and 256 entries), blocks of 32 and 128, every K kind.
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q4_0"})", 128, 32, 8},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q2_0"})", 128, 16, 4, 60, 0},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq4"})", 128, 32, 8, 0, 20.0f, 48},
      {"turboquant", R"({"k_quant":"int8","v_quant":"tq2"})", 128, 12, 4},
      {"turboquant", R"({"k_quant":"q5_0","v_quant":"q4_0"})", 128, 20, 4, 0, 0, 32},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"q2_0"})", 128, 8, 8},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q4_0"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"tq4"})", 128, 16, 8, 40, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq2"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"int8","v_quant":"q2_0"})", 128, 24, 4, 0, 30.0f, 48, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"q5_0","v_quant":"tq4"})", 128, 8, 2, 0, 0, 16, ATB_DTYPE_BF16},
      // 3- and 2-bit codebook K (pair tables in shared memory).
      {"turboquant", R"({"k_quant":"tq3","v_quant":"tq3"})", 128, 32, 8},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"tq2"})", 128, 16, 4, 50, 25.0f, 48},
      {"turboquant", R"({"k_quant":"tq2","v_quant":"q4_0"})", 128, 12, 4},
      {"turboquant", R"({"k_quant":"tq2","v_quant":"tq3"})", 128, 8, 8, 0, 0, 32},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"tq3"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"q2_0"})", 128, 24, 4, 70, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"tq2","v_quant":"tq2"})", 128, 32, 8, 0, 30.0f, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"tq2","v_quant":"q3_0"})", 128, 8, 2, 0, 0, 48, ATB_DTYPE_BF16},
      // 5- and 8-bit V codes (a table entry per code), blocks of 32.
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q8_0"})", 128, 32, 8},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"q5_0"})", 128, 16, 4, 0, 25.0f, 48},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q8_0"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"q5_0"})", 128, 24, 4, 80, 0, 32, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q8_0"})", 128, 8, 8, 0, 0, 16, ATB_DTYPE_BF16},
      // 2-bit affine K (int2 and uint2 are one format).
      {"turboquant", R"({"k_quant":"uint2","v_quant":"q3_0"})", 128, 16, 4, 0, 20.0f},
      {"turboquant", R"({"k_quant":"int2","v_quant":"tq2"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"uint2","v_quant":"q4_0"})", 128, 8, 2, 0, 0, 16, ATB_DTYPE_F32, 1.0f, 1.0f, 0,
       2600},
      // The tensor-core kernel at head sizes 64 and 256 (affine K of 2, 4, 5 and 8 bits, codebook K of
      // 2 to 4 bits; V blocks of 32 coordinates or the whole row; 2- to 5- and 8-bit V codes), and
      // groups past its 8 heads a block (12, 16, 32: several blocks a KV head).
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3"})", 64, 32, 8, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q3_0"})", 64, 16, 4, 40, 0, 32},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"tq2"})", 64, 8, 2, 0, 20.0f, 16, ATB_DTYPE_F16},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q4_0"})", 64, 8, 8, 0, 0, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0, 2600},
      {"turboquant", R"({"k_quant":"uint2","v_quant":"tq3"})", 64, 12, 4},
      {"turboquant", R"({"k_quant":"tq2","v_quant":"q8_0"})", 64, 16, 2, 0, 0, 48, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q3_0"})", 256, 32, 8, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"tq3"})", 256, 16, 4, 0, 25.0f, 32},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"tq4"})", 256, 8, 2, 50, 0, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0,
       2600},
      {"turboquant", R"({"k_quant":"tq2","v_quant":"q5_0"})", 256, 8, 8, 0, 0, 16, ATB_DTYPE_F16},
      {"turboquant", R"({"k_quant":"q5_0","v_quant":"q8_0"})", 256, 12, 4, 0, 0, 16, ATB_DTYPE_F32, 20000.0f},
      {"turboquant", R"({"k_quant":"int8","v_quant":"q2_0"})", 256, 8, 4, 0, 0, 48, ATB_DTYPE_F32, 1.0f, 1.0f, 0, 2600},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3"})", 128, 32, 2, 0, 0, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0, 2600},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q3_0"})", 128, 24, 2, 0, 30.0f},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq2"})", 64, 32, 2, 0, 0, 16, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"int8","v_quant":"tq3"})", 256, 32, 1, 0, 0, 16, ATB_DTYPE_F16},
      // Every other head size the plugins list: the simple kernel; sizes that are not powers of two
      // rotate in two rounds through seeded permutations, and affine rows end in a partial block.
      {"reference", "{}", 16, 4, 2},
      {"reference", "{}", 80, 8, 8, 30, 0},
      {"reference", "{}", 160, 4, 1, 0, 0, 8, ATB_DTYPE_BF16},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q3_0"})", 32, 8, 2},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q3_0"})", 48, 8, 2},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3"})", 80, 32, 8},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"tq3"})", 96, 12, 4, 40, 25.0f},
      {"turboquant", R"({"k_quant":"int4","v_quant":"q5_0"})", 112, 8, 1},
      {"turboquant", R"({"k_quant":"uint8","v_quant":"q2_0"})", 160, 4, 2, 0, 0, 32},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"tq4"})", 192, 16, 4, 0, 0, 16, ATB_DTYPE_BF16},
      // V values in the tens of thousands (some past fp16's 65504): block scales past what a
      // 16-bit weight x scale product holds at the weights' usual slack, and decoded values past
      // what the prefill kernel's fp16 planes hold; every kernel must keep them finite and exact.
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q3_0"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_F32, 20000.0f},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q3_0"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16, 20000.0f},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16, 20000.0f},
      {"turboquant", R"({"k_quant":"q5_0","v_quant":"q4_0"})", 128, 8, 2, 0, 0, 16, ATB_DTYPE_BF16, 20000.0f},
      {"reference", "{}", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16, 20000.0f},
      // K values as large: the prefill kernel's K planes too.  Scores are then ~2e4, whose own fp32
      // rounding (~1e-3 absolute, in the CPU's order or the GPU's) moves nearly tied weights by as
      // much: GPU vs CPU differ by up to ~1e-4 here (one run of 30 went past 1e-4), so the bound is 1e-3.
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q3_0"})", 128, 16, 4, 0, 0, 16, ATB_DTYPE_F32, 1.0f, 20000.0f,
       1e-3},
      {"reference", "{}", 128, 32, 8, 0, 0, 16, ATB_DTYPE_F32, 20000.0f, 20000.0f, 1e-3},
      // Contexts of up to 2600 positions: a decode step splits them (at least 512 positions a
      // split, the other splits empty) and merges the splits' states; shorter ones take one split.
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q3_0"})", 128, 8, 2, 0, 0, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0,
       2600},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3"})", 128, 8, 2, 1500, 0, 16, ATB_DTYPE_F32, 1.0f, 1.0f, 0,
       2600},
      {"turboquant", R"({"k_quant":"q5_0","v_quant":"q4_0"})", 64, 4, 2, 0, 0, 16, ATB_DTYPE_F32, 1.0f, 1.0f, 0, 2600},
      {"reference", "{}", 64, 4, 1, 0, 0, 8, ATB_DTYPE_F32, 1.0f, 1.0f, 0, 2600},
      // 16 KV heads: on an H100 the tensor-core kernel's split blocks make two waves, and the first
      // half of the splits of a context past 4096 positions takes the larger share of it
      // (split_range).  The CUDA-core kernel's blocks here (8 a multiprocessor, 48 x 32 splits)
      // make 1.45 waves: even ranges, up to 8 of 32 splits used, the others empty.  With 32 KV
      // heads its blocks (96 x 21 splits) make 1.9 waves: uneven ranges, 8 of 21 splits used.
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q3_0"})", 128, 16, 16, 0, 0, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0,
       4600},
      {"turboquant", R"({"k_quant":"q5_0","v_quant":"q4_0"})", 64, 16, 16, 0, 0, 16, ATB_DTYPE_F32, 1.0f, 1.0f, 0,
       4600},
      {"turboquant", R"({"k_quant":"q5_0","v_quant":"q4_0"})", 64, 32, 32, 0, 0, 16, ATB_DTYPE_F32, 1.0f, 1.0f, 0,
       4600},
      // 64 KV heads of one query head each: the tensor-core kernel's 192 blocks a split take 7
      // splits on an H100 (2.5 waves), and the 4600-position context uses all 7: uneven ranges
      // with fewer than 8 splits (as B=32 and B=64 decode at 32K).
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq3"})", 128, 64, 64, 0, 0, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0,
       4600},
      // The same split paths, and V scales past fp16's reach, through the newer instances: 2-, 4-, 5- and
      // 8-bit V codes, 2- and 3-bit codebook K.
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q4_0"})", 128, 16, 16, 0, 0, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0,
       4600},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq2"})", 128, 8, 2, 0, 0, 16, ATB_DTYPE_F32, 1.0f, 1.0f, 0, 2600},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q4_0"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16, 20000.0f},
      {"turboquant", R"({"k_quant":"tq4","v_quant":"tq2"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_F32, 20000.0f},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"tq3"})", 128, 16, 16, 0, 0, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0,
       4600},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"tq2"})", 128, 8, 2, 0, 0, 16, ATB_DTYPE_F32, 1.0f, 1.0f, 0, 2600},
      {"turboquant", R"({"k_quant":"tq3","v_quant":"tq3"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_F32, 20000.0f, 20000.0f,
       1e-3},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q8_0"})", 128, 16, 16, 0, 0, 16, ATB_DTYPE_BF16, 1.0f, 1.0f, 0,
       4600},
      {"turboquant", R"({"k_quant":"int8","v_quant":"q5_0"})", 128, 8, 2, 0, 0, 16, ATB_DTYPE_F32, 1.0f, 1.0f, 0, 2600},
      {"turboquant", R"({"k_quant":"q8_0","v_quant":"q8_0"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_BF16, 20000.0f},
      {"turboquant", R"({"k_quant":"q4_0","v_quant":"q5_0"})", 128, 32, 8, 0, 0, 16, ATB_DTYPE_F32, 20000.0f},
  };
  for (const Case& c : cases) run_case(c, rng);
}

// Per-channel smoothing from a calibration file (tq/channel_maxima.hpp): the GPU's rows shrink before
// the rotation and its queries and outputs take the scales back exactly as the CPU's do, so pages
// stay byte-identical; scales (and centering's means) sit in the layer tables after any rotation
// permutations (head size 80).
TEST(CudaAttention, SmoothingFromAFileMatchesTheCpuPath) {
  if (!host::cuda::device_present())
    GTEST_SKIP() << "no CUDA device on this machine: the CUDA path is compiled but cannot run here";
  std::mt19937_64 rng(test::test_seed());
  for (const int d : {128, 80}) {
    tq::ChannelMaxima maxima(4, 8, d);
    std::uniform_real_distribution<float> spread(0.5f, 2.0f);
    for (float* values : {maxima.key.data(), maxima.value.data()})
      for (size_t i = 0; i < maxima.key.size(); ++i) values[i] = (i % 17 == 3 ? 40.0f : 2.0f) * spread(rng);
    std::normal_distribution<float> mean(0.0f, 0.7f);
    for (std::vector<float>* means : {&maxima.key_mean, &maxima.value_mean}) {
      means->resize(maxima.key.size());
      for (float& m : *means) m = mean(rng);
    }
    const test::TempFile file("cuda_maxima_" + std::to_string(d) + ".json");
    std::ofstream(file.path()) << tq::channel_maxima_json(maxima, "cuda_attention_test");
    const std::string smoothing =
        R"(,"k_smoothing":"file","v_smoothing":"file","smoothing_file":")" + file.string() + R"("})";
    const auto pair = [&](const char* k, const char* v) {
      return std::string(R"({"k_quant":")") + k + R"(","v_quant":")" + v + "\"" + smoothing;
    };
    const auto centered = [&](const char* k, const char* v) {
      return std::string(R"({"k_quant":")") + k + R"(","v_quant":")" + v +
             R"(","k_centering":true,"v_centering":true)" + smoothing;
    };
    const std::vector<Case> cases = {
        {"turboquant", pair("tq4", "tq3"), d, 32, 8},
        {"turboquant", pair("q4_0", "q3_0"), d, 8, 2, 0, 0, 16, ATB_DTYPE_BF16},
        {"turboquant", pair("tq3", "tq3"), d, 16, 4, 0, 0, 32, ATB_DTYPE_BF16},
        {"turboquant", pair("q8_0", "tq3"), d, 32, 2},  // group 16: the CUDA-core kernel
        // Centering: rows stored as x / s - mu (one fmaf, as the CPU's fma), outputs given mu back.
        {"turboquant", centered("tq3", "tq2"), d, 32, 8},
        {"turboquant", centered("q4_0", "q3_0"), d, 8, 2, 0, 0, 16, ATB_DTYPE_BF16},
        {"turboquant", centered("q8_0", "tq3"), d, 32, 2},
    };
    for (const Case& c : cases) run_case(c, rng);
  }
}

}  // namespace
}  // namespace atb
