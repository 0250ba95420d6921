// tq cuda-bench: decode attention of one layer on a CUDA device, timed with CUDA events, for the
// reference backend (bf16 cache) and turboquant pairs in one run.  Each forward (write of the new
// tokens' K/V, attention, merge) is captured once in a CUDA graph and replayed: one replay between
// two events is the figure (it counts the host's launch latency in); the same forward launched
// eagerly, and replays in a row (the latency hidden, as in a forward of many layers), are printed
// beside it.  Achieved bandwidth counts the cache bytes the step must read (B x context x KV heads
// x (K row + V row bytes)); the device's copy bandwidth (read + written bytes of a large
// device-to-device copy) and each row's read floor (one bare kernel reading the row's bytes, timed
// as the single-replay figure; read_floor.cu) are measured in the same run.
// Encode: write-only forwards of 32K tokens, per token per layer.
#include <atb/cli/host_options.hpp>
#include <atb/half.hpp>
#include <atb/host/cuda_memory.hpp>
#include <atb/host/paged_kv.hpp>
#include <atb/struct_io.hpp>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <tq/format.hpp>

#include "commands.hpp"
#include "format_pairs.hpp"
#include "read_floor.hpp"

namespace atb::tool {
namespace {

Status cuda_status(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return Status::ok();
  return Status::internal(std::string(what) + ": " + cudaGetErrorString(error));
}
#define TQ_CUDA(call) ATB_RETURN_IF_ERROR(cuda_status((call), #call))

using host::cuda::DeviceMemory;

// `into` becomes `bytes` of new device memory.
Status reserve(DeviceMemory& into, size_t bytes) {
  auto made = DeviceMemory::allocate(bytes);
  if (!made) return made.error();
  into = std::move(*made);
  return Status::ok();
}

// `into` becomes a device copy of `values`.
template <class T>
Status put(DeviceMemory& into, const std::vector<T>& values, const host::cuda::Stream& stream) {
  auto made = DeviceMemory::copy_of(values, stream);
  if (!made) return made.error();
  into = std::move(*made);
  return Status::ok();
}

struct Event {
  cudaEvent_t handle = nullptr;
  ~Event() {
    if (handle) cudaEventDestroy(handle);
  }
};
struct Graph {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
  }
};

struct Shape {
  int query_heads = 32, kv_heads = 8, head_size = 128, block_size = 16, context = 32768;
  int step_tokens = 1;  // new tokens per sequence in a step: 1 for decode, a chunk for prefill
};

std::vector<uint16_t> random_bf16(size_t count, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  std::vector<uint16_t> values(count);
  for (auto& v : values) v = f32_to_bf16(normal(rng));
  return values;
}

atb_tensor device_tensor(void* data, int64_t tokens, int64_t heads, int64_t d, cudaStream_t stream) {
  return host::dense_tensor(data, ATB_DTYPE_BF16, tokens, heads, d, ATB_DEVICE_CUDA, stream);
}

// Median time per call of `samples` timings, each of `calls` calls of `enqueue` between two events
// on `stream` with the stream idle before, in ms.  One call per timing counts the host's launch
// latency in (the stream waits for it); many calls in a row hide it, as an engine's forward of
// every layer does.
template <class Enqueue>
Expected<double> median_ms(cudaStream_t stream, int samples, int calls, Enqueue&& enqueue) {
  Event start, stop;
  TQ_CUDA(cudaEventCreate(&start.handle));
  TQ_CUDA(cudaEventCreate(&stop.handle));
  std::vector<double> times;
  for (int sample = 0; sample < samples; ++sample) {
    TQ_CUDA(cudaEventRecord(start.handle, stream));
    for (int call = 0; call < calls; ++call) ATB_RETURN_IF_ERROR(enqueue(sample * calls + call));
    TQ_CUDA(cudaEventRecord(stop.handle, stream));
    TQ_CUDA(cudaEventSynchronize(stop.handle));
    float ms = 0;
    TQ_CUDA(cudaEventElapsedTime(&ms, start.handle, stop.handle));
    times.push_back(ms / calls);
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

// Read + written bytes per second of a 1 GiB device-to-device copy.
Expected<double> copy_bandwidth(cudaStream_t stream) {
  const size_t bytes = size_t(1) << 30;
  DeviceMemory from, to;
  ATB_RETURN_IF_ERROR(reserve(from, bytes));
  ATB_RETURN_IF_ERROR(reserve(to, bytes));
  TQ_CUDA(cudaMemsetAsync(from.data(), 1, bytes, stream));
  auto ms = median_ms(stream, 20, 1, [&](int) {
    return cuda_status(cudaMemcpyAsync(to.data(), from.data(), bytes, cudaMemcpyDeviceToDevice, stream), "copy");
  });
  if (!ms) return ms.error();
  return 2.0 * double(bytes) / (*ms * 1e-3);
}

// Steps replayed one after another per timing of the in-a-row figure (the host's launch latency
// hidden behind the steps ahead, as in an engine's forward of every layer).
constexpr int kStepsInRow = 20;

struct Row {
  std::string label;
  int batch = 0;
  double graph_ms = 0, in_row_ms = 0, eager_ms = 0, cache_bytes = 0;
  double encode_us_per_token = 0;
};

// One backend at one batch size: fill, time encode, time decode steps (graph and eager).
Expected<Row> bench_one(const host::Plugin& plugin, const std::string& label, const std::string& config,
                        const Shape& shape, int batch, int runs, const host::cuda::Stream& host_stream,
                        std::mt19937_64& rng) {
  const auto stream = static_cast<cudaStream_t>(host_stream.handle());
  atb_layer_spec spec = make_versioned<atb_layer_spec>();
  spec.attention_kind = ATB_ATTENTION_STANDARD;
  spec.device_type = ATB_DEVICE_CUDA;
  spec.num_query_heads = shape.query_heads;
  spec.num_kv_heads = shape.kv_heads;
  spec.head_size_k = spec.head_size_v = shape.head_size;
  spec.dtype = ATB_DTYPE_BF16;
  spec.block_size = shape.block_size;
  spec.layer_index = 0;
  spec.num_layers = 1;
  spec.kv_shared_with_layer = -1;
  auto backend = plugin.create_backend(spec, config);
  if (!backend) return backend.error();
  auto cache = backend->kv_cache_spec();
  if (!cache) return cache.error();
  const uint64_t row_bytes = cache->k_bytes_per_token_per_head + cache->v_bytes_per_token_per_head;
  const double step_bytes = double(batch) * shape.context * shape.kv_heads * double(row_bytes);
  // Sets of sequences used in turn, so that one step's cache bytes are not still in L2 the next.
  const int sets = int(std::clamp(std::ceil(256e6 / step_bytes), 2.0, 16.0));
  const int pages_per_seq = (shape.context + shape.block_size - 1) / shape.block_size;
  const int64_t num_pages = int64_t(sets) * batch * pages_per_seq;
  const uint64_t stride =
      (cache->page_bytes + cache->page_alignment - 1) / cache->page_alignment * cache->page_alignment;

  DeviceMemory pool, workspace;
  ATB_RETURN_IF_ERROR(reserve(pool, size_t(num_pages) * stride));
  ATB_RETURN_IF_ERROR(reserve(workspace, cache->workspace_bytes));
  std::vector<int32_t> pages(static_cast<size_t>(num_pages));
  std::iota(pages.begin(), pages.end(), 0);
  std::shuffle(pages.begin(), pages.end(), rng);  // pages scattered as an allocator leaves them
  DeviceMemory tables;
  ATB_RETURN_IF_ERROR(put(tables, pages, host_stream));  // sequence j's table: pages[j * pages_per_seq ...]

  // Fill every sequence with one chunk of N(0,1) K/V (write-only forwards), timing the encode.
  const int chunk = shape.context;
  DeviceMemory chunk_key, chunk_value, chunk_slots;
  ATB_RETURN_IF_ERROR(put(chunk_key, random_bf16(size_t(chunk) * shape.kv_heads * shape.head_size, rng), host_stream));
  ATB_RETURN_IF_ERROR(
      put(chunk_value, random_bf16(size_t(chunk) * shape.kv_heads * shape.head_size, rng), host_stream));
  std::vector<int64_t> slots(static_cast<size_t>(chunk));
  ATB_RETURN_IF_ERROR(reserve(chunk_slots, slots.size() * sizeof(int64_t)));
  const atb_tensor fill_key = device_tensor(chunk_key.data(), chunk, shape.kv_heads, shape.head_size, stream);
  const atb_tensor fill_value = device_tensor(chunk_value.data(), chunk, shape.kv_heads, shape.head_size, stream);
  atb_forward_args write = make_versioned<atb_forward_args>();
  write.key = &fill_key, write.value = &fill_value;
  write.kv_pages = pool.data();
  write.num_pages = num_pages;
  write.page_stride_bytes = stride;
  write.num_tokens = chunk;
  write.slot_mapping = chunk_slots.as<int64_t>();
  write.workspace = workspace.data();
  write.workspace_bytes = workspace.bytes();
  write.flags = ATB_FORWARD_WRITE_KV_ONLY;
  DeviceMemory fill_starts, fill_lens;  // one sequence per write (validated, not used by the write)
  ATB_RETURN_IF_ERROR(put(fill_starts, std::vector<int32_t>{0, chunk}, host_stream));
  ATB_RETURN_IF_ERROR(put(fill_lens, std::vector<int32_t>{chunk}, host_stream));
  write.num_seqs = 1;
  write.query_start_loc = fill_starts.as<int32_t>();
  write.seq_lens = fill_lens.as<int32_t>();
  write.block_tables = tables.as<int32_t>();
  write.block_table_stride = pages_per_seq;
  Row row;
  row.label = label;
  row.batch = batch;
  row.cache_bytes = step_bytes;
  for (int seq = 0; seq < sets * batch; ++seq) {
    for (int t = 0; t < chunk; ++t)
      slots[size_t(t)] =
          int64_t(pages[size_t(seq) * pages_per_seq + t / shape.block_size]) * shape.block_size + t % shape.block_size;
    TQ_CUDA(cudaMemcpyAsync(chunk_slots.data(), slots.data(), slots.size() * sizeof(int64_t), cudaMemcpyHostToDevice,
                            stream));
    if (seq == 0) {
      auto ms = median_ms(stream, 5, 1, [&](int) { return backend->forward(write); });
      if (!ms) return ms.error();
      row.encode_us_per_token = *ms * 1e3 / chunk;
    } else {
      ATB_RETURN_IF_ERROR(backend->forward(write));
    }
    TQ_CUDA(cudaStreamSynchronize(stream));  // `slots` is rewritten for the next sequence
  }

  // Steps: step_tokens new tokens per sequence at the last positions (rewriting their slots).
  const int new_tokens = batch * shape.step_tokens;
  DeviceMemory query, key, value, output, step_slots, starts, lens;
  ATB_RETURN_IF_ERROR(
      put(query, random_bf16(size_t(new_tokens) * shape.query_heads * shape.head_size, rng), host_stream));
  ATB_RETURN_IF_ERROR(put(key, random_bf16(size_t(new_tokens) * shape.kv_heads * shape.head_size, rng), host_stream));
  ATB_RETURN_IF_ERROR(put(value, random_bf16(size_t(new_tokens) * shape.kv_heads * shape.head_size, rng), host_stream));
  ATB_RETURN_IF_ERROR(put(
      output, std::vector<uint16_t>(size_t(new_tokens) * shape.query_heads * shape.head_size, 0x7fc0), host_stream));
  std::vector<int64_t> decode_slots;
  for (int set = 0; set < sets; ++set)
    for (int b = 0; b < batch; ++b)
      for (int position = shape.context - shape.step_tokens; position < shape.context; ++position) {
        const int seq = set * batch + b;
        decode_slots.push_back(int64_t(pages[size_t(seq) * pages_per_seq + position / shape.block_size]) *
                                   shape.block_size +
                               position % shape.block_size);
      }
  ATB_RETURN_IF_ERROR(put(step_slots, decode_slots, host_stream));
  std::vector<int32_t> start_values(size_t(batch) + 1);
  for (int b = 0; b <= batch; ++b) start_values[size_t(b)] = b * shape.step_tokens;
  ATB_RETURN_IF_ERROR(put(starts, start_values, host_stream));
  ATB_RETURN_IF_ERROR(put(lens, std::vector<int32_t>(size_t(batch), shape.context), host_stream));
  const atb_tensor q = device_tensor(query.data(), new_tokens, shape.query_heads, shape.head_size, stream);
  const atb_tensor k = device_tensor(key.data(), new_tokens, shape.kv_heads, shape.head_size, stream);
  const atb_tensor v = device_tensor(value.data(), new_tokens, shape.kv_heads, shape.head_size, stream);
  const atb_tensor o = device_tensor(output.data(), new_tokens, shape.query_heads, shape.head_size, stream);
  auto step_args = [&](int set) {
    atb_forward_args args = make_versioned<atb_forward_args>();
    args.query = &q, args.key = &k, args.value = &v, args.output = &o;
    args.kv_pages = pool.data();
    args.num_pages = num_pages;
    args.page_stride_bytes = stride;
    args.num_tokens = new_tokens;
    args.num_seqs = batch;
    args.slot_mapping = step_slots.as<int64_t>() + size_t(set) * new_tokens;
    args.query_start_loc = starts.as<int32_t>();
    args.seq_lens = lens.as<int32_t>();
    args.block_tables = tables.as<int32_t>() + size_t(set) * batch * pages_per_seq;
    args.block_table_stride = pages_per_seq;
    args.workspace = workspace.data();
    args.workspace_bytes = workspace.bytes();
    return args;
  };
  std::vector<Graph> graphs(static_cast<size_t>(sets));
  for (int set = 0; set < sets; ++set) {
    TQ_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    const Status captured = backend->forward(step_args(set));
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
    graphs[size_t(set)].graph = graph;
    ATB_RETURN_IF_ERROR(captured);
    TQ_CUDA(ended);
    TQ_CUDA(cudaGraphInstantiate(&graphs[size_t(set)].exec, graph, 0));
  }
  for (int i = 0; i < 3 * sets; ++i) TQ_CUDA(cudaGraphLaunch(graphs[size_t(i % sets)].exec, stream));
  auto replay = [&](int i) {
    return cuda_status(cudaGraphLaunch(graphs[size_t(i % sets)].exec, stream), "cudaGraphLaunch");
  };
  auto graph_ms = median_ms(stream, runs, 1, replay);
  if (!graph_ms) return graph_ms.error();
  auto in_row_ms = median_ms(stream, std::max(runs / kStepsInRow, 3), kStepsInRow, replay);
  if (!in_row_ms) return in_row_ms.error();
  auto eager_ms = median_ms(stream, runs, 1, [&](int i) { return backend->forward(step_args(i % sets)); });
  if (!eager_ms) return eager_ms.error();
  row.graph_ms = *graph_ms;
  row.in_row_ms = *in_row_ms;
  row.eager_ms = *eager_ms;

  std::vector<uint16_t> written(size_t(new_tokens) * shape.query_heads * shape.head_size);
  TQ_CUDA(cudaMemcpy(written.data(), output.data(), written.size() * sizeof(uint16_t), cudaMemcpyDeviceToHost));
  for (uint16_t bits : written)
    if (!std::isfinite(bf16_to_f32(bits)))
      return Status::internal(label + ": an output is not finite (unwritten or wrong)");
  return row;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, separator))
    if (!item.empty()) items.push_back(item);
  return items;
}

// One chunked prefill: `new_tokens` of one sequence at its last positions, `cached` tokens long after it.
struct PrefillShape {
  int new_tokens = 0, cached = 0;
};

// `--prefill-shapes`: NEW@CACHED items, comma-separated, or none.
Expected<std::vector<PrefillShape>> parse_prefill_shapes(const std::string& text) {
  std::vector<PrefillShape> shapes;
  if (text == "none") return shapes;
  for (const std::string& item : split(text, ',')) {
    const auto parts = split(item, '@');
    PrefillShape shape;
    bool ok = parts.size() == 2;
    try {
      size_t used_new = 0, used_cached = 0;
      if (ok) shape.new_tokens = std::stoi(parts[0], &used_new), shape.cached = std::stoi(parts[1], &used_cached);
      ok = ok && used_new == parts[0].size() && used_cached == parts[1].size();
    } catch (const std::exception&) {
      ok = false;
    }
    if (!ok || shape.new_tokens < 1 || shape.cached < shape.new_tokens || shape.cached > (1 << 20))
      return Status::invalid("--prefill-shapes " + item +
                             ": allowed: NEW@CACHED with 1 <= NEW <= CACHED <= 1048576, e.g. 512@8192");
    shapes.push_back(shape);
  }
  if (shapes.empty()) return Status::invalid("--prefill-shapes: allowed: a list of NEW@CACHED, or none");
  return shapes;
}

// Causal-useful flops of a prefill: 4 * query heads * d per (query, key) pair a query sees (QK^T and PV,
// a multiply and an add each); query i of the chunk sees cached - new + i + 1 keys.
double prefill_flops(const PrefillShape& shape, int query_heads, int head_size) {
  const double n = shape.new_tokens, before = double(shape.cached) - n;
  const double pairs = n * before + n * (n + 1) / 2;
  return 4.0 * query_heads * head_size * pairs;
}

// `--pairs all`: every K format the CUDA path stores (TurboQuant-prod has no CUDA kernels) with
// q3_0 V rows, then q8_0 K rows with every other V format: each format once.
std::vector<std::string> all_pairs() {
  std::vector<std::string> pairs;
  for (const tq::Format& key : tq::formats_for(tq::Role::key))
    if (key.scheme != tq::Scheme::turboquant_prod) pairs.push_back(std::string(key.name) + "/q3_0");
  for (const tq::Format& value : tq::formats_for(tq::Role::value))
    if (value.name != "q3_0") pairs.push_back("q8_0/" + std::string(value.name));
  return pairs;
}

}  // namespace

int cuda_bench_command(int argc, const char* const* argv) {
  std::vector<cli::FlagSpec> flags = cli::host_flags("turboquant");
  flags.push_back({"pairs", "LIST",
                   "K/V format pairs, comma-separated, or all (every format once; default "
                   "q4_0/q3_0,q8_0/q3_0,tq4/tq3)"});
  flags.push_back({"head-size", "N", "head size of K and V (default 128)"});
  flags.push_back({"query-heads", "N", "query heads (default 32)"});
  flags.push_back({"kv-heads", "N", "KV heads, a divisor of the query heads (default 8)"});
  flags.push_back({"batches", "LIST", "decode batch sizes, or none (default 1,8,64)"});
  flags.push_back({"context", "N", "cached tokens per sequence (default 32768)"});
  flags.push_back({"page", "N", "tokens per KV-cache page (default 16, vLLM's)"});
  flags.push_back({"runs", "N", "timed steps per figure; the median is printed (default 50)"});
  flags.push_back({"no-reference", "", "leave the reference backend out"});
  flags.push_back({"prefill-shapes", "LIST",
                   "chunked prefills of one sequence also timed, NEW@CACHED (new tokens at the end of a sequence "
                   "CACHED long), comma-separated, or none (default 512@8192,2048@8192,8192@8192,512@32768)"});
  auto arguments = cli::Arguments::parse(argc, argv, 2, flags);
  if (!arguments) {
    std::cerr << "tq cuda-bench: " << arguments.error().message() << "\n";
    return 2;
  }
  if (arguments->has("help")) {
    std::cout << "usage: tq cuda-bench [flags]\n\n" << cli::flags_help(flags);
    return 0;
  }
  auto options = cli::read_host_options(*arguments, "turboquant");
  auto context = arguments->integer_or("context", 32768, 16, 1 << 20);
  auto page = arguments->integer_or("page", 16, 1, 1024);
  auto runs = arguments->integer_or("runs", 50, 1, 100000);
  auto prefill_shapes =
      parse_prefill_shapes(arguments->value_or("prefill-shapes", "512@8192,2048@8192,8192@8192,512@32768"));
  auto head_size = arguments->integer_or("head-size", 128, 16, 256);
  auto query_heads = arguments->integer_or("query-heads", 32, 1, 1024);
  auto kv_heads = arguments->integer_or("kv-heads", 8, 1, 1024);
  const bool no_decode = arguments->value_or("batches", "") == "none";
  const auto batches = no_decode ? Expected<std::vector<int>>(std::vector<int>{})
                                 : arguments->integer_list_or("batches", "1,8,64", 1, 1 << 20);
  if (Status bad =
          cli::first_error(options, context, page, runs, prefill_shapes, head_size, query_heads, kv_heads, batches);
      !bad) {
    std::cerr << "tq cuda-bench: " << bad.message() << "\n";
    return 2;
  }
  if (*query_heads % *kv_heads != 0) {
    std::cerr << "tq cuda-bench: --query-heads " << *query_heads << " --kv-heads " << *kv_heads
              << ": allowed: KV heads that divide the query heads\n";
    return 2;
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::cerr << "tq cuda-bench: no CUDA device on this machine\n";
    return 1;
  }
  const auto registry = host::Registry::scan(options->plugin_dirs);
  // The reference backend is needed only where its row is timed (--no-reference leaves it out).
  const bool with_reference = !arguments->has("no-reference");
  auto reference = registry.select(with_reference ? "reference" : options->backend);
  auto turboquant = registry.select(options->backend);
  if (!reference || !turboquant) {
    std::cerr << "tq cuda-bench: " << (reference ? turboquant.error() : reference.error()).message() << "\n";
    return 1;
  }
  struct Variant {
    std::string label, config;
    const host::Plugin* plugin;
  };
  std::vector<Variant> variants;
  if (with_reference) variants.push_back({"reference (bf16 cache)", "{}", *reference});
  // --attention-config's keys (smoothing, say) go into every pair's config.
  const nlohmann::json base = nlohmann::json::parse(options->config_json, nullptr, false);
  if (base.is_discarded() || !base.is_object()) {
    std::cerr << "tq cuda-bench: --attention-config " << options->config_json << ": allowed: a JSON object\n";
    return 2;
  }
  const std::string pairs = arguments->value_or("pairs", "q4_0/q3_0,q8_0/q3_0,tq4/tq3");
  for (const auto& pair : pairs == "all" ? all_pairs() : split(pairs, ',')) {
    const auto parts = split(pair, '/');
    if (parts.size() != 2) {
      std::cerr << "tq cuda-bench: --pairs " << pair << ": allowed: K/V, e.g. q4_0/q3_0\n";
      return 2;
    }
    variants.push_back({options->backend + " " + pair, with_pair(base, parts[0], parts[1]).dump(), *turboquant});
  }

  auto stream = host::cuda::Stream::create();
  if (!stream) {
    std::cerr << "tq cuda-bench: " << stream.error().message() << "\n";
    return 1;
  }
  cudaDeviceProp properties{};
  cudaGetDeviceProperties(&properties, 0);
  auto copy = copy_bandwidth(static_cast<cudaStream_t>(stream->handle()));
  if (!copy) {
    std::cerr << "tq cuda-bench: " << copy.error().message() << "\n";
    return 1;
  }
  Shape shape;
  shape.context = int(*context);
  shape.block_size = int(*page);
  shape.head_size = int(*head_size);
  shape.query_heads = int(*query_heads);
  shape.kv_heads = int(*kv_heads);
  std::printf("device: %s, %d SMs; copy bandwidth (read + write, 1 GiB device-to-device): %.0f GB/s\n", properties.name,
              properties.multiProcessorCount, *copy / 1e9);
  std::printf("shape: %d query / %d KV heads, head size %d, page %d tokens, context %d, bf16 queries\n",
              shape.query_heads, shape.kv_heads, shape.head_size, shape.block_size, shape.context);
  if (!base.empty()) std::printf("every pair's config also holds %s\n", base.dump().c_str());
  std::printf("\n");
  std::printf("%-28s %5s %12s %10s %8s %12s %12s %12s %10s %8s %10s %8s %14s\n", "backend", "batch", "ms/step",
              "floor ms", "x floor", "ms (eager)", "ms (in row)", "cache MB", "GB/s", "of copy", "GB/s row", "of copy",
              "encode us/tok");
  std::mt19937_64 rng(20261122);
  int failures = 0;
  auto print_row = [&](const Variant& variant, const Shape& row_shape, int batch) {
    auto row = bench_one(*variant.plugin, variant.label, variant.config, row_shape, batch, int(*runs), *stream, rng);
    if (!row) {
      std::printf("%-28s %5d  failed: %s\n", variant.label.c_str(), batch, row.error().message().c_str());
      ++failures;
      cudaGetLastError();
      return;
    }
    auto floor = read_floor_ms(size_t(row->cache_bytes), int(*runs), static_cast<cudaStream_t>(stream->handle()));
    if (!floor) {
      std::printf("%-28s %5d  read floor failed: %s\n", variant.label.c_str(), batch, floor.error().message().c_str());
      ++failures;
      return;
    }
    const double bandwidth = row->cache_bytes / (row->graph_ms * 1e-3);
    const double in_row_bandwidth = row->cache_bytes / (row->in_row_ms * 1e-3);
    std::printf("%-28s %5d %12.4f %10.4f %8.2f %12.4f %12.4f %12.1f %10.0f %7.1f%% %10.0f %7.1f%% %14.4f\n",
                row->label.c_str(), batch, row->graph_ms, *floor, row->graph_ms / *floor, row->eager_ms, row->in_row_ms,
                row->cache_bytes / 1e6, bandwidth / 1e9, 100.0 * bandwidth / *copy, in_row_bandwidth / 1e9,
                100.0 * in_row_bandwidth / *copy, row->encode_us_per_token);
    std::fflush(stdout);
  };
  for (int batch : *batches)
    for (const Variant& variant : variants) print_row(variant, shape, batch);
  if (!prefill_shapes->empty()) {
    std::printf(
        "\nchunked prefill of one sequence: NEW tokens at the end of CACHED; ms per layer-step (CUDA graph, "
        "K/V writes included); TFLOP/s of causal-useful flops (4 x %d heads x %d per visible query-key pair)\n",
        shape.query_heads, shape.head_size);
    std::printf("%-28s %14s %12s %10s\n", "backend", "new@cached", "ms/step", "TFLOP/s");
  }
  for (const PrefillShape& prefill : *prefill_shapes)
    for (const Variant& variant : variants) {
      Shape prefill_shape = shape;
      prefill_shape.context = prefill.cached;
      prefill_shape.step_tokens = prefill.new_tokens;
      const std::string label = std::to_string(prefill.new_tokens) + "@" + std::to_string(prefill.cached);
      auto row = bench_one(*variant.plugin, variant.label, variant.config, prefill_shape, 1, int(*runs), *stream, rng);
      if (!row) {
        std::printf("%-28s %14s  failed: %s\n", variant.label.c_str(), label.c_str(), row.error().message().c_str());
        ++failures;
        cudaGetLastError();
        continue;
      }
      const double flops = prefill_flops(prefill, shape.query_heads, shape.head_size);
      std::printf("%-28s %14s %12.4f %10.1f\n", variant.label.c_str(), label.c_str(), row->graph_ms,
                  flops / (row->graph_ms * 1e-3) / 1e12);
      std::fflush(stdout);
    }
  return failures == 0 ? 0 : 1;
}

}  // namespace atb::tool
